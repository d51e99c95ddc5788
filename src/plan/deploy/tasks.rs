//! Release tasks as plan steps: each changed service's tasks of one phase, on its new revision,
//! after that phase's gate and after the tasks of the services it depends on (providers first).

use std::collections::BTreeMap;

use crate::config::TaskWhen;
use crate::plan::deploy::{Builder, Rollout};
use crate::plan::types::{Action, Phase, StepId};

impl Rollout<'_> {
    /// The tasks that run `when`, each after every step below `gate`; a service's own tasks one
    /// after another, by name.
    pub(super) fn tasks(&self, builder: &mut Builder, when: TaskWhen, gate: usize) {
        let phase = match when {
            TaskWhen::BeforeSwitch => Phase::Provision,
            TaskWhen::AfterSwitch => Phase::Switch,
            TaskWhen::AfterCleanup => Phase::Cleanup,
        };
        let mut last_of: BTreeMap<&str, StepId> = BTreeMap::new();
        for service in &self.order {
            let Some(tasks) = self.input.tasks.get(*service) else {
                continue;
            };
            let mut below = gate;
            let mut after: Vec<StepId> = self.deps[service]
                .iter()
                .filter_map(|d| last_of.get(d).copied())
                .collect();
            for (name, task) in tasks.iter().filter(|(_, t)| t.when == when) {
                let action = Action::Task {
                    task: name.clone(),
                    version: self.by_service[service].to.clone(),
                    command: task.command.clone(),
                    when,
                    maintenance: task.maintenance,
                };
                let id = builder.push(phase, service, action, (below, after), task.timeout, None);
                (below, after) = (0, vec![id]);
                last_of.insert(service, id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::service_graph::ServiceGraph;
    use crate::config::{Dur, RolloutPolicy, Task, TaskWhen};
    use crate::plan::deploy::{PlanInput, ServiceState, plan};
    use crate::plan::types::{Action, Phase, Plan, Step};

    fn task(when: TaskWhen, maintenance: bool) -> Task {
        Task {
            command: "bin/migrate".to_string(),
            when,
            timeout: Dur::secs(60),
            maintenance,
        }
    }

    /// payments ← api; both change; api has one task of each phase, payments a before_switch.
    fn planned(changed: &[(&str, &str)]) -> Plan {
        let edges = [
            ("payments".to_string(), vec![]),
            ("api".to_string(), vec!["payments".to_string()]),
        ];
        let graph = ServiceGraph::new(edges.iter().map(|(s, d)| (s.as_str(), d.as_slice())));
        let tasks: BTreeMap<String, BTreeMap<String, Task>> = [
            (
                "api".to_string(),
                [
                    ("migrate".to_string(), task(TaskWhen::BeforeSwitch, true)),
                    ("warm-cache".to_string(), task(TaskWhen::AfterSwitch, false)),
                    ("contract".to_string(), task(TaskWhen::AfterCleanup, false)),
                ]
                .into(),
            ),
            (
                "payments".to_string(),
                [("migrate".to_string(), task(TaskWhen::BeforeSwitch, false))].into(),
            ),
        ]
        .into();
        let desired = changed
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect();
        let observed = [("payments", "p1"), ("api", "a1")]
            .iter()
            .map(|(s, v)| {
                let state = ServiceState {
                    live: Some(v.to_string()),
                    warm: vec![v.to_string()],
                };
                (s.to_string(), state)
            })
            .collect();
        let policy = RolloutPolicy {
            keep_warm: Dur::secs(0),
            ..RolloutPolicy::default()
        };
        let input = PlanInput {
            environment: "production",
            policy: &policy,
            graph: &graph,
            desired: &desired,
            observed: &observed,
            weighted_traffic: false,
            tasks: &tasks,
        };
        plan(&input, "2026-12-02T10:00:00Z".parse().unwrap())
    }

    fn find<'p>(plan: &'p Plan, service: &str, what: &str) -> &'p Step {
        plan.steps
            .iter()
            .find(|s| s.service == service && s.action.to_string().starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` of {service} in\n{plan}"))
    }

    /// Whether `later` comes after `earlier` through the plan's `after` edges.
    fn comes_after(plan: &Plan, later: &Step, earlier: &Step) -> bool {
        let mut stack: Vec<_> = later.needs().collect();
        while let Some(id) = stack.pop() {
            if id == earlier.id {
                return true;
            }
            stack.extend(plan.step(id).unwrap().needs());
        }
        false
    }

    #[test]
    fn tasks_run_between_the_phases_on_the_new_revision() {
        let plan = planned(&[("payments", "p2"), ("api", "a2")]);
        let migrate = find(&plan, "api", "task migrate");
        assert_eq!(migrate.phase, Phase::Provision);
        assert!(
            matches!(&migrate.action, Action::Task { version, maintenance: true, .. } if version == "a2")
        );
        for provision in plan
            .phase(Phase::Provision)
            .filter(|s| matches!(s.action, Action::Provision { .. }))
        {
            assert!(comes_after(&plan, migrate, provision), "{plan}");
        }
        for switch in plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Switch { .. }))
        {
            assert!(
                comes_after(&plan, switch, migrate),
                "every switch after the migration\n{plan}"
            );
        }
        let warm = find(&plan, "api", "task warm-cache");
        assert_eq!(warm.phase, Phase::Switch);
        assert!(
            comes_after(&plan, warm, find(&plan, "api", "switch")),
            "{plan}"
        );
        assert!(
            comes_after(&plan, warm, find(&plan, "payments", "switch")),
            "{plan}"
        );
        let contract = find(&plan, "api", "task contract");
        assert_eq!(contract.phase, Phase::Cleanup);
        for retire in plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Retire { .. }))
        {
            assert!(comes_after(&plan, contract, retire), "{plan}");
            assert!(
                comes_after(&plan, retire, warm),
                "retire after after_switch\n{plan}"
            );
        }
    }

    #[test]
    fn tasks_of_providers_run_first_and_show_in_the_plan() {
        let plan = planned(&[("payments", "p2"), ("api", "a2")]);
        let api = find(&plan, "api", "task migrate");
        let payments = find(&plan, "payments", "task migrate");
        assert!(comes_after(&plan, api, payments), "{plan}");
        let shown = plan.to_string();
        assert!(
            shown.contains("task migrate (before_switch) on a2: bin/migrate, maintenance on"),
            "{shown}"
        );
    }

    #[test]
    fn a_service_whose_revision_stays_runs_no_task() {
        let plan = planned(&[("payments", "p2"), ("api", "a1")]);
        assert!(plan.steps.iter().all(|s| s.service == "payments"), "{plan}");
        assert_eq!(
            plan.steps
                .iter()
                .filter(|s| matches!(s.action, Action::Task { .. }))
                .count(),
            1
        );
    }
}

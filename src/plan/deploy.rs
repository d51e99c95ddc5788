//! `plan(input, now)`: the staged rollout of DESIGN.md as data.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::config::service_graph::ServiceGraph;
use crate::config::{Provision, RolloutPolicy, Strategy, Task, TaskWhen};
use crate::plan::types::{Action, Change, Phase, Plan, Step, StepId};

/// What the target runs for one service now.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceState {
    /// The version taking traffic, if any.
    pub live: Option<String>,
    /// Versions ready to take traffic at once (for a rollback without a provision), the most
    /// recently live first where the release records tell.
    pub warm: Vec<String>,
}

pub struct PlanInput<'a> {
    pub environment: &'a str,
    pub policy: &'a RolloutPolicy,
    pub graph: &'a ServiceGraph,
    /// The services to deploy and the version each should run.
    pub desired: &'a BTreeMap<String, String>,
    pub observed: &'a BTreeMap<String, ServiceState>,
    /// Whether the target can split traffic between versions (canary steps); if not, one switch.
    pub weighted_traffic: bool,
    /// Each service's release tasks by name; run on its new revision when it changes.
    pub tasks: &'a BTreeMap<String, BTreeMap<String, Task>>,
}

/// The staged rollout: provision changed services (providers first, or all at once), then their
/// `before_switch` tasks, then switch them in dependency order (after every provision and task
/// succeeded), then their `after_switch` tasks, then retire the old versions clients first, then
/// the `after_cleanup` tasks. Tasks of different services follow the dependency order too.
pub fn plan(input: &PlanInput<'_>, now: Timestamp) -> Plan {
    let (changes, unchanged) = split_changes(input.desired, input.observed);
    let rollout = Rollout::new(input, &changes);
    let mut builder = Builder::default();
    // Each stage's barrier (`gate`) is every step pushed before it: the same order as the steps
    // of the stage just before (which come after all the earlier ones), and a prefix of the
    // plan, which a step holds as one number (`Step::after_all_below`).
    rollout.provision(&mut builder);
    let gate = builder.pushed();
    rollout.tasks(&mut builder, TaskWhen::BeforeSwitch, gate);
    let gate = builder.pushed();
    rollout.switch(&mut builder, gate);
    let gate = builder.pushed();
    rollout.tasks(&mut builder, TaskWhen::AfterSwitch, gate);
    let not_before = now.checked_add(input.policy.keep_warm.0).unwrap_or(now);
    let gate = builder.pushed();
    rollout.cleanup(&mut builder, gate, not_before);
    let gate = builder.pushed();
    rollout.tasks(&mut builder, TaskWhen::AfterCleanup, gate);
    Plan {
        environment: input.environment.to_string(),
        created: now,
        changes,
        unchanged,
        steps: builder.steps,
    }
}

/// The desired services whose live version differs (the changes), and those already at it.
fn split_changes(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, ServiceState>,
) -> (Vec<Change>, Vec<Change>) {
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for (service, version) in desired {
        let state = observed.get(service).cloned().unwrap_or_default();
        let change = Change {
            service: service.clone(),
            from: state.live.clone(),
            to: version.clone(),
            reasons: Vec::new(),
        };
        if state.live.as_deref() == Some(version) {
            unchanged.push(change);
        } else {
            changes.push(change);
        }
    }
    (changes, unchanged)
}

/// The changed services in rollout order, with what each phase builder needs to know of them.
struct Rollout<'a> {
    input: &'a PlanInput<'a>,
    /// Providers first; by name within a layer.
    order: Vec<&'a str>,
    /// The changed services each one depends on, directly or through unchanged ones.
    deps: BTreeMap<&'a str, BTreeSet<&'a str>>,
    by_service: BTreeMap<&'a str, &'a Change>,
}

impl<'a> Rollout<'a> {
    fn new(input: &'a PlanInput<'a>, changes: &'a [Change]) -> Self {
        let changed: BTreeSet<&str> = changes.iter().map(|c| c.service.as_str()).collect();
        let order = changed_order(input.graph, &changed);
        let deps = order
            .iter()
            .map(|s| (*s, changed_dependencies(input.graph, s, &changed)))
            .collect();
        let by_service = changes.iter().map(|c| (c.service.as_str(), c)).collect();
        Rollout {
            input,
            order,
            deps,
            by_service,
        }
    }

    /// New versions beside the old ones: each after the provisions of its providers when the
    /// policy says `ordered`, all at once when `parallel`.
    fn provision(&self, builder: &mut Builder) {
        let mut provision_of = BTreeMap::new();
        for service in &self.order {
            let change = self.by_service[service];
            let warm = self
                .input
                .observed
                .get(*service)
                .is_some_and(|s| s.warm.contains(&change.to));
            if warm {
                continue; // ready already: a rollback to a warm version needs no provision
            }
            let after = match self.input.policy.provision {
                Provision::Ordered => self.deps[service]
                    .iter()
                    .filter_map(|d| provision_of.get(d).copied())
                    .collect(),
                Provision::Parallel => Vec::new(),
            };
            let action = Action::Provision {
                version: change.to.clone(),
            };
            let timeout = self.input.policy.provision_timeout;
            let id = builder.push(Phase::Provision, service, action, (0, after), timeout, None);
            provision_of.insert(*service, id);
        }
    }

    /// Traffic moves in the policy's steps, after every step below `gate` (every provision and
    /// `before_switch` task) and after each provider's last switch.
    fn switch(&self, builder: &mut Builder, gate: usize) {
        let policy = self.input.policy;
        let percents: Vec<u8> = match (policy.strategy, self.input.weighted_traffic) {
            (Strategy::Canary, true) => policy.steps.iter().map(|p| p.0).collect(),
            _ => vec![100],
        };
        let mut last_switch_of = BTreeMap::new();
        for service in &self.order {
            let change = self.by_service[service];
            let mut below = gate;
            let mut after: Vec<StepId> = self.deps[service]
                .iter()
                .filter_map(|d| last_switch_of.get(d).copied())
                .collect();
            for percent in &percents {
                let action = Action::Switch {
                    from: change.from.clone(),
                    to: change.to.clone(),
                    percent: *percent,
                    bake: policy.bake,
                };
                let id = builder.push(
                    Phase::Switch,
                    service,
                    action,
                    (below, after),
                    policy.step_timeout,
                    None,
                );
                (below, after) = (0, vec![id]);
            }
            last_switch_of.insert(*service, after[0]);
        }
    }

    /// Old versions retired clients first, after every step below `gate` (every switch and
    /// `after_switch` task): the one just replaced not before `not_before` (it stays warm for an
    /// instant rollback), older warm ones beyond `keep_warm_versions` at once. With
    /// `keep_warm_versions: 0` nothing stays warm.
    fn cleanup(&self, builder: &mut Builder, gate: usize, not_before: Timestamp) {
        let keep = self.input.policy.keep_warm_versions as usize;
        // Each service's retire steps, at once and deferred: one at once waits only for its
        // clients' retires at once, so a deferred one never holds it back.
        let mut now_of: BTreeMap<&str, Vec<StepId>> = BTreeMap::new();
        let mut later_of: BTreeMap<&str, Vec<StepId>> = BTreeMap::new();
        for service in self.order.iter().rev() {
            let change = self.by_service[service];
            let dependents: Vec<&str> = self
                .order
                .iter()
                .filter(|s| self.deps[*s].contains(service))
                .copied()
                .collect();
            let after = |deferred: bool| {
                let mut after = Vec::new();
                for dependent in &dependents {
                    after.extend(now_of.get(dependent).into_iter().flatten());
                    if deferred {
                        after.extend(later_of.get(dependent).into_iter().flatten());
                    }
                }
                after
            };
            let timeout = self.input.policy.step_timeout;
            let (mut now, mut later) = (Vec::new(), Vec::new());
            for (version, deferred) in self.retired(change, keep) {
                let action = Action::Retire { version };
                let not_before = deferred.then_some(not_before);
                let id = builder.push(
                    Phase::Cleanup,
                    service,
                    action,
                    (gate, after(deferred)),
                    timeout,
                    not_before,
                );
                match deferred {
                    true => later.push(id),
                    false => now.push(id),
                }
            }
            now_of.insert(service, now);
            later_of.insert(service, later);
        }
    }

    /// What `change` retires, and whether after `keep_warm`: its old version kept warm when
    /// `keep` allows, then the warm versions beyond `keep` (listed newest first) at once.
    fn retired(&self, change: &Change, keep: usize) -> Vec<(String, bool)> {
        let mut retired = Vec::new();
        if let Some(old) = &change.from {
            retired.push((old.clone(), keep > 0));
        }
        let kept_besides_old = keep.saturating_sub(usize::from(change.from.is_some()));
        let warm = self.input.observed.get(change.service.as_str());
        let older = warm
            .iter()
            .flat_map(|s| &s.warm)
            .filter(|v| Some(*v) != change.from.as_ref() && **v != change.to);
        retired.extend(older.skip(kept_besides_old).map(|v| (v.clone(), false)));
        retired
    }
}

/// Changed services in dependency order (providers first; by name within a layer).
fn changed_order<'a>(graph: &ServiceGraph, changed: &BTreeSet<&'a str>) -> Vec<&'a str> {
    graph
        .layers()
        .into_iter()
        .flatten()
        .filter_map(|s| changed.get(s.as_str()).copied())
        .collect()
}

/// The changed services that `service` depends on, directly or through unchanged ones.
fn changed_dependencies<'a>(
    graph: &ServiceGraph,
    service: &str,
    changed: &BTreeSet<&'a str>,
) -> BTreeSet<&'a str> {
    let mut found = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = graph.dependencies(service).map(str::to_string).collect();
    while let Some(next) = stack.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        if let Some(name) = changed.get(next.as_str()) {
            found.insert(*name);
        }
        stack.extend(graph.dependencies(&next).map(str::to_string));
    }
    found
}

#[derive(Default)]
pub(crate) struct Builder {
    pub(crate) steps: Vec<Step>,
}

impl Builder {
    /// How many steps were pushed: a gate below which every one of them is.
    pub(crate) fn pushed(&self) -> usize {
        self.steps.len()
    }

    /// A step after `(gate, after)`: every step below `gate` and each of `after`.
    pub(crate) fn push(
        &mut self,
        phase: Phase,
        service: &str,
        action: Action,
        (gate, after): (usize, Vec<StepId>),
        timeout: crate::config::Dur,
        not_before: Option<Timestamp>,
    ) -> StepId {
        let (after_all_below, after) = Step::fold_after(gate, after);
        let id = StepId(self.steps.len());
        self.steps.push(Step {
            id,
            phase,
            service: service.to_string(),
            action,
            after,
            after_all_below,
            timeout,
            not_before,
        });
        id
    }
}

mod tasks;
#[cfg(test)]
mod tests;

//! `plan(input, now)`: the staged rollout of DESIGN.md as data.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::config::service_graph::ServiceGraph;
use crate::config::{RolloutPolicy, Strategy};
use crate::plan::types::{Action, Change, Phase, Plan, Step, StepId};

/// What the target runs for one service now.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceState {
    /// The version taking traffic, if any.
    pub live: Option<String>,
    /// Versions ready to take traffic at once (for a rollback without a provision).
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
}

/// The staged rollout: provision changed services providers first, then switch them in the same
/// order (after every provision succeeded), then retire the old versions clients first.
pub fn plan(input: &PlanInput<'_>, now: Timestamp) -> Plan {
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for (service, version) in input.desired {
        let state = input.observed.get(service).cloned().unwrap_or_default();
        let change = Change {
            service: service.clone(),
            from: state.live.clone(),
            to: version.clone(),
        };
        if state.live.as_deref() == Some(version) {
            unchanged.push(change);
        } else {
            changes.push(change);
        }
    }
    let changed: BTreeSet<&str> = changes.iter().map(|c| c.service.as_str()).collect();
    let order = changed_order(input.graph, &changed);
    let deps: BTreeMap<&str, BTreeSet<&str>> = order
        .iter()
        .map(|s| (*s, changed_dependencies(input.graph, s, &changed)))
        .collect();
    let by_service: BTreeMap<&str, &Change> =
        changes.iter().map(|c| (c.service.as_str(), c)).collect();

    let mut builder = Builder::default();
    let policy = input.policy;

    let mut provision_of = BTreeMap::new();
    for service in &order {
        let change = by_service[service];
        let warm = input
            .observed
            .get(*service)
            .is_some_and(|s| s.warm.contains(&change.to));
        if warm {
            continue; // ready already: a rollback to a warm version needs no provision
        }
        let after = deps[service]
            .iter()
            .filter_map(|d| provision_of.get(d).copied())
            .collect();
        let action = Action::Provision {
            version: change.to.clone(),
        };
        let id = builder.push(
            Phase::Provision,
            service,
            action,
            after,
            policy.provision_timeout,
            None,
        );
        provision_of.insert(*service, id);
    }
    let all_provisions: Vec<StepId> = provision_of.values().copied().collect();

    let percents: Vec<u8> = match (policy.strategy, input.weighted_traffic) {
        (Strategy::Canary, true) => policy.steps.iter().map(|p| p.0).collect(),
        _ => vec![100],
    };
    let mut last_switch_of = BTreeMap::new();
    for service in &order {
        let change = by_service[service];
        let mut after: Vec<StepId> = all_provisions.clone();
        after.extend(
            deps[service]
                .iter()
                .filter_map(|d| last_switch_of.get(d).copied()),
        );
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
                after,
                policy.step_timeout,
                None,
            );
            after = vec![id];
        }
        last_switch_of.insert(*service, after[0]);
    }
    let all_switches: Vec<StepId> = last_switch_of.values().copied().collect();

    let not_before = now.checked_add(policy.keep_warm.0).unwrap_or(now);
    let mut retire_of: BTreeMap<&str, StepId> = BTreeMap::new();
    for service in order.iter().rev() {
        let Some(old) = by_service[service].from.clone() else {
            continue;
        };
        let mut after = all_switches.clone();
        let dependents = order.iter().filter(|s| deps[*s].contains(service));
        after.extend(dependents.filter_map(|d| retire_of.get(d).copied()));
        let action = Action::Retire { version: old };
        let id = builder.push(
            Phase::Cleanup,
            service,
            action,
            after,
            policy.step_timeout,
            Some(not_before),
        );
        retire_of.insert(service, id);
    }

    Plan {
        environment: input.environment.to_string(),
        created: now,
        changes,
        unchanged,
        steps: builder.steps,
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
    pub(crate) fn push(
        &mut self,
        phase: Phase,
        service: &str,
        action: Action,
        mut after: Vec<StepId>,
        timeout: crate::config::Dur,
        not_before: Option<Timestamp>,
    ) -> StepId {
        after.sort();
        after.dedup();
        let id = StepId(self.steps.len());
        self.steps.push(Step {
            id,
            phase,
            service: service.to_string(),
            action,
            after,
            timeout,
            not_before,
        });
        id
    }
}

#[cfg(test)]
mod tests;

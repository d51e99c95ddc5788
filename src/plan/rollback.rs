//! Rollback of an unfinished release, computed from its plan and its journal: traffic goes back
//! to the old version for every service that took any (clients first), and every new version is
//! removed, so no debris is left.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::config::Dur;
use crate::plan::deploy::Builder;
use crate::plan::types::{Action, Change, Phase, Plan, StepId};

/// `started`: the steps of `plan` that were started (whatever their outcome), from the journal.
pub fn rollback_plan(
    plan: &Plan,
    started: &BTreeSet<StepId>,
    timeout: Dur,
    now: Timestamp,
) -> Plan {
    let order = rollout_order(plan);
    let taken = Taken::from_started(plan, started);
    let mut builder = Builder::default();
    let switched_back = switch_backs(&mut builder, plan, &order, &taken, timeout);
    removals(&mut builder, &order, &taken, &switched_back, timeout);
    Plan {
        environment: plan.environment.clone(),
        created: now,
        changes: reverted_changes(plan, &taken),
        unchanged: Vec::new(),
        steps: builder.steps,
    }
}

/// Services in the order the plan switches them, which is dependency order (providers first);
/// services that only provision follow. A warm service has no provision step, so the order of
/// first appearance would not be dependency order.
fn rollout_order(plan: &Plan) -> Vec<&str> {
    let mut order: Vec<&str> = Vec::new();
    for phase in [Phase::Switch, Phase::Provision] {
        for step in plan.phase(phase) {
            if !order.contains(&step.service.as_str()) {
                order.push(&step.service);
            }
        }
    }
    order
}

/// What the release had started doing, per service.
struct Taken<'a> {
    /// Services whose traffic moved: (old version, new version).
    switched: BTreeMap<&'a str, (&'a Option<String>, &'a str)>,
    /// Services whose new version was provisioned.
    provisioned: BTreeMap<&'a str, &'a str>,
}

impl<'a> Taken<'a> {
    fn from_started(plan: &'a Plan, started: &BTreeSet<StepId>) -> Self {
        let mut taken = Taken {
            switched: BTreeMap::new(),
            provisioned: BTreeMap::new(),
        };
        for step in plan.steps.iter().filter(|s| started.contains(&s.id)) {
            match &step.action {
                Action::Switch { from, to, .. } => {
                    taken.switched.insert(&step.service, (from, to));
                }
                Action::Provision { version } => {
                    taken.provisioned.insert(&step.service, version);
                }
                // A task is not undone: a migration stays (README: expand/contract).
                Action::Retire { .. } | Action::Remove { .. } | Action::Task { .. } => {}
            }
        }
        taken
    }
}

/// Traffic back to the old version, clients first: a service switches back once every client
/// that switched after it (because it depends on it) has switched back, so that a provider never
/// goes back while a client still sends it traffic for the new protocol; services of one layer go
/// back together. Returns the steps pushed.
fn switch_backs(
    builder: &mut Builder,
    plan: &Plan,
    order: &[&str],
    taken: &Taken<'_>,
    timeout: Dur,
) -> Vec<StepId> {
    let providers = switch_providers(plan);
    let mut back: BTreeMap<&str, StepId> = BTreeMap::new();
    let mut pushed = Vec::new();
    for service in order.iter().rev() {
        let Some((from, to)) = taken.switched.get(service) else {
            continue;
        };
        // Its clients come earlier in this order, so theirs are pushed already.
        let after: Vec<StepId> = back
            .iter()
            .filter(|(client, _)| providers.get(*client).is_some_and(|p| p.contains(service)))
            .map(|(_, id)| *id)
            .collect();
        let action = match from {
            Some(old) => Action::Switch {
                from: Some(to.to_string()),
                to: old.clone(),
                percent: 100,
                bake: Dur::secs(0),
            },
            // A first release has nothing to go back to: take the new version away.
            None => Action::Remove {
                version: to.to_string(),
            },
        };
        let id = builder.push(Phase::Rollback, service, action, (0, after), timeout, None);
        back.insert(service, id);
        pushed.push(id);
    }
    pushed
}

/// For each service, the services whose switches its own switches waited for: the nearest
/// switch steps of other services reached through the plan's dependencies.
fn switch_providers(plan: &Plan) -> BTreeMap<&str, BTreeSet<&str>> {
    let by_id: BTreeMap<StepId, &crate::plan::Step> =
        plan.steps.iter().map(|s| (s.id, s)).collect();
    let mut providers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for step in plan.phase(Phase::Switch) {
        let found = providers.entry(step.service.as_str()).or_default();
        let mut seen = BTreeSet::new();
        let mut stack: Vec<StepId> = step.needs().collect();
        while let Some(id) = stack.pop() {
            let Some(dep) = by_id.get(&id).filter(|_| seen.insert(id)) else {
                continue;
            };
            let other_switch = dep.phase == Phase::Switch && dep.service != step.service;
            if other_switch {
                found.insert(dep.service.as_str());
            } else {
                stack.extend(dep.needs());
            }
        }
    }
    providers
}

/// The versions this release provisioned are removed once all traffic is back.
fn removals(
    builder: &mut Builder,
    order: &[&str],
    taken: &Taken<'_>,
    switched_back: &[StepId],
    timeout: Dur,
) {
    for service in order.iter().rev() {
        // Only versions this release provisioned are debris; a warm version it switched to was
        // there before (often the target of an instant rollback) and stays.
        let Some(version) = taken.provisioned.get(service).copied() else {
            continue;
        };
        let first_release = taken
            .switched
            .get(service)
            .is_some_and(|(from, _)| from.is_none());
        if first_release {
            continue; // already removed by its switch-back
        }
        let action = Action::Remove {
            version: version.to_string(),
        };
        let after = switched_back.to_vec();
        builder.push(Phase::Rollback, service, action, (0, after), timeout, None);
    }
}

/// The plan's changes that the rollback reverts, the other way round.
fn reverted_changes(plan: &Plan, taken: &Taken<'_>) -> Vec<Change> {
    plan.changes
        .iter()
        .filter(|c| {
            taken.switched.contains_key(c.service.as_str())
                || taken.provisioned.contains_key(c.service.as_str())
        })
        .map(|c| Change {
            service: c.service.clone(),
            from: Some(c.to.clone()),
            to: c.from.clone().unwrap_or_else(|| "(none)".to_string()),
            reasons: Vec::new(),
        })
        .collect()
}

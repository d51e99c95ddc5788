//! Rollback of an unfinished release, computed from its plan and its journal: traffic goes back
//! to the old version for every service that took any (clients first), and every new version is
//! removed, so no debris is left.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::config::Dur;
use crate::plan::deploy::Builder;
use crate::plan::types::{Action, Phase, Plan, StepId};

/// `started`: the steps of `plan` that were started (whatever their outcome), from the journal.
pub fn rollback_plan(
    plan: &Plan,
    started: &BTreeSet<StepId>,
    timeout: Dur,
    now: Timestamp,
) -> Plan {
    let mut switched: BTreeMap<&str, (&Option<String>, &str)> = BTreeMap::new();
    let mut provisioned: BTreeMap<&str, &str> = BTreeMap::new();
    // Services in the order the plan switches them, which is dependency order (providers
    // first); services that only provision follow. A warm service has no provision step, so the
    // order of first appearance would not be dependency order.
    let mut order: Vec<&str> = Vec::new();
    for phase in [Phase::Switch, Phase::Provision] {
        for step in plan.phase(phase) {
            if !order.contains(&step.service.as_str()) {
                order.push(&step.service);
            }
        }
    }
    for step in &plan.steps {
        if !started.contains(&step.id) {
            continue;
        }
        match &step.action {
            Action::Switch { from, to, .. } => {
                switched.insert(&step.service, (from, to));
            }
            Action::Provision { version } => {
                provisioned.insert(&step.service, version);
            }
            Action::Retire { .. } | Action::Remove { .. } => {}
        }
    }

    let mut builder = Builder::default();
    let mut previous: Option<StepId> = None;
    // Clients first: reverse of the rollout order, one service at a time so that a provider is
    // never switched back while a client still sends it traffic for the new protocol.
    for service in order.iter().rev() {
        if let Some((from, to)) = switched.get(service) {
            let after = previous.into_iter().collect();
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
            previous = Some(builder.push(Phase::Rollback, service, action, after, timeout, None));
        }
    }
    let switched_back: Vec<StepId> = builder.steps.iter().map(|s| s.id).collect();
    for service in order.iter().rev() {
        // Only versions this release provisioned are debris; a warm version it switched to was
        // there before (often the target of an instant rollback) and stays.
        let Some(version) = provisioned.get(service).copied() else {
            continue;
        };
        let first_release = switched
            .get(service)
            .is_some_and(|(from, _)| from.is_none());
        if first_release {
            continue; // already removed above
        }
        let action = Action::Remove {
            version: version.to_string(),
        };
        builder.push(
            Phase::Rollback,
            service,
            action,
            switched_back.clone(),
            timeout,
            None,
        );
    }

    let changes = plan
        .changes
        .iter()
        .filter(|c| {
            switched.contains_key(c.service.as_str())
                || provisioned.contains_key(c.service.as_str())
        })
        .map(|c| crate::plan::Change {
            service: c.service.clone(),
            from: Some(c.to.clone()),
            to: c.from.clone().unwrap_or_else(|| "(none)".to_string()),
        })
        .collect();
    Plan {
        environment: plan.environment.clone(),
        created: now,
        changes,
        unchanged: Vec::new(),
        steps: builder.steps,
    }
}

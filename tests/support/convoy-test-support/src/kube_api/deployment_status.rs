//! Deployment status as the real controller writes it: `calculateStatus` (counts and
//! `Available`) and `syncRolloutStatus` (`Progressing`: complete, progressing, or past its
//! deadline), plus the paused/resumed conditions.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::rollout::{Plan, int, spec_replicas, status_sum};
use super::store::{Clock, meta_str};

pub fn condition(clock: &Clock, kind: &str, status: &str, reason: &str, message: String) -> Value {
    let now = clock.stamp();
    json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// `SetDeploymentCondition`: no change for the same status and reason; the transition time
/// survives a change of reason; the changed condition moves to the end.
pub fn set_condition(conditions: &mut Vec<Value>, mut c: Value) {
    if let Some(current) = conditions.iter().find(|x| x["type"] == c["type"]) {
        if current["status"] == c["status"] && current["reason"] == c["reason"] {
            return;
        }
        if current["status"] == c["status"] {
            c["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    conditions.retain(|x| x["type"] != c["type"]);
    conditions.push(c);
}

pub fn progressing(conditions: &[Value]) -> Option<&Value> {
    conditions.iter().find(|c| c["type"] == "Progressing")
}

pub fn pause_conditions(clock: &Clock, conditions: &mut Vec<Value>, paused: bool) {
    let reason = progressing(conditions).map(|c| c["reason"].clone());
    if reason
        .as_ref()
        .is_some_and(|r| r == "ProgressDeadlineExceeded")
    {
        return;
    }
    let noted = reason.is_some_and(|r| r == "DeploymentPaused");
    if paused && !noted {
        set_condition(
            conditions,
            condition(
                clock,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            ),
        );
    } else if !paused && noted {
        set_condition(
            conditions,
            condition(
                clock,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
            ),
        );
    }
}

/// `calculateStatus`: counts from the ReplicaSets, zero counts left out, and `Available`.
pub fn calculate_status(
    plan: &Plan,
    rss: &[Value],
    new: Option<usize>,
    mut conditions: Vec<Value>,
    clock: &Clock,
) -> Value {
    let available = status_sum(rss, "availableReplicas");
    let counts = [
        ("replicas", status_sum(rss, "replicas")),
        (
            "updatedReplicas",
            new.map_or(0, |i| int(&rss[i]["status"]["replicas"])),
        ),
        ("readyReplicas", status_sum(rss, "readyReplicas")),
        ("availableReplicas", available),
        (
            "unavailableReplicas",
            (spec_replicas(rss) - available).max(0),
        ),
    ];
    let mut status = json!({"observedGeneration": plan.d["metadata"]["generation"]});
    for (field, n) in counts {
        if n > 0 {
            status[field] = json!(n);
        }
    }
    let c = if available >= plan.replicas - plan.unavailable {
        condition(
            clock,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            clock,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    set_condition(&mut conditions, c);
    status["conditions"] = json!(conditions);
    status
}

/// `syncRolloutStatus`: complete, progressing (which refreshes `lastUpdateTime`), or timed out.
pub fn rollout_status(plan: &Plan, mut status: Value, new: Option<&Value>, clock: &Clock) -> Value {
    let old = &plan.d["status"];
    let n = |s: &Value, f: &str| int(&s[f]);
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let current = progressing(&conditions).cloned();
    let finished = current
        .as_ref()
        .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable")
        && n(&status, "replicas") == n(&status, "updatedReplicas");
    if finished {
        return status;
    }
    let what = match new {
        Some(rs) => format!("ReplicaSet \"{}\"", meta_str(rs, "name")),
        None => format!("Deployment \"{}\"", meta_str(plan.d, "name")),
    };
    let complete = n(&status, "updatedReplicas") == plan.replicas
        && n(&status, "replicas") == plan.replicas
        && n(&status, "availableReplicas") == plan.replicas;
    let moved = n(&status, "updatedReplicas") > n(old, "updatedReplicas")
        || n(&status, "replicas") - n(&status, "updatedReplicas")
            < n(old, "replicas") - n(old, "updatedReplicas")
        || n(&status, "readyReplicas") > n(old, "readyReplicas")
        || n(&status, "availableReplicas") > n(old, "availableReplicas");
    if complete {
        let message = format!("{what} has successfully progressed.");
        set_condition(
            &mut conditions,
            condition(
                clock,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                message,
            ),
        );
    } else if moved {
        let mut c = condition(
            clock,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("{what} is progressing."),
        );
        if let Some(current) = current.as_ref().filter(|c| c["status"] == "True") {
            c["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
        conditions.retain(|x| x["type"] != "Progressing");
        conditions.push(c);
    } else if timed_out(plan.d, current.as_ref(), clock) {
        let message = format!("{what} has timed out progressing.");
        set_condition(
            &mut conditions,
            condition(
                clock,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                message,
            ),
        );
    }
    status["conditions"] = json!(conditions);
    status
}

pub fn progress_deadline(d: &Value) -> Duration {
    Duration::from_secs(d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600))
}

pub fn timed_out(d: &Value, current: Option<&Value>, clock: &Clock) -> bool {
    let Some(c) = current else { return false };
    match c["reason"].as_str() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => c["lastUpdateTime"]
            .as_str()
            .and_then(|t| clock.instant_of(t))
            .is_some_and(|from| from + progress_deadline(d) < Instant::now()),
    }
}

/// When a rollout still in progress would time out (a second late, as times are whole seconds).
pub fn deadline(d: &Value, status: &Value, clock: &Clock) -> Option<Instant> {
    let conditions = status["conditions"].as_array()?;
    let c = progressing(conditions)?;
    let settled = [
        "NewReplicaSetAvailable",
        "ProgressDeadlineExceeded",
        "DeploymentPaused",
    ];
    if settled.iter().any(|r| c["reason"] == *r) {
        return None;
    }
    let from = clock.instant_of(c["lastUpdateTime"].as_str()?)?;
    Some(from + progress_deadline(d) + Duration::from_secs(1))
}

//! Is a Deployment's rollout done? A pure classification of the objects a watch delivers, following
//! `kubectl rollout status` (stale, progressing, done, progress deadline exceeded) plus fail-fast
//! rules on the pods of the new ReplicaSet, so a broken release aborts in seconds rather than after
//! `progressDeadlineSeconds`. No I/O and no clock: the caller passes `applied_at` and `now`.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

mod seen;
pub use seen::{DeploymentSeen, PodSeen, ReplicaSetSeen};

/// The annotation the Deployment controller numbers revisions with, on Deployments and their
/// ReplicaSets alike.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label tying a ReplicaSet's pods to it.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// How long a pod of the new ReplicaSet may sit in a state that often heals by itself before the
/// rollout is failed without waiting for the progress deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Graces {
    /// `ErrImagePull`/`ImagePullBackOff`, counted from the pod's creation (registries and
    /// replication lag make a first pull failure common and transient).
    pub image_pull: Duration,
    /// `PodScheduled=False` with reason `Unschedulable`, counted from the condition's transition
    /// (the cluster autoscaler needs time to add a node).
    pub unschedulable: Duration,
}

impl Default for Graces {
    fn default() -> Self {
        Graces {
            image_pull: Duration::from_secs(60),
            unschedulable: Duration::from_secs(120),
        }
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// The controller has not yet observed the latest spec (`observedGeneration < generation`).
    Stale,
    /// Still rolling; `message` is kubectl's.
    Progressing {
        updated: i32,
        ready: i32,
        available: i32,
        desired: i32,
        message: String,
    },
    Done,
    Failed(RolloutFailure),
}

/// Why a rollout will not finish by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutFailure {
    /// The `Progressing` condition says `ProgressDeadlineExceeded`, updated after our apply.
    ProgressDeadlineExceeded {
        deployment: String,
        message: Option<String>,
    },
    /// A `ReplicaFailure` condition: pods cannot even be created (quota, admission).
    ReplicaFailure {
        deployment: String,
        reason: String,
        message: Option<String>,
    },
    /// A pod of the new ReplicaSet is stuck in a state that needs a person.
    Pod(PodFailure),
}

/// One pod of the new ReplicaSet that fails the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFailure {
    pub pod: String,
    /// The container, or `None` when the pod as a whole is the problem (unschedulable).
    pub container: Option<String>,
    /// Whether `container` is an init container.
    pub init_container: bool,
    /// The waiting reason or condition reason, as Kubernetes spells it.
    pub reason: String,
    /// Restarts so far, for crash loops.
    pub restarts: Option<i32>,
    /// How the last run ended, for crash loops.
    pub last_termination: Option<LastTermination>,
    /// How long the state has lasted, for states with a grace period.
    pub lasted: Option<SignedDuration>,
    /// Kubernetes' own explanation (waiting or condition message), when it adds something.
    pub message: Option<String>,
}

/// `lastState.terminated` of a crash-looping container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastTermination {
    pub exit_code: i32,
    /// `Error`, `OOMKilled`, …
    pub reason: Option<String>,
    /// The last lines of the termination message, joined with ` | `.
    pub message_tail: Option<String>,
}

/// Classifies a rollout. `replica_sets` are those matching the Deployment's selector (others and
/// those owned by other Deployments are ignored); `pods` likewise (only the new ReplicaSet's pods
/// can fail the rollout). `applied_at` is when we applied the Deployment, so that a progress deadline
/// left over from an earlier rollout does not fail ours.
pub fn rollout_status(
    deployment: &DeploymentSeen,
    replica_sets: &[ReplicaSetSeen],
    pods: &[PodSeen],
    applied_at: Timestamp,
    now: Timestamp,
    graces: &Graces,
) -> RolloutStatus {
    let name = deployment.name.clone();
    let Some(status) = &deployment.status else {
        return RolloutStatus::Stale;
    };
    if status.observed_generation.unwrap_or(0) < deployment.generation {
        return RolloutStatus::Stale;
    }
    let conditions = status.conditions.as_deref().unwrap_or_default();

    if let Some(progressing) = condition(conditions, "Progressing")
        && progressing.reason.as_deref() == Some("ProgressDeadlineExceeded")
        && condition_time(progressing).is_none_or(|at| at > applied_at)
    {
        return RolloutStatus::Failed(RolloutFailure::ProgressDeadlineExceeded {
            deployment: name,
            message: progressing.message.clone(),
        });
    }
    if let Some(failure) = condition(conditions, "ReplicaFailure")
        && failure.status == "True"
    {
        return RolloutStatus::Failed(RolloutFailure::ReplicaFailure {
            deployment: name,
            reason: failure
                .reason
                .clone()
                .unwrap_or_else(|| "ReplicaFailure".to_string()),
            message: failure.message.clone(),
        });
    }
    if let Some(new_rs) = new_replica_set(deployment, replica_sets)
        && let Some(failure) = pods
            .iter()
            .filter(|pod| belongs_to(pod, new_rs) && !pod.deleting)
            .find_map(|pod| pod_failure(pod, now, graces))
    {
        return RolloutStatus::Failed(RolloutFailure::Pod(failure));
    }

    // kubectl's checks, in kubectl's order and with its messages.
    let desired = deployment.replicas.unwrap_or(1);
    let replicas = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = |what: String| RolloutStatus::Progressing {
        updated,
        ready,
        available,
        desired,
        message: format!("Waiting for deployment {name:?} rollout to finish: {what}..."),
    };
    if updated < desired {
        return waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination",
            // i64: counts come from the API server; a broken one must not overflow us.
            i64::from(replicas) - i64::from(updated)
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    // Not in kubectl, which calls this done: more new replicas than desired (a scale-down racing
    // the rollout) has not settled yet.
    if updated > desired {
        return waiting(format!(
            "{} surplus new replicas are pending termination",
            i64::from(updated) - i64::from(desired)
        ));
    }
    RolloutStatus::Done
}

/// [`rollout_status`] of objects as read from the API.
pub fn rollout_status_of(
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
    applied_at: Timestamp,
    now: Timestamp,
    graces: &Graces,
) -> RolloutStatus {
    let replica_sets: Vec<ReplicaSetSeen> = replica_sets.iter().cloned().map(Into::into).collect();
    let pods: Vec<PodSeen> = pods.iter().cloned().map(Into::into).collect();
    let deployment = DeploymentSeen::from(deployment.clone());
    rollout_status(&deployment, &replica_sets, &pods, applied_at, now, graces)
}

/// The Deployment's current ReplicaSet: among those it controls, the one with the highest
/// revision, which must be the Deployment's own revision when it has one (otherwise the controller
/// has not created it yet and there is none).
pub fn new_replica_set<'a>(
    deployment: &DeploymentSeen,
    replica_sets: &'a [ReplicaSetSeen],
) -> Option<&'a ReplicaSetSeen> {
    let newest = replica_sets
        .iter()
        .filter(|rs| controlled_by(&rs.owners, deployment))
        .filter_map(|rs| rs.revision.map(|r| (r, rs)))
        .max_by_key(|(r, _)| *r)?;
    match deployment.revision {
        Some(wanted) if wanted != newest.0 => None,
        _ => Some(newest.1),
    }
}

fn controlled_by(owners: &[OwnerReference], deployment: &DeploymentSeen) -> bool {
    owners.iter().any(|owner| {
        owner.controller == Some(true)
            && owner.kind == "Deployment"
            && match &deployment.uid {
                Some(uid) => &owner.uid == uid,
                None => owner.name == deployment.name,
            }
    })
}

fn belongs_to(pod: &PodSeen, rs: &ReplicaSetSeen) -> bool {
    match &rs.template_hash {
        Some(rs_hash) => pod.template_hash.as_ref() == Some(rs_hash),
        None => pod
            .owners
            .iter()
            .any(|owner| owner.controller == Some(true) && Some(&owner.uid) == rs.uid.as_ref()),
    }
}

fn condition<'a>(
    conditions: &'a [DeploymentCondition],
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn condition_time(condition: &DeploymentCondition) -> Option<Timestamp> {
    condition
        .last_update_time
        .as_ref()
        .or(condition.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn longer_than(lasted: SignedDuration, grace: Duration) -> bool {
    SignedDuration::try_from(grace).is_ok_and(|grace| lasted > grace)
}

fn pod_failure(pod: &PodSeen, now: Timestamp, graces: &Graces) -> Option<PodFailure> {
    let status = pod.status.as_ref()?;
    let name = pod.name.clone();
    let age = pod.created.map(|created| now.duration_since(created));
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| (true, c))
        .chain(
            status
                .container_statuses
                .iter()
                .flatten()
                .map(|c| (false, c)),
        );
    for (init_container, container) in containers {
        if let Some(failure) = container_failure(&name, init_container, container, age, graces) {
            return Some(failure);
        }
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    })?;
    let lasted = unschedulable
        .last_transition_time
        .as_ref()
        .map(|since| now.duration_since(since.0))
        .or(age)?;
    longer_than(lasted, graces.unschedulable).then(|| PodFailure {
        pod: name,
        container: None,
        init_container: false,
        reason: "Unschedulable".to_string(),
        restarts: None,
        last_termination: None,
        lasted: Some(lasted),
        message: unschedulable.message.clone(),
    })
}

fn container_failure(
    pod: &str,
    init_container: bool,
    container: &ContainerStatus,
    pod_age: Option<SignedDuration>,
    graces: &Graces,
) -> Option<PodFailure> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    let failure = PodFailure {
        pod: pod.to_string(),
        container: Some(container.name.clone()),
        init_container,
        reason: reason.to_string(),
        restarts: None,
        last_termination: None,
        lasted: None,
        message: waiting.message.clone().filter(|m| !m.trim().is_empty()),
    };
    match reason {
        // The waiting message is only the back-off schedule; the last run says what went wrong.
        "CrashLoopBackOff" => Some(PodFailure {
            restarts: Some(container.restart_count),
            last_termination: container
                .last_state
                .as_ref()
                .and_then(|last| last.terminated.as_ref())
                .map(|terminated| LastTermination {
                    exit_code: terminated.exit_code,
                    reason: terminated.reason.clone(),
                    message_tail: terminated.message.as_deref().and_then(tail),
                }),
            message: None,
            ..failure
        }),
        "CreateContainerConfigError" | "InvalidImageName" => Some(failure),
        "ErrImagePull" | "ImagePullBackOff" => {
            let lasted = pod_age?;
            longer_than(lasted, graces.image_pull).then_some(PodFailure {
                lasted: Some(lasted),
                ..failure
            })
        }
        _ => None,
    }
}

/// The last few non-blank lines of a termination message (often a log tail), at most a few
/// hundred characters, cut at the front.
fn tail(message: &str) -> Option<String> {
    const LINES: usize = 3;
    const CHARS: usize = 300;
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let joined = lines[lines.len().saturating_sub(LINES)..].join(" | ");
    if joined.is_empty() {
        return None;
    }
    let count = joined.chars().count();
    Some(if count > CHARS {
        let kept: String = joined.chars().skip(count - CHARS).collect();
        format!("…{kept}")
    } else {
        joined
    })
}

impl fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RolloutStatus::Stale => {
                f.write_str("Waiting for deployment spec update to be observed...")
            }
            RolloutStatus::Progressing { message, .. } => f.write_str(message),
            RolloutStatus::Done => f.write_str("successfully rolled out"),
            RolloutStatus::Failed(failure) => failure.fmt(f),
        }
    }
}

impl fmt::Display for RolloutFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RolloutFailure::ProgressDeadlineExceeded {
                deployment,
                message,
            } => {
                write!(
                    f,
                    "deployment {deployment:?} exceeded its progress deadline"
                )?;
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            RolloutFailure::ReplicaFailure {
                deployment,
                reason,
                message,
            } => {
                write!(f, "deployment {deployment:?} cannot create pods: {reason}")?;
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            RolloutFailure::Pod(failure) => failure.fmt(f),
        }
    }
}

impl fmt::Display for PodFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if let Some(container) = &self.container {
            let kind = if self.init_container {
                "init container"
            } else {
                "container"
            };
            write!(f, " {kind} {container}")?;
        }
        write!(f, ": {}", self.reason)?;
        let mut details = Vec::new();
        if let Some(restarts) = self.restarts {
            let times = if restarts == 1 { "time" } else { "times" };
            details.push(format!("restarted {restarts} {times}"));
        }
        if let Some(lasted) = self.lasted {
            let seconds = SignedDuration::from_secs(lasted.as_secs());
            details.push(format!("for {seconds:#}"));
        }
        if let Some(last) = &self.last_termination {
            let mut detail = format!("last exit code {}", last.exit_code);
            if let Some(reason) = last.reason.as_deref().filter(|r| *r != "Error") {
                detail.push_str(&format!(" ({reason})"));
            }
            if let Some(tail) = &last.message_tail {
                detail.push_str(&format!(": \"{tail}\""));
            }
            details.push(detail);
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join("; "))?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

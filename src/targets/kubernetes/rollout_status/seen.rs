//! What [`rollout_status`](super::rollout_status) reads of a Deployment, its ReplicaSets and
//! their pods, and nothing more: the tracker keeps these for every Deployment it watches. A typed
//! Deployment, ReplicaSet or Pod is 2.2–2.4 KB before any of its strings (every optional field of
//! its spec is held inline), and a thousand services' old and new revisions are eight thousand of
//! them; kept as these, a few hundred bytes each. Statuses keep only what can fail a rollout
//! (boxed: a running pod keeps none), owners only the controller.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{POD_TEMPLATE_HASH, REVISION_ANNOTATION};

/// A Deployment as a rollout is judged by.
#[derive(Debug, Clone, Default)]
pub struct DeploymentSeen {
    pub name: String,
    pub uid: Option<String>,
    pub generation: i64,
    /// The controller's revision annotation.
    pub revision: Option<u64>,
    /// `spec.replicas`.
    pub replicas: Option<i32>,
    /// Counts and the `Progressing` and `ReplicaFailure` conditions.
    pub status: Option<Box<DeploymentStatus>>,
}

/// A ReplicaSet as a rollout is judged by.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSetSeen {
    pub name: String,
    pub uid: Option<String>,
    pub revision: Option<u64>,
    pub template_hash: Option<String>,
    pub owners: Vec<OwnerReference>,
}

/// A pod as a rollout is judged by: its status keeps only what can fail a rollout, the
/// scheduler's refusal and the containers that are waiting (with their restarts and last
/// termination); `None` when there is none of it.
#[derive(Debug, Clone, Default)]
pub struct PodSeen {
    pub name: String,
    pub created: Option<Timestamp>,
    pub deleting: bool,
    pub template_hash: Option<String>,
    pub owners: Vec<OwnerReference>,
    pub status: Option<Box<PodStatus>>,
}

fn revision(meta: &ObjectMeta) -> Option<u64> {
    meta.annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .trim()
        .parse()
        .ok()
}

fn template_hash(meta: &mut ObjectMeta) -> Option<String> {
    meta.labels.as_mut()?.remove(POD_TEMPLATE_HASH)
}

/// The controller among `owners` (the only one a rollout follows).
fn controller(owners: Option<Vec<OwnerReference>>) -> Vec<OwnerReference> {
    let mut owners = owners.unwrap_or_default();
    owners.retain(|owner| owner.controller == Some(true));
    owners
}

/// `kept` unless it is empty.
fn some<T>(kept: Vec<T>) -> Option<Vec<T>> {
    (!kept.is_empty()).then_some(kept)
}

impl DeploymentSeen {
    /// Whether it is asked for exactly `replicas` pods and its controller, having seen that
    /// spec, reports that many of its template, ready and available, and no other: a switch to
    /// it has nothing to write first or wait for.
    pub fn serves(&self, replicas: i32) -> bool {
        let Some(status) = &self.status else {
            return false;
        };
        let count = |count: Option<i32>| count.unwrap_or(0);
        replicas > 0
            && self.replicas == Some(replicas)
            && status.observed_generation.unwrap_or(0) >= self.generation
            && count(status.replicas) == replicas
            && count(status.updated_replicas) == replicas
            && count(status.ready_replicas) >= replicas
            && count(status.available_replicas) >= replicas
    }
}

impl From<Deployment> for DeploymentSeen {
    fn from(deployment: Deployment) -> Self {
        let revision = revision(&deployment.metadata);
        let meta = deployment.metadata;
        DeploymentSeen {
            name: meta.name.unwrap_or_default(),
            uid: meta.uid,
            generation: meta.generation.unwrap_or(0),
            revision,
            replicas: deployment.spec.and_then(|spec| spec.replicas),
            status: deployment.status.map(|mut status| {
                status.conditions = status.conditions.and_then(|conditions| {
                    some(
                        conditions
                            .into_iter()
                            .filter(|c| {
                                matches!(c.type_.as_str(), "Progressing" | "ReplicaFailure")
                            })
                            .collect(),
                    )
                });
                Box::new(status)
            }),
        }
    }
}

impl From<ReplicaSet> for ReplicaSetSeen {
    fn from(replica_set: ReplicaSet) -> Self {
        let mut meta = replica_set.metadata;
        ReplicaSetSeen {
            revision: revision(&meta),
            template_hash: template_hash(&mut meta),
            name: meta.name.unwrap_or_default(),
            uid: meta.uid,
            owners: controller(meta.owner_references),
        }
    }
}

impl From<Pod> for PodSeen {
    fn from(pod: Pod) -> Self {
        let mut meta = pod.metadata;
        PodSeen {
            template_hash: template_hash(&mut meta),
            name: meta.name.unwrap_or_default(),
            created: meta.creation_timestamp.map(|t| t.0),
            deleting: meta.deletion_timestamp.is_some(),
            owners: controller(meta.owner_references),
            status: pod.status.and_then(failing).map(Box::new),
        }
    }
}

/// What of a pod's status can fail a rollout: `PodScheduled=False` and the containers that are
/// waiting; `None` when there is none of it (a pod that runs).
fn failing(status: PodStatus) -> Option<PodStatus> {
    let conditions = status.conditions.into_iter().flatten();
    let status = PodStatus {
        conditions: some(
            conditions
                .filter(|c| c.type_ == "PodScheduled" && c.status == "False")
                .collect(),
        ),
        container_statuses: status.container_statuses.and_then(waiting),
        init_container_statuses: status.init_container_statuses.and_then(waiting),
        ..PodStatus::default()
    };
    let kept = status.conditions.is_some()
        || status.container_statuses.is_some()
        || status.init_container_statuses.is_some();
    kept.then_some(status)
}

/// The containers that are waiting: name, restarts, the waiting state and the last termination;
/// not images, ids or resources.
fn waiting(containers: Vec<ContainerStatus>) -> Option<Vec<ContainerStatus>> {
    some(
        containers
            .into_iter()
            .filter(|c| c.state.as_ref().is_some_and(|s| s.waiting.is_some()))
            .map(|c| ContainerStatus {
                name: c.name,
                ready: c.ready,
                restart_count: c.restart_count,
                state: c.state.map(|state| ContainerState {
                    waiting: state.waiting,
                    ..ContainerState::default()
                }),
                last_state: c.last_state.map(|last| ContainerState {
                    terminated: last.terminated,
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the classification reads survives the conversion; the pod template hash is read
    /// from the labels, which are not kept; of the status only what can fail a rollout stays.
    #[test]
    fn a_pod_seen_keeps_what_its_rollout_is_judged_by() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "api-1a-x", "creationTimestamp": "2026-11-22T10:00:00Z",
                "labels": {"pod-template-hash": "7d9c", "app": "api"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-1"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "api-1a-7d9c", "uid": "rs-1", "controller": true}],
            },
            "spec": {"containers": [{"name": "api", "image": "api:1"}]},
            "status": {
                "podIP": "10.0.0.1", "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"},
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
                "containerStatuses": [
                    {"name": "api", "image": "api:1", "imageID": "sha",
                        "ready": false, "restartCount": 4,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 3}}},
                    {"name": "sidecar", "image": "proxy:1", "ready": true, "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-11-22T10:00:01Z"}}}],
            },
        }))
        .unwrap();
        let seen = PodSeen::from(pod);
        assert_eq!(seen.name, "api-1a-x");
        assert_eq!(seen.template_hash.as_deref(), Some("7d9c"));
        let owners: Vec<&str> = seen.owners.iter().map(|o| o.uid.as_str()).collect();
        assert_eq!(owners, ["rs-1"]);
        assert!(!seen.deleting);
        assert_eq!(seen.created, Some("2026-11-22T10:00:00Z".parse().unwrap()));
        let status = seen.status.unwrap();
        assert_eq!(status.pod_ip, None);
        let conditions: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(conditions, ["PodScheduled"]);
        let containers = status.container_statuses.unwrap();
        assert_eq!(
            containers.len(),
            1,
            "the running sidecar cannot fail the rollout"
        );
        let container = &containers[0];
        assert_eq!(
            (container.name.as_str(), container.restart_count),
            ("api", 4)
        );
        assert_eq!(container.image, "");
        let waiting = container.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = container.last_state.as_ref().unwrap().terminated.as_ref();
        assert_eq!(last.unwrap().exit_code, 3);
    }

    /// A pod whose containers run and which is scheduled keeps no status at all, and a
    /// Deployment only the conditions a rollout can fail by.
    #[test]
    fn a_running_pod_keeps_no_status_and_a_deployment_only_its_failing_conditions() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api-1a-y"},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"},
                    {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "api", "image": "api:1", "ready": true,
                    "restartCount": 0, "state": {"running": {}}}],
            },
        }))
        .unwrap();
        assert!(PodSeen::from(pod).status.is_none());
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api-1a", "generation": 2},
            "status": {
                "observedGeneration": 2, "replicas": 2, "availableReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "message": "has minimum availability"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            },
        }))
        .unwrap();
        let status = DeploymentSeen::from(deployment).status.unwrap();
        assert_eq!(status.available_replicas, Some(2));
        let conditions: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(conditions, ["Progressing"]);
    }

    #[test]
    fn a_deployment_seen_serves_only_at_its_asked_count_with_that_spec_observed() {
        let seen = |generation: i64, observed: i64, counts: [i32; 4]| DeploymentSeen {
            name: "api-a1".to_string(),
            generation,
            replicas: Some(2),
            status: Some(Box::new(DeploymentStatus {
                observed_generation: Some(observed),
                replicas: Some(counts[0]),
                updated_replicas: Some(counts[1]),
                ready_replicas: Some(counts[2]),
                available_replicas: Some(counts[3]),
                ..DeploymentStatus::default()
            })),
            ..DeploymentSeen::default()
        };
        assert!(seen(3, 3, [2, 2, 2, 2]).serves(2));
        // Asked for another count: the spec must change first.
        assert!(!seen(3, 3, [2, 2, 2, 2]).serves(1));
        assert!(!seen(3, 3, [2, 2, 2, 2]).serves(3));
        // Its latest spec not yet seen by the controller.
        assert!(!seen(4, 3, [2, 2, 2, 2]).serves(2));
        // An old pod still around, one not updated, one not ready, one not yet available.
        assert!(!seen(3, 3, [3, 2, 2, 2]).serves(2));
        assert!(!seen(3, 3, [2, 1, 2, 2]).serves(2));
        assert!(!seen(3, 3, [2, 2, 1, 2]).serves(2));
        assert!(!seen(3, 3, [2, 2, 2, 1]).serves(2));
        let mut fresh = seen(1, 1, [0; 4]);
        fresh.status = None;
        assert!(!fresh.serves(2));
    }
}

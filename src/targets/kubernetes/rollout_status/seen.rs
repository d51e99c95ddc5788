//! What [`rollout_status`](super::rollout_status) reads of a Deployment, its ReplicaSets and
//! their pods, and nothing more: the tracker keeps these for every Deployment it watches. A typed
//! Deployment, ReplicaSet or Pod is 2.2–2.4 KB before any of its strings (every optional field of
//! its spec is held inline), and a thousand services' old and new revisions are eight thousand of
//! them; kept as these, a few hundred bytes each.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
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
    pub status: Option<DeploymentStatus>,
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

/// A pod as a rollout is judged by: its status keeps only its conditions and its containers'
/// states.
#[derive(Debug, Clone, Default)]
pub struct PodSeen {
    pub name: String,
    pub created: Option<Timestamp>,
    pub deleting: bool,
    pub template_hash: Option<String>,
    pub owners: Vec<OwnerReference>,
    pub status: Option<PodStatus>,
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
            status: deployment.status,
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
            owners: meta.owner_references.unwrap_or_default(),
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
            owners: meta.owner_references.unwrap_or_default(),
            status: pod.status.map(|status| PodStatus {
                conditions: status.conditions,
                container_statuses: status.container_statuses.map(states),
                init_container_statuses: status.init_container_statuses.map(states),
                ..PodStatus::default()
            }),
        }
    }
}

/// Each container's name, restarts and states; not its image, ids or resources.
fn states(containers: Vec<ContainerStatus>) -> Vec<ContainerStatus> {
    containers
        .into_iter()
        .map(|c| ContainerStatus {
            name: c.name,
            ready: c.ready,
            restart_count: c.restart_count,
            state: c.state,
            last_state: c.last_state,
            ..ContainerStatus::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the classification reads survives the conversion; the pod template hash is read
    /// from the labels, which are not kept.
    #[test]
    fn a_pod_seen_keeps_what_its_rollout_is_judged_by() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "api-1a-x", "creationTimestamp": "2026-11-22T10:00:00Z",
                "labels": {"pod-template-hash": "7d9c", "app": "api"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "api-1a-7d9c", "uid": "rs-1", "controller": true}],
            },
            "spec": {"containers": [{"name": "api", "image": "api:1"}]},
            "status": {
                "podIP": "10.0.0.1", "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "api", "image": "api:1", "imageID": "sha",
                    "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 3}}}],
            },
        }))
        .unwrap();
        let seen = PodSeen::from(pod);
        assert_eq!(seen.name, "api-1a-x");
        assert_eq!(seen.template_hash.as_deref(), Some("7d9c"));
        assert_eq!(seen.owners[0].uid, "rs-1");
        assert!(!seen.deleting);
        assert_eq!(seen.created, Some("2026-11-22T10:00:00Z".parse().unwrap()));
        let status = seen.status.unwrap();
        assert_eq!(status.pod_ip, None);
        assert_eq!(status.conditions.unwrap()[0].type_, "Ready");
        let container = &status.container_statuses.unwrap()[0];
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
}

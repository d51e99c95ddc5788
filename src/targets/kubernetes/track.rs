//! Following one Deployment's rollout by watch — the Deployment, its ReplicaSets and its pods —
//! and classifying every change with [`rollout_status`]. Watches are resumed from their last
//! resourceVersion after a drop and re-listed after `410 Gone` (kube-runtime's watcher), each
//! request ends after a bound so a silent watch is re-established, and a slow tick re-classifies
//! so that grace periods expire even when nothing changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::execute::Clock;

use super::rollout_status::{Graces, RolloutFailure, RolloutStatus, rollout_status};

/// Server-side bound of one watch request; the watcher then starts the next one.
const WATCH_TIMEOUT_SECS: u32 = 55;
/// How often grace periods are re-checked when no event arrives.
const TICK: Duration = Duration::from_secs(5);

/// What the watches have seen so far.
#[derive(Default)]
struct Seen {
    deployment: Option<Deployment>,
    replica_sets: BTreeMap<String, ReplicaSet>,
    pods: BTreeMap<String, Pod>,
}

enum Change {
    Deployment(Event<Deployment>),
    ReplicaSet(Event<ReplicaSet>),
    Pod(Event<Pod>),
    /// A watch refused for good (no permission): retrying will not help.
    Refused(String),
    Tick,
}

/// Whether a watch error is permanent: the credentials lack a permission. Anything else (drops,
/// 5xx, 410 Gone) the watcher recovers from by itself.
fn refused(error: &watcher::Error) -> Option<String> {
    let code = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        _ => return None,
    };
    matches!(code, 401 | 403).then(|| error.to_string())
}

/// Drops what [`rollout_status`] never reads from a watched object: its managed fields.
fn strip<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

fn name_of<K: kube::Resource>(object: &K) -> String {
    object.meta().name.clone().unwrap_or_default()
}

fn fold<K: kube::Resource + Clone>(map: &mut BTreeMap<String, K>, event: Event<K>) {
    match event {
        Event::Apply(o) | Event::InitApply(o) => {
            map.insert(name_of(&o), o);
        }
        Event::Delete(o) => {
            map.remove(&name_of(&o));
        }
        // A re-list follows; objects deleted meanwhile must go, so start again.
        Event::Init => map.clear(),
        Event::InitDone => {}
    }
}

/// An event, or a permanent refusal; transient errors are left to the watcher's backoff.
fn classify<K>(
    item: Result<Event<K>, watcher::Error>,
    change: impl FnOnce(Event<K>) -> Change,
) -> Option<Change> {
    match item {
        Ok(event) => Some(change(event)),
        Err(error) => refused(&error).map(Change::Refused),
    }
}

/// Waits until Deployment `name` (whose pods carry `selector`) is done or has failed.
/// `applied_at` is when its spec was last written by us.
pub async fn wait_rollout(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    selector: &str,
    applied_at: Timestamp,
    clock: Arc<dyn Clock>,
    graces: Graces,
) -> Result<(), RolloutFailure> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let by_name = watcher::Config::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(WATCH_TIMEOUT_SECS);
    let by_labels = watcher::Config::default()
        .labels(selector)
        .timeout(WATCH_TIMEOUT_SECS);
    // Errors are retried inside (default_backoff); only events come out. Field ownership is
    // never classified: dropped on arrival, it is most of a watched object's size.
    let d = watcher::watcher(deployments, by_name)
        .modify(strip)
        .default_backoff()
        .filter_map(|e| async move { classify(e, Change::Deployment) });
    let r = watcher::watcher(replica_sets, by_labels.clone())
        .modify(strip)
        .default_backoff()
        .filter_map(|e| async move { classify(e, Change::ReplicaSet) });
    let p = watcher::watcher(pods, by_labels)
        .modify(strip)
        .default_backoff()
        .filter_map(|e| async move { classify(e, Change::Pod) });
    let ticks = futures::stream::unfold((), |()| async {
        tokio::time::sleep(TICK).await;
        Some((Change::Tick, ()))
    });
    let mut changes = futures::stream::select_all([d.boxed(), r.boxed(), p.boxed(), ticks.boxed()]);
    let mut seen = Seen::default();
    let mut deployment_map = BTreeMap::new();
    while let Some(change) = changes.next().await {
        match change {
            Change::Deployment(event) => {
                fold(&mut deployment_map, event);
                seen.deployment = deployment_map.get(name).cloned();
            }
            Change::ReplicaSet(event) => fold(&mut seen.replica_sets, event),
            Change::Pod(event) => fold(&mut seen.pods, event),
            Change::Refused(message) => {
                return Err(RolloutFailure::ReplicaFailure {
                    deployment: name.to_string(),
                    reason: "WatchRefused".to_string(),
                    message: Some(format!(
                        "{message} (the credentials need get/list/watch on deployments, replicasets and pods: see manifests/rbac.yaml)"
                    )),
                });
            }
            Change::Tick => {}
        }
        let Some(deployment) = &seen.deployment else {
            continue;
        };
        let replica_sets: Vec<ReplicaSet> = seen.replica_sets.values().cloned().collect();
        let pods: Vec<Pod> = seen.pods.values().cloned().collect();
        match rollout_status(
            deployment,
            &replica_sets,
            &pods,
            applied_at,
            clock.now(),
            &graces,
        ) {
            RolloutStatus::Done => return Ok(()),
            RolloutStatus::Failed(failure) => return Err(failure),
            RolloutStatus::Stale | RolloutStatus::Progressing { .. } => {}
        }
    }
    // The tick stream never ends; should it, wait for the step's budget to run out.
    std::future::pending().await
}

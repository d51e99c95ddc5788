//! The ReplicaSet controller: keeps `spec.replicas` pods (named `<rs>-<5 chars>`, owned by the
//! ReplicaSet) and reports `replicas`, `fullyLabeledReplicas`, `readyReplicas`,
//! `availableReplicas` and `observedGeneration`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::discovery::{self, ResourceDef};
use super::kubelet::Kubelet;
use super::selector::LabelSelector;
use super::store::{Store, meta_str};
use super::verbs::suffix;

pub fn pods_res() -> &'static ResourceDef {
    discovery::find("", "v1", "pods").expect("pods are served")
}

pub fn replicasets_res() -> &'static ResourceDef {
    discovery::find("apps", "v1", "replicasets").expect("replicasets are served")
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The pods a ReplicaSet owns.
pub fn owned_pods(store: &Store, rs: &Value) -> Vec<Value> {
    store.owned(pods_res(), meta_str(rs, "namespace"), meta_str(rs, "uid"))
}

fn new_pod(store: &Store, rs: &Value) -> Value {
    let template = &rs["spec"]["template"];
    let namespace = meta_str(rs, "namespace");
    let name = (0..)
        .map(|salt| {
            format!(
                "{}-{}",
                meta_str(rs, "name"),
                suffix(store.resource_version() + salt * 7919)
            )
        })
        .find(|name| store.get(pods_res(), namespace, name).is_none())
        .expect("a free pod name");
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["name"] = json!(name);
    meta["namespace"] = rs["metadata"]["namespace"].clone();
    meta["ownerReferences"] = json!([owner_ref("ReplicaSet", rs)]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    })
}

pub fn owner_ref(kind: &str, owner: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Creates or deletes pods and updates the status of one ReplicaSet; returns when a pod will
/// become available (for `minReadySeconds`).
pub fn sync(store: &mut Store, kubelet: &Kubelet, rs: &Value, now: Instant) -> Option<Instant> {
    let want = rs["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
    let mut pods = owned_pods(store, rs);
    while pods.len() < want {
        let pod = new_pod(store, rs);
        pods.push(store.create(pods_res(), pod, false));
    }
    if pods.len() > want {
        // Not-ready pods go first, then the newest, as the real controller ranks them.
        pods.sort_by_key(|p| {
            let rv: u64 = meta_str(p, "resourceVersion").parse().unwrap_or(0);
            (is_ready(p), std::cmp::Reverse(rv))
        });
        for pod in pods.drain(..pods.len() - want) {
            store.delete(
                pods_res(),
                meta_str(&pod, "namespace"),
                meta_str(&pod, "name"),
            );
        }
    }
    let min_ready = Duration::from_secs(rs["spec"]["minReadySeconds"].as_u64().unwrap_or(0));
    let labels = LabelSelector::from_object(
        &json!({"matchLabels": rs["spec"]["template"]["metadata"]["labels"]}),
    );
    let ready: Vec<&Value> = pods.iter().filter(|p| is_ready(p)).collect();
    let mut next = None;
    let available = ready
        .iter()
        .filter(|p| match kubelet.ready_at(meta_str(p, "uid")) {
            Some(at) if at + min_ready > now => {
                next = Some(next.map_or(at + min_ready, |n: Instant| n.min(at + min_ready)));
                false
            }
            _ => true,
        })
        .count();
    let mut status = json!({"replicas": pods.len()});
    let counts = [
        (
            "fullyLabeledReplicas",
            pods.iter().filter(|p| labels.matches(p)).count(),
        ),
        ("readyReplicas", ready.len()),
        ("availableReplicas", available),
    ];
    for (field, count) in counts {
        if count > 0 {
            status[field] = json!(count);
        }
    }
    status["observedGeneration"] = rs["metadata"]["generation"].clone();
    let mut updated = rs.clone();
    updated["status"] = status;
    store.update(replicasets_res(), rs, updated, false);
    next
}

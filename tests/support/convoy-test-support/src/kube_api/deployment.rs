//! The Deployment controller, after kube-controller-manager's: one ReplicaSet per pod-template
//! hash (named `<deployment>-<hash>`, revision-annotated, owned), scaled by the rollout
//! arithmetic in `rollout.rs`, `spec.paused` honoured, status from `deployment_status.rs`.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::deployment_status::{
    calculate_status, condition, deadline, pause_conditions, progressing, rollout_status,
    set_condition,
};
use super::discovery::{self, ResourceDef};
use super::replicaset::{owner_ref, replicasets_res};
use super::rollout::{Plan, int, reconcile_new, reconcile_old, recreate};
use super::store::{Store, meta_str};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

fn deployments_res() -> &'static ResourceDef {
    discovery::find("apps", "v1", "deployments").expect("deployments are served")
}

/// `kube-controller-manager`'s hash: FNV-1a of the template, its decimal digits mapped onto the
/// alphabet of generated names.
pub fn template_hash(template: &Value) -> String {
    let h = template.to_string().bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

fn revision(obj: &Value) -> i64 {
    obj["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn create_replicaset(store: &mut Store, plan: &Plan, hash: &str, revision: i64) -> Value {
    let d = plan.d;
    let name = format!("{}-{hash}", meta_str(d, "name"));
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": d["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": {
                REVISION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": plan.replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": (plan.replicas + plan.surge).to_string(),
            },
            "ownerReferences": [owner_ref("Deployment", d)],
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    store.create(replicasets_res(), rs, false)
}

/// Reconciles one Deployment; returns when its progress deadline falls due, if it can.
pub fn sync(store: &mut Store, d: &Value) -> Option<Instant> {
    if !d["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    let plan = Plan::new(d);
    let clock = store.clock.clone();
    let uid = meta_str(d, "uid");
    let mut rss: Vec<Value> = store.owned(replicasets_res(), meta_str(d, "namespace"), uid);
    // Oldest first; names break ties within a second.
    rss.sort_by_key(|rs| {
        (
            meta_str(rs, "creationTimestamp").to_string(),
            meta_str(rs, "name").to_string(),
        )
    });
    let paused = d["spec"]["paused"] == true;
    let hash = template_hash(&d["spec"]["template"]);
    let mut conditions: Vec<Value> = d["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut new = rss
        .iter()
        .position(|rs| rs["metadata"]["labels"][HASH_LABEL] == hash.as_str());
    let max_revision = rss.iter().map(revision).max().unwrap_or(0);
    if new.is_none() && !paused {
        let rs = create_replicaset(store, &plan, &hash, max_revision + 1);
        let message = format!("Created new replica set \"{}\"", meta_str(&rs, "name"));
        set_condition(
            &mut conditions,
            condition(
                &clock,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                message,
            ),
        );
        rss.push(rs);
        new = Some(rss.len() - 1);
    } else if let Some(i) = new
        && progressing(&conditions).is_none()
    {
        let message = format!("Found new replica set \"{}\"", meta_str(&rss[i], "name"));
        set_condition(
            &mut conditions,
            condition(&clock, "Progressing", "True", "FoundNewReplicaSet", message),
        );
    }
    if let Some(i) = new
        && !paused
        && revision(&rss[i]) < max_revision
    {
        // A rollback: the old template's ReplicaSet becomes the newest revision again.
        let mut updated = rss[i].clone();
        updated["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
        rss[i] = store.update(replicasets_res(), &rss[i], updated, false);
    }
    pause_conditions(&clock, &mut conditions, paused);
    if let Some(new) = new {
        if paused {
            let others_idle = rss
                .iter()
                .enumerate()
                .all(|(i, rs)| i == new || int(&rs["spec"]["replicas"]) == 0);
            if others_idle && int(&rss[new]["spec"]["replicas"]) != plan.replicas {
                plan.scale(store, &mut rss[new], plan.replicas);
            }
        } else if d["spec"]["strategy"]["type"] == "Recreate" {
            recreate(store, &plan, &mut rss, new);
        } else if !reconcile_new(store, &plan, &mut rss, new) {
            reconcile_old(store, &plan, &mut rss, new);
        }
    }
    let status = calculate_status(&plan, &rss, new, conditions, &clock);
    let status = if paused {
        status
    } else {
        rollout_status(&plan, status, new.map(|i| &rss[i]), &clock)
    };
    if let Some(new) = new
        && !paused
        && complete(&plan, &status)
    {
        clean_up_history(store, d, &rss, new);
    }
    let due = deadline(d, &status, &clock);
    let mut updated = d.clone();
    updated["status"] = status;
    if let Some(i) = new {
        updated["metadata"]["annotations"][REVISION] = json!(revision(&rss[i]).to_string());
    }
    store.update(deployments_res(), d, updated, false);
    due
}

fn complete(plan: &Plan, status: &Value) -> bool {
    ["updatedReplicas", "replicas", "availableReplicas"]
        .iter()
        .all(|f| int(&status[*f]) == plan.replicas)
}

/// Deletes the oldest idle ReplicaSets beyond `revisionHistoryLimit`.
fn clean_up_history(store: &mut Store, d: &Value, rss: &[Value], new: usize) {
    let limit = d["spec"]["revisionHistoryLimit"].as_u64().unwrap_or(10) as usize;
    let idle: Vec<&Value> = rss
        .iter()
        .enumerate()
        .filter(|(i, rs)| {
            *i != new && int(&rs["spec"]["replicas"]) == 0 && int(&rs["status"]["replicas"]) == 0
        })
        .map(|(_, rs)| rs)
        .collect();
    let mut idle = idle;
    idle.sort_by_key(|rs| revision(rs));
    for rs in idle.iter().take(idle.len().saturating_sub(limit)) {
        store.delete(
            replicasets_res(),
            meta_str(rs, "namespace"),
            meta_str(rs, "name"),
        );
    }
}

//! The Deployment controller, after kube-controller-manager's: one ReplicaSet per pod-template
//! hash, rolling updates within `maxSurge`/`maxUnavailable` (or Recreate), `spec.paused`, and
//! the status fields and `Available`/`Progressing` conditions computed the way the real
//! controller computes them (`calculateStatus`, `syncRolloutStatus`).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::discovery::{self, ResourceDef};
use super::replicaset::{owned_pods, owner_ref, replicasets_res};
use super::store::{Clock, Store, meta_str, owned_by};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

fn deployments_res() -> &'static ResourceDef {
    discovery::find("apps", "v1", "deployments").expect("deployments are served")
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
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

/// An int-or-percent against `total`, rounded up (surge) or down (unavailable).
fn resolve(v: &Value, total: i64, round_up: bool) -> i64 {
    let Some(text) = v.as_str() else {
        return v.as_i64().unwrap_or(0);
    };
    let percent: i64 = text.trim_end_matches('%').parse().unwrap_or(25);
    let scaled = percent * total;
    if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    }
}

struct Plan<'a> {
    d: &'a Value,
    replicas: i64,
    surge: i64,
    unavailable: i64,
}

impl<'a> Plan<'a> {
    fn new(d: &'a Value) -> Self {
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let strategy = &d["spec"]["strategy"];
        if strategy["type"] == "Recreate" {
            return Plan {
                d,
                replicas,
                surge: 0,
                unavailable: 0,
            };
        }
        let rolling = &strategy["rollingUpdate"];
        let pick = |v: &Value| if v.is_null() { json!("25%") } else { v.clone() };
        let surge = resolve(&pick(&rolling["maxSurge"]), replicas, true);
        let mut unavailable = resolve(&pick(&rolling["maxUnavailable"]), replicas, false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Plan {
            d,
            replicas,
            surge,
            unavailable: unavailable.min(replicas),
        }
    }

    fn scale(&self, store: &mut Store, rs: &mut Value, to: i64) {
        let mut updated = rs.clone();
        updated["spec"]["replicas"] = json!(to);
        let annotations = &mut updated["metadata"]["annotations"];
        annotations["deployment.kubernetes.io/desired-replicas"] = json!(self.replicas.to_string());
        annotations["deployment.kubernetes.io/max-replicas"] =
            json!((self.replicas + self.surge).to_string());
        *rs = store.update(replicasets_res(), rs, updated, false);
    }
}

fn spec_replicas(rss: &[Value]) -> i64 {
    rss.iter().map(|rs| int(&rs["spec"]["replicas"])).sum()
}

fn status_sum(rss: &[Value], field: &str) -> i64 {
    rss.iter().map(|rs| int(&rs["status"][field])).sum()
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

/// Scales the new ReplicaSet up within `maxSurge`; true when it changed.
fn reconcile_new(store: &mut Store, plan: &Plan, rss: &mut [Value], new: usize) -> bool {
    let current = int(&rss[new]["spec"]["replicas"]);
    if current == plan.replicas {
        return false;
    }
    if current > plan.replicas {
        plan.scale(store, &mut rss[new], plan.replicas);
        return true;
    }
    let room = plan.replicas + plan.surge - spec_replicas(rss);
    if room <= 0 {
        return false;
    }
    let to = current + room.min(plan.replicas - current);
    plan.scale(store, &mut rss[new], to);
    true
}

/// Scales old ReplicaSets down within `maxUnavailable`, unhealthy replicas first.
fn reconcile_old(store: &mut Store, plan: &Plan, rss: &mut [Value], new: usize) -> bool {
    let old: Vec<usize> = (0..rss.len())
        .filter(|i| *i != new && int(&rss[*i]["spec"]["replicas"]) > 0)
        .collect();
    if old.is_empty() {
        return false;
    }
    let min_available = plan.replicas - plan.unavailable;
    let new_unavailable =
        int(&rss[new]["spec"]["replicas"]) - int(&rss[new]["status"]["availableReplicas"]);
    let max_down = spec_replicas(rss) - min_available - new_unavailable;
    if max_down <= 0 {
        return false;
    }
    let mut cleaned = 0;
    for &i in &old {
        let (spec, available) = (
            int(&rss[i]["spec"]["replicas"]),
            int(&rss[i]["status"]["availableReplicas"]),
        );
        if cleaned >= max_down || spec == available {
            continue;
        }
        let down = (max_down - cleaned).min(spec - available);
        plan.scale(store, &mut rss[i], spec - down);
        cleaned += down;
    }
    let available = status_sum(rss, "availableReplicas");
    let mut scaled = 0;
    if available > min_available {
        let total = available - min_available;
        for &i in &old {
            let spec = int(&rss[i]["spec"]["replicas"]);
            if scaled >= total || spec == 0 {
                continue;
            }
            let down = spec.min(total - scaled);
            plan.scale(store, &mut rss[i], spec - down);
            scaled += down;
        }
    }
    cleaned + scaled > 0
}

/// Recreate: every old pod gone before the new ReplicaSet scales up.
fn recreate(store: &mut Store, plan: &Plan, rss: &mut [Value], new: usize) {
    let mut old_left = false;
    for i in (0..rss.len()).filter(|i| *i != new) {
        if int(&rss[i]["spec"]["replicas"]) > 0 {
            plan.scale(store, &mut rss[i], 0);
        }
        old_left |=
            !owned_pods(store, &rss[i]).is_empty() || int(&rss[i]["status"]["replicas"]) > 0;
    }
    if !old_left && int(&rss[new]["spec"]["replicas"]) != plan.replicas {
        plan.scale(store, &mut rss[new], plan.replicas);
    }
}

fn condition(clock: &Clock, kind: &str, status: &str, reason: &str, message: String) -> Value {
    let now = clock.stamp();
    json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// `SetDeploymentCondition`: no change for the same status and reason; the transition time
/// survives a change of reason; the changed condition moves to the end.
fn set_condition(conditions: &mut Vec<Value>, mut c: Value) {
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

fn progressing(conditions: &[Value]) -> Option<&Value> {
    conditions.iter().find(|c| c["type"] == "Progressing")
}

/// Reconciles one Deployment; returns when its progress deadline falls due, if it can.
pub fn sync(store: &mut Store, d: &Value) -> Option<Instant> {
    if !d["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    let plan = Plan::new(d);
    let clock = store.clock.clone();
    let uid = meta_str(d, "uid");
    let mut rss: Vec<Value> = store
        .list(replicasets_res(), Some(meta_str(d, "namespace")))
        .into_iter()
        .filter(|rs| owned_by(rs, uid))
        .collect();
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
    let due = deadline(d, &status, &clock);
    let mut updated = d.clone();
    updated["status"] = status;
    if let Some(i) = new {
        updated["metadata"]["annotations"][REVISION] = json!(revision(&rss[i]).to_string());
    }
    store.update(deployments_res(), d, updated, false);
    due
}

fn pause_conditions(clock: &Clock, conditions: &mut Vec<Value>, paused: bool) {
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
fn calculate_status(
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
fn rollout_status(plan: &Plan, mut status: Value, new: Option<&Value>, clock: &Clock) -> Value {
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

fn progress_deadline(d: &Value) -> Duration {
    Duration::from_secs(d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600))
}

fn timed_out(d: &Value, current: Option<&Value>, clock: &Clock) -> bool {
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
fn deadline(d: &Value, status: &Value, clock: &Clock) -> Option<Instant> {
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

//! The arithmetic of a rollout, after kube-controller-manager's `rolling.go` and
//! `recreate.go`: how far the new ReplicaSet may scale up within `maxSurge`, how far old ones may
//! scale down within `maxUnavailable` (unhealthy replicas first), and Recreate's all-old-gone rule.

use serde_json::{Value, json};

use super::replicaset::{owned_pods, replicasets_res};
use super::store::Store;

pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
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

pub struct Plan<'a> {
    pub d: &'a Value,
    pub replicas: i64,
    pub surge: i64,
    pub unavailable: i64,
}

impl<'a> Plan<'a> {
    pub fn new(d: &'a Value) -> Self {
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

    pub fn scale(&self, store: &mut Store, rs: &mut Value, to: i64) {
        let mut updated = rs.clone();
        updated["spec"]["replicas"] = json!(to);
        let annotations = &mut updated["metadata"]["annotations"];
        annotations["deployment.kubernetes.io/desired-replicas"] = json!(self.replicas.to_string());
        annotations["deployment.kubernetes.io/max-replicas"] =
            json!((self.replicas + self.surge).to_string());
        *rs = store.update(replicasets_res(), rs, updated, false);
    }
}

pub fn spec_replicas(rss: &[Value]) -> i64 {
    rss.iter().map(|rs| int(&rs["spec"]["replicas"])).sum()
}

pub fn status_sum(rss: &[Value], field: &str) -> i64 {
    rss.iter().map(|rs| int(&rs["status"][field])).sum()
}

/// Scales the new ReplicaSet up within `maxSurge`; true when it changed.
pub fn reconcile_new(store: &mut Store, plan: &Plan, rss: &mut [Value], new: usize) -> bool {
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
pub fn reconcile_old(store: &mut Store, plan: &Plan, rss: &mut [Value], new: usize) -> bool {
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
pub fn recreate(store: &mut Store, plan: &Plan, rss: &mut [Value], new: usize) {
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

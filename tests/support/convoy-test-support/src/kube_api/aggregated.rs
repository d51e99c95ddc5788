//! Aggregated discovery (`apidiscovery.k8s.io/v2`, GA since 1.30): the whole of `/api` or
//! `/apis` in one `APIGroupDiscoveryList`, served when the `Accept` header asks for it, as
//! `kube::Discovery::run_aggregated` does.

use serde_json::{Value, json};

use super::discovery::{RESOURCES, ResourceDef};

/// The media type a client sends and gets back.
pub const MEDIA_TYPE: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub fn wanted(accept: &str) -> bool {
    accept.contains("g=apidiscovery.k8s.io") && accept.contains("v=v2")
}

fn resource(r: &ResourceDef) -> Value {
    let kind = |group: &str, version: &str, kind: &str| json!({"group": group, "version": version, "kind": kind});
    let mut subresources = Vec::new();
    let sub_verbs = ["get", "patch", "update"];
    if r.status {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": kind(r.group, r.version, r.kind),
            "verbs": sub_verbs,
        }));
    }
    if r.scale {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": kind("autoscaling", "v1", "Scale"),
            "verbs": sub_verbs,
        }));
    }
    json!({
        "resource": r.plural,
        "responseKind": kind(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
        "shortNames": r.short_names,
        "subresources": subresources,
    })
}

/// `/api` (core) or `/apis` (every other group).
pub fn list(core: bool) -> Value {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group.is_empty() == core) {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, version)| {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(resource)
                .collect();
            json!({
                "metadata": {"name": group},
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

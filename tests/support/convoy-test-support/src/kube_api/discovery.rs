//! The kinds the test API server knows, and the discovery documents (`/version`, `/api`, `/apis`,
//! `/apis/{group}/{version}`) built from that one table.

use serde_json::{Value, json};

/// One served resource: everything the router, the store and discovery need to know about it.
#[derive(Debug)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Has a `status` subresource: writes to the main resource keep the stored status.
    pub status: bool,
    /// `metadata.generation` is kept and bumped by spec changes.
    pub generation: bool,
    /// Only list and watch are served (events).
    pub read_only: bool,
}

const ALL_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const READ_VERBS: &[&str] = &["get", "list", "watch"];
const SUB_VERBS: &[&str] = &["get", "patch", "update"];

const fn def(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced: true,
        short_names,
        status: false,
        generation: false,
        read_only: false,
    }
}

/// Every resource the server serves.
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        status: true,
        generation: true,
        ..def(
            "apps",
            "deployments",
            "deployment",
            "Deployment",
            &["deploy"],
        )
    },
    ResourceDef {
        status: true,
        generation: true,
        ..def("apps", "replicasets", "replicaset", "ReplicaSet", &["rs"])
    },
    ResourceDef {
        status: true,
        ..def("", "pods", "pod", "Pod", &["po"])
    },
    ResourceDef {
        status: true,
        ..def("", "services", "service", "Service", &["svc"])
    },
    def("", "configmaps", "configmap", "ConfigMap", &["cm"]),
    def("", "secrets", "secret", "Secret", &[]),
    ResourceDef {
        namespaced: false,
        status: true,
        ..def("", "namespaces", "namespace", "Namespace", &["ns"])
    },
    ResourceDef {
        read_only: true,
        ..def("", "events", "event", "Event", &["ev"])
    },
    def("coordination.k8s.io", "leases", "lease", "Lease", &[]),
    ResourceDef {
        version: "v2",
        status: true,
        generation: true,
        ..def(
            "autoscaling",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            &["hpa"],
        )
    },
    ResourceDef {
        status: true,
        generation: true,
        ..def(
            "policy",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            &["pdb"],
        )
    },
];

impl ResourceDef {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: how the real server names a resource in
    /// error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod`: the name used in `Invalid` messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        if self.read_only {
            READ_VERBS
        } else {
            ALL_VERBS
        }
    }
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0",
        "gitCommit": "60a317eadfcb839692a5551a50f6ec3d1a9e4eb2",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:11Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]
    })
}

/// The non-core groups, each with its single version.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&(r.group, r.version)) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(name: &str) -> Option<Value> {
    let (g, v) = groups().into_iter().find(|(g, _)| *g == name)?;
    let mut doc = group_json(g, v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// `/api/v1` or `/apis/{group}/{version}`; `None` for a group version the server does not serve.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": SUB_VERBS,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

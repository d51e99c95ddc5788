//! The light validation the real server would fail with 422 Invalid: names, and a Deployment's
//! (or ReplicaSet's) selector, template labels and containers.

use serde_json::Value;

use super::discovery::ResourceDef;
use super::selector::LabelSelector;
use super::status::ApiError;

/// DNS-1123 subdomain (most kinds) or label (Services, Namespaces).
fn name_problem(res: &ResourceDef, name: &str) -> Option<String> {
    let label_only = matches!(res.plural, "services" | "namespaces");
    let max = if label_only { 63 } else { 253 };
    let parts: Vec<&str> = if label_only {
        vec![name]
    } else {
        name.split('.').collect()
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    if name.len() <= max && parts.iter().all(|p| part_ok(p)) {
        return None;
    }
    let what = if label_only {
        "RFC 1123 label"
    } else {
        "RFC 1123 subdomain"
    };
    Some(format!(
        "Invalid value: \"{name}\": a lowercase {what} must consist of lower case alphanumeric \
         characters, '-' or '.', and must start and end with an alphanumeric character"
    ))
}

/// Checks an object about to be stored.
pub fn validate(res: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let mut causes: Vec<(String, String)> = Vec::new();
    if name.is_empty() {
        causes.push((
            "metadata.name".into(),
            "Required value: name or generateName is required".into(),
        ));
    } else if let Some(problem) = name_problem(res, name) {
        causes.push(("metadata.name".into(), problem));
    }
    if matches!(res.plural, "deployments" | "replicasets") {
        workload(obj, &mut causes);
    }
    if res.plural == "pods" && containers_missing(&obj["spec"]) {
        causes.push(("spec.containers".into(), "Required value".into()));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, name, &causes))
    }
}

fn containers_missing(pod_spec: &Value) -> bool {
    pod_spec["containers"]
        .as_array()
        .is_none_or(|c| c.is_empty())
}

fn workload(obj: &Value, causes: &mut Vec<(String, String)>) {
    let selector = &obj["spec"]["selector"];
    let labels = &obj["spec"]["template"]["metadata"]["labels"];
    let empty = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.is_empty())
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(|e| e.is_empty());
    if empty {
        causes.push(("spec.selector".into(), "Required value".into()));
    } else if !LabelSelector::from_object(selector).matches_labels(labels) {
        causes.push((
            "spec.template.metadata.labels".into(),
            format!("Invalid value: {labels}: `selector` does not match template `labels`"),
        ));
    }
    if containers_missing(&obj["spec"]["template"]["spec"]) {
        causes.push((
            "spec.template.spec.containers".into(),
            "Required value".into(),
        ));
    }
    if obj["spec"]["replicas"].as_i64().is_some_and(|r| r < 0) {
        causes.push((
            "spec.replicas".into(),
            "Invalid value: must be greater than or equal to 0".into(),
        ));
    }
}

/// Checks an update against the stored object: immutable fields stay as they are.
pub fn validate_update(res: &ResourceDef, old: &Value, new: &Value) -> Result<(), ApiError> {
    let name = old["metadata"]["name"].as_str().unwrap_or("");
    let mut causes: Vec<(String, String)> = Vec::new();
    match res.plural {
        "deployments" | "replicasets" if old["spec"]["selector"] != new["spec"]["selector"] => {
            causes.push((
                "spec.selector".into(),
                format!(
                    "Invalid value: {}: field is immutable",
                    new["spec"]["selector"]
                ),
            ));
        }
        "configmaps" | "secrets" if old["immutable"] == true => {
            for field in ["data", "binaryData"] {
                if old[field] != new[field] {
                    causes.push((
                        field.into(),
                        "Forbidden: field is immutable when `immutable` is set".into(),
                    ));
                }
            }
            if new["immutable"] != true {
                causes.push((
                    "immutable".into(),
                    "Forbidden: field is immutable when `immutable` is set".into(),
                ));
            }
        }
        "services" if old["spec"]["clusterIP"] != new["spec"]["clusterIP"] => {
            causes.push((
                "spec.clusterIPs[0]".into(),
                format!(
                    "Invalid value: {}: may not change once set",
                    new["spec"]["clusterIP"]
                ),
            ));
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(res, name, &causes))
    }
}

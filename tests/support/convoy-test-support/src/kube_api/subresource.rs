//! The `status` and `scale` subresources: what each shows of an object, and which part of the
//! stored object a write through it may change (a write to the main resource keeps the status).

use serde_json::{Value, json};

use super::call::Call;
use super::selector::LabelSelector;
use super::status::ApiError;

/// What a subresource shows of an object.
pub fn view(call: &Call, obj: &Value) -> Value {
    match call.sub.as_deref() {
        Some("scale") => scale_of(obj),
        _ => obj.clone(),
    }
}

pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": LabelSelector::to_query(&obj["spec"]["selector"]),
        },
    })
}

/// The stored object a write through a subresource (or the main resource) produces.
pub fn unview(call: &Call, old: &Value, new: Value) -> Value {
    match call.sub.as_deref() {
        Some("scale") => {
            let mut obj = old.clone();
            obj["spec"]["replicas"] = new["spec"]["replicas"].clone();
            obj
        }
        Some(_) => {
            let mut obj = old.clone();
            obj["status"] = new["status"].clone();
            obj
        }
        None if call.res.status => {
            let mut obj = new;
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => drop(obj.as_object_mut().map(|m| m.remove("status"))),
            }
            obj
        }
        None => new,
    }
}

/// Subresources this resource has.
pub fn check_sub(call: &Call) -> Result<(), ApiError> {
    match call.sub.as_deref() {
        None => Ok(()),
        Some("status") if call.res.status => Ok(()),
        Some("scale") if call.res.scale => Ok(()),
        _ => Err(ApiError::path_not_found()),
    }
}

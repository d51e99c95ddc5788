//! Patch bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge patch
//! (merge patch whose keyed lists merge item by item, with the `$patch` directives).

use serde_json::Value;

use super::fields;
use super::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        match mime {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies a merge, JSON or strategic patch to `target`.
pub fn patch(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchKind::Merge | PatchKind::Strategic => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("patch body must be a JSON object"));
            }
            if kind == PatchKind::Merge {
                json_patch::merge(&mut doc, &p);
            } else {
                strategic_merge(&mut doc, &p);
            }
        }
        PatchKind::Apply => unreachable!("apply patches go through apply::apply"),
    }
    Ok(doc)
}

/// Strategic merge: maps merge (null deletes), keyed lists merge by key (`$patch: delete`
/// removes an item, `$patch: replace` replaces the list), other lists are replaced.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        strip_directives(&mut replacement);
        *target = replacement;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("just made an object");
    for (k, pv) in p {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            t.remove(k);
            continue;
        }
        match t.get_mut(k) {
            Some(tv) => merge_field(k, tv, pv),
            None => {
                let mut v = pv.clone();
                strip_directives(&mut v);
                t.insert(k.clone(), v);
            }
        }
    }
}

fn merge_field(name: &str, target: &mut Value, patch: &Value) {
    let patch_items = patch.as_array().map(Vec::as_slice).unwrap_or_default();
    let target_items = target.as_array().map(Vec::as_slice).unwrap_or_default();
    let sample: Vec<Value> = patch_items.iter().chain(target_items).cloned().collect();
    let keys = patch
        .as_array()
        .and_then(|_| fields::list_keys(name, &without_directives(&sample)));
    let (Some(keys), Some(items)) = (keys, target.as_array_mut()) else {
        if patch.is_array() {
            *target = patch.clone();
            strip_directives(target);
        } else {
            strategic_merge(target, patch);
        }
        return;
    };
    if patch_items.iter().any(|p| p["$patch"] == "replace") {
        *target = patch.clone();
        strip_directives(target);
        return;
    }
    for p in patch_items {
        let key = fields::item_key(p, &keys);
        let existing = items.iter().position(|i| fields::item_key(i, &keys) == key);
        match (existing, p["$patch"].as_str()) {
            (Some(i), Some("delete")) => {
                items.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => strategic_merge(&mut items[i], p),
            (None, _) => {
                let mut v = p.clone();
                strip_directives(&mut v);
                items.push(v);
            }
        }
    }
}

/// Items as they would be stored, for deciding whether a list is keyed.
fn without_directives(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|i| {
            let mut i = i.clone();
            strip_directives(&mut i);
            i
        })
        .collect()
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_keys_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "web", "image": "a", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "s"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "web", "image": "b", "env": [{"name": "B", "value": "2"}]},
            {"name": "sidecar", "$patch": "delete"}
        ]}});
        strategic_merge(&mut pod, &patch);
        assert_eq!(
            pod,
            json!({"spec": {"containers": [
                {"name": "web", "image": "b", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
            ]}})
        );
    }
}

//! The verbs on stored objects — get, list, create, update, patch, apply, delete — including the
//! `status` and `scale` subresources and `dryRun=All`. Watches live in `watch.rs`.

use serde_json::{Value, json};

use super::apply;
use super::call::Call;
use super::defaults;
use super::discovery::ResourceDef;
use super::patch::{self, PatchKind};
use super::status::{self, ApiError};
use super::store::{Store, has_finalizers, meta_str};
use super::subresource::{unview, view};
use super::validate::{validate, validate_update};

fn body_json(call: &Call) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(&call.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    object(body)
}

/// Bodies must be objects (with an object `metadata`, added when missing).
fn object(mut body: Value) -> Result<Value, ApiError> {
    if !body.is_object() || !(body["metadata"].is_object() || body["metadata"].is_null()) {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if body["metadata"].is_null() {
        body["metadata"] = json!({});
    }
    Ok(body)
}

fn find<'a>(store: &'a Store, call: &Call) -> Result<&'a Value, ApiError> {
    store
        .get(call.res, call.ns(), call.name())
        .ok_or_else(|| ApiError::not_found(call.res, call.name()))
}

pub fn get(store: &Store, call: &Call) -> Result<Value, ApiError> {
    Ok(view(call, find(store, call)?))
}

pub fn list(store: &Store, call: &Call) -> Result<Value, ApiError> {
    let (labels, fields) = (call.labels()?, call.fields()?);
    let matching = store.matching(call.res, call.namespace.as_deref(), |o| {
        labels.matches(o) && fields.matches(o)
    });
    let now = store.resource_version();
    let (items, next, version) = page(matching, call, now)?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut o| {
            // The real server leaves the type off list items.
            o.as_object_mut()
                .map(|m| (m.remove("apiVersion"), m.remove("kind")));
            o
        })
        .collect();
    let mut metadata = json!({"resourceVersion": version.to_string()});
    if let Some(next) = next {
        metadata["continue"] = next.into();
    }
    if call.metadata_only() {
        // What the real server answers a metadata-only list: each item's metadata, typed.
        let items: Vec<Value> = items
            .into_iter()
            .map(|o| {
                json!({
                    "apiVersion": "meta.k8s.io/v1",
                    "kind": "PartialObjectMetadata",
                    "metadata": o["metadata"],
                })
            })
            .collect();
        return Ok(json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": items,
        }));
    }
    Ok(json!({
        "kind": format!("{}List", call.res.kind),
        "apiVersion": call.res.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

/// The page of `items` that `limit` and `continue` ask for, the token of the next one and the
/// resource version to report. The token carries the offset and the first page's version, which
/// every page reports, as a real server's pages all come from the first one's snapshot: a
/// watcher watches from there, and the history replays what changed while it paged (here the
/// later pages show newer objects, which the replay then brings up to date again).
fn page<'s>(
    items: impl Iterator<Item = &'s Value>,
    call: &Call,
    now: u64,
) -> Result<(Vec<Value>, Option<String>, u64), ApiError> {
    let (start, version) = match call.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => token
            .split_once('@')
            .and_then(|(n, v)| Some((n.parse::<usize>().ok()?, v.parse::<u64>().ok()?)))
            .ok_or_else(|| ApiError::bad_request(format!("invalid continue token {token:?}")))?,
        None => (0, now),
    };
    let limit = call.param("limit").and_then(|l| l.parse::<usize>().ok());
    let mut rest = items.skip(start);
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return Ok((rest.cloned().collect(), None, version));
    };
    let page: Vec<Value> = rest.by_ref().take(limit).cloned().collect();
    let end = start.saturating_add(limit);
    let next = rest.next().is_some().then(|| format!("{end}@{version}"));
    Ok((page, next, version))
}

/// Checks type and namespace of a body against the URL and fills them in.
fn check_identity(call: &Call, obj: &mut Value) -> Result<(), ApiError> {
    let expected = call.res.api_version();
    if let Some(v) = obj["apiVersion"].as_str().filter(|v| *v != expected) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(k) = obj["kind"].as_str().filter(|k| *k != call.res.kind) {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            call.res.kind
        )));
    }
    if call.res.namespaced {
        let ns = meta_str(obj, "namespace");
        if !ns.is_empty() && ns != call.ns() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        obj["metadata"]["namespace"] = json!(call.ns());
    }
    if let Some(name) = &call.name
        && meta_str(obj, "name") != name
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    Ok(())
}

/// That the namespace of a new object named `name` exists and takes new objects.
fn check_namespace(store: &Store, call: &Call, name: &str) -> Result<(), ApiError> {
    if call.res.namespaced && !store.namespace_exists(call.ns()) {
        return Err(ApiError::namespace_not_found(call.ns()));
    }
    if call.res.namespaced && store.namespace_terminating(call.ns()) {
        return Err(ApiError::namespace_terminating(call.res, name, call.ns()));
    }
    Ok(())
}

fn created_status(res: &ResourceDef, obj: &mut Value) {
    if res.plural == "pods" {
        obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
    } else if res.plural == "namespaces" {
        obj["status"] = json!({"phase": "Active"});
    } else if res.status {
        obj.as_object_mut().map(|m| m.remove("status"));
    }
}

pub fn create(store: &mut Store, call: &Call) -> Result<(u16, Value), ApiError> {
    let mut obj = body_json(call)?;
    check_identity(call, &mut obj)?;
    check_namespace(store, call, meta_str(&obj, "name"))?;
    if meta_str(&obj, "name").is_empty()
        && let Some(prefix) = obj["metadata"]["generateName"].as_str()
    {
        obj["metadata"]["name"] = json!(format!("{prefix}{}", suffix(store.resource_version())));
    }
    let mut obj = checked_new(store, call, obj)?;
    if store
        .get(call.res, call.ns(), meta_str(&obj, "name"))
        .is_some()
    {
        return Err(ApiError::already_exists(call.res, meta_str(&obj, "name")));
    }
    created_status(call.res, &mut obj);
    apply::track_update(None, &mut obj, &call.writer(store));
    Ok((201, store.create(call.res, obj, call.dry_run())))
}

/// Five characters from the alphabet Kubernetes uses for generated names.
pub fn suffix(seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0005_DEEC_E66D;
    (0..5)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            ALPHABET[(x >> 40) as usize % ALPHABET.len()] as char
        })
        .collect()
}

pub fn replace(store: &mut Store, call: &Call) -> Result<Value, ApiError> {
    let old = find(store, call)?.clone();
    let mut body = body_json(call)?;
    if call.sub.as_deref() != Some("scale") {
        check_identity(call, &mut body)?;
    }
    let rv = meta_str(&body, "resourceVersion");
    if !rv.is_empty() && rv != meta_str(&old, "resourceVersion") {
        return Err(ApiError::stale(call.res, call.name()));
    }
    write(store, call, &old, unview(call, &old, body))
}

/// A new object with defaults and allocations, if valid.
fn checked_new(store: &Store, call: &Call, mut obj: Value) -> Result<Value, ApiError> {
    defaults::apply(call.res, &mut obj);
    defaults::allocate(call.res, &mut obj, store.resource_version());
    validate(call.res, &obj)?;
    Ok(obj)
}

/// A changed object with defaults and kept allocations, if valid as an update of `old`.
fn checked_change(call: &Call, old: &Value, mut new: Value) -> Result<Value, ApiError> {
    defaults::apply(call.res, &mut new);
    defaults::keep_allocated(call.res, old, &mut new);
    validate(call.res, &new)?;
    validate_update(call.res, old, &new)?;
    Ok(new)
}

fn write(store: &mut Store, call: &Call, old: &Value, new: Value) -> Result<Value, ApiError> {
    let mut new = checked_change(call, old, new)?;
    apply::track_update(Some(old), &mut new, &call.writer(store));
    let stored = store.update(call.res, old, new, call.dry_run());
    Ok(view(call, &stored))
}

pub fn patch(store: &mut Store, call: &Call) -> Result<(u16, Value), ApiError> {
    let kind = PatchKind::from_content_type(&call.content_type).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {}", call.content_type))
    })?;
    if kind == PatchKind::Apply {
        return server_side_apply(store, call);
    }
    let old = find(store, call)?.clone();
    let target = view(call, &old);
    let patched = patch::patch(kind, &target, &call.body)?;
    if meta_str(&patched, "resourceVersion") != meta_str(&target, "resourceVersion") {
        return Err(ApiError::stale(call.res, call.name()));
    }
    if meta_str(&patched, "name") != call.name() {
        return Err(ApiError::bad_request(
            "metadata.name cannot be changed by a patch",
        ));
    }
    Ok((200, write(store, call, &old, unview(call, &old, patched))?))
}

fn server_side_apply(store: &mut Store, call: &Call) -> Result<(u16, Value), ApiError> {
    if call.param("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "fieldManager is required for apply requests",
        ));
    }
    let config: Value = serde_json::from_slice(&call.body)
        .or_else(|_| yaml_serde::from_slice(&call.body))
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let mut config = object(config)?;
    for field in ["apiVersion", "kind"] {
        if config[field].as_str().is_none_or(str::is_empty) {
            let shown = if field == "kind" { "Kind" } else { field };
            return Err(ApiError::bad_request(format!(
                "Object '{shown}' is missing in the applied configuration"
            )));
        }
    }
    check_identity(call, &mut config)?;
    let writer = call.writer(store);
    let force = call.flag("force");
    match store.get(call.res, call.ns(), call.name()).cloned() {
        None if call.sub.is_some() => Err(ApiError::not_found(call.res, call.name())),
        None => {
            check_namespace(store, call, call.name())?;
            let mut obj = apply::apply(call.res, None, &config, &writer, force)?;
            obj["metadata"]["name"] = json!(call.name());
            if call.res.namespaced {
                obj["metadata"]["namespace"] = json!(call.ns());
            }
            let mut obj = checked_new(store, call, obj)?;
            created_status(call.res, &mut obj);
            Ok((201, store.create(call.res, obj, call.dry_run())))
        }
        Some(old) => {
            let merged = apply::apply(call.res, Some(&old), &config, &writer, force)?;
            let new = checked_change(call, &old, unview(call, &old, merged))?;
            let stored = store.update(call.res, &old, new, call.dry_run());
            Ok((200, view(call, &stored)))
        }
    }
}

pub fn delete(store: &mut Store, call: &Call) -> Result<Value, ApiError> {
    let old = find(store, call)?.clone();
    let options = call.delete_options();
    let pre = &options["preconditions"];
    if pre["resourceVersion"]
        .as_str()
        .is_some_and(|rv| rv != meta_str(&old, "resourceVersion"))
        || pre["uid"]
            .as_str()
            .is_some_and(|uid| uid != meta_str(&old, "uid"))
    {
        return Err(ApiError::stale(call.res, call.name()));
    }
    let policy = options["propagationPolicy"]
        .as_str()
        .or(call.param("propagationPolicy"));
    let uid = meta_str(&old, "uid").to_string();
    if has_finalizers(&old) && policy != Some("Foreground") {
        // Kept, with a deletionTimestamp, until whoever put the finalizers there removes them;
        // deleting it again changes nothing.
        if call.dry_run() || !old["metadata"]["deletionTimestamp"].is_null() {
            return Ok(view(call, &old));
        }
        return Ok(view(call, &store.mark_deleting(call.res, &old)));
    }
    let mut shown = old.clone();
    if !call.dry_run() {
        if policy == Some("Orphan") {
            store.orphan_dependents(&uid);
        }
        if let Some(removed) = store.delete(call.res, call.ns(), call.name()) {
            shown = removed;
        }
    }
    let returns_object =
        matches!(call.res.plural, "pods" | "namespaces") || policy == Some("Foreground");
    if !returns_object {
        return Ok(status::deleted(call.res, call.name(), &uid));
    }
    shown["metadata"]["deletionTimestamp"] = json!(store.clock.stamp());
    if call.res.plural == "namespaces" {
        shown["status"]["phase"] = json!("Terminating");
    }
    if policy == Some("Foreground") {
        shown["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
    }
    Ok(shown)
}

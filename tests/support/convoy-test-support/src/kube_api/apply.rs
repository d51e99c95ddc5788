//! Server-side apply and field ownership (`metadata.managedFields`).
//!
//! Each manager owns a set of field paths per operation (Apply or Update) and subresource. An
//! apply merges the applied configuration into the live object, refuses (409) to change a field
//! another manager owns to a different value unless forced (forcing takes the field over), and
//! removes fields the manager applied before but no longer applies, unless someone else owns
//! them. Other writes give their manager ownership of the fields they changed.

use serde_json::{Value, json};

use super::discovery::ResourceDef;
use super::fields::{self, Elem, FieldSet, Path};
use super::status::ApiError;

/// One `managedFields` entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    set: FieldSet,
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or("").to_string();
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            time: s(e, "time"),
            subresource: s(e, "subresource"),
            set: FieldSet::from_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Writes the entries back, dropping empty ones and paths the object no longer has.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    for e in &mut entries {
        e.set.0.retain(|p| fields::get(obj, p).is_some());
    }
    entries.retain(|e| !e.set.0.is_empty());
    let json: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.set.to_v1(),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("objects have metadata");
    if json.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(json));
    }
}

/// The part of an object that fields are tracked in: no identity, no bookkeeping.
fn content(obj: &Value) -> Value {
    let mut c = obj.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    if let Some(meta) = c["metadata"].as_object_mut() {
        for f in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
        ] {
            meta.remove(f);
        }
        if meta.is_empty() {
            c.as_object_mut().map(|m| m.remove("metadata"));
        }
    }
    c
}

/// Who is writing: the field manager, the API version it writes in, the subresource, and when.
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: String,
    pub subresource: &'a str,
    pub now: String,
}

/// Merges `config` into `live` (or into nothing, for an apply that creates) and records the
/// manager's ownership. The result still needs the store's create/update preparation.
pub fn apply(
    res: &ResourceDef,
    live: Option<&Value>,
    config: &Value,
    writer: &Writer,
    force: bool,
) -> Result<Value, ApiError> {
    let base = live.cloned().unwrap_or_else(|| json!({"metadata": {}}));
    let mut applied = content(config);
    if res.status && writer.subresource.is_empty() {
        applied.as_object_mut().map(|m| m.remove("status"));
    }
    let new_set = FieldSet::of(&applied);
    let mut entries = read_entries(&base);
    let is_mine = |e: &Entry| {
        e.manager == writer.manager && e.operation == "Apply" && e.subresource == writer.subresource
    };

    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for (i, entry) in entries.iter().enumerate().filter(|(_, e)| !is_mine(e)) {
        for path in entry.set.0.intersection(&new_set.0) {
            let is_value = new_set.is_leaf(path) && !matches!(path.last(), Some(Elem::Key(_)));
            if is_value && fields::get(&base, path) != fields::get(&applied, path) {
                conflicts.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&entries, &conflicts));
    }
    for (i, path) in &conflicts {
        entries[*i].set.0.remove(path);
    }

    let mut merged = base.clone();
    merge(&mut merged, &applied);
    let previous = entries.iter().position(is_mine).map(|i| entries.remove(i));
    if let Some(previous) = previous {
        let mut dropped: Vec<&Path> = previous.set.0.difference(&new_set.0).collect();
        dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for path in dropped {
            // A list item someone else still has fields in stays.
            let owned_elsewhere = entries
                .iter()
                .any(|e| e.set.0.iter().any(|p| p.starts_with(path)));
            if !owned_elsewhere && fields::remove(&mut merged, path) {
                prune_empty_parents(&mut merged, path, &entries, &new_set);
            }
        }
    }
    entries.push(Entry {
        manager: writer.manager.to_string(),
        operation: "Apply".into(),
        api_version: writer.api_version.clone(),
        time: writer.now.clone(),
        subresource: writer.subresource.to_string(),
        set: new_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Removes maps and lists a removal left empty, unless someone owns them as values.
fn prune_empty_parents(obj: &mut Value, path: &Path, entries: &[Entry], applied: &FieldSet) {
    for len in (1..path.len()).rev() {
        let parent = &path[..len];
        let empty = fields::get(obj, parent).is_some_and(|v| match v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        });
        let owned = applied.0.contains(parent) || entries.iter().any(|e| e.set.0.contains(parent));
        if !empty || owned {
            return;
        }
        fields::remove(obj, parent);
    }
}

/// Gives the writer of a non-apply change ownership of the fields it changed.
pub fn track_update(old: Option<&Value>, new: &mut Value, writer: &Writer) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let before = old.map(content).unwrap_or(Value::Null);
    let after = content(new);
    let changed: Vec<Path> = FieldSet::of(&after)
        .0
        .into_iter()
        .filter(|p| match p.last() {
            // A list item changes hands only by being added; its fields carry the edits.
            Some(Elem::Key(_)) => fields::get(&before, p).is_none(),
            _ => fields::get(&before, p) != fields::get(&after, p),
        })
        .collect();
    if changed.is_empty() {
        return write_entries(new, entries);
    }
    for entry in &mut entries {
        for path in &changed {
            entry.set.0.remove(path);
        }
    }
    let mine = entries.iter().position(|e| {
        e.manager == writer.manager
            && e.operation == "Update"
            && e.subresource == writer.subresource
    });
    let index = mine.unwrap_or_else(|| {
        entries.push(Entry {
            manager: writer.manager.to_string(),
            operation: "Update".into(),
            api_version: writer.api_version.clone(),
            time: String::new(),
            subresource: writer.subresource.to_string(),
            set: FieldSet::default(),
        });
        entries.len() - 1
    });
    entries[index].time = writer.now.clone();
    entries[index].set.0.extend(changed);
    write_entries(new, entries);
}

/// Merges an applied configuration into an object: maps field by field, keyed lists item by
/// item, atomic fields and everything else replaced.
pub fn merge(target: &mut Value, patch: &Value) {
    merge_at(target, patch, &mut Vec::new());
}

fn merge_at(target: &mut Value, patch: &Value, path: &mut Path) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        *target = patch.clone();
        return;
    };
    if fields::is_atomic(path) {
        *target = patch.clone();
        return;
    }
    for (k, pv) in p {
        path.push(Elem::Field(k.clone()));
        match t.get_mut(k) {
            Some(tv) => merge_field(k, tv, pv, path),
            None => {
                t.insert(k.clone(), pv.clone());
            }
        }
        path.pop();
    }
}

fn merge_field(name: &str, target: &mut Value, patch: &Value, path: &mut Path) {
    let keys = patch
        .as_array()
        .and_then(|items| fields::list_keys(name, items));
    let (Some(keys), Some(items)) = (keys, target.as_array_mut()) else {
        return merge_at(target, patch, path);
    };
    for p in patch.as_array().into_iter().flatten() {
        let key = fields::item_key(p, &keys);
        path.push(Elem::Key(key.clone()));
        match items.iter_mut().find(|i| fields::item_key(i, &keys) == key) {
            Some(item) => merge_at(item, p, path),
            None => items.push(p.clone()),
        }
        path.pop();
    }
}

fn manager_label(entry: &Entry) -> String {
    if entry.operation == "Update" {
        format!("\"{}\" using {}", entry.manager, entry.api_version)
    } else {
        format!("\"{}\"", entry.manager)
    }
}

/// The real server's message: one line for one conflict, grouped by manager for several.
fn conflict_error(entries: &[Entry], conflicts: &[(usize, Path)]) -> ApiError {
    let message = if let [(i, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            manager_label(&entries[*i]),
            fields::path_string(path)
        )
    } else {
        let mut managers: Vec<usize> = conflicts.iter().map(|(i, _)| *i).collect();
        managers.sort_by_key(|i| entries[*i].manager.clone());
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {}:", manager_label(&entries[m])));
            for (_, path) in conflicts.iter().filter(|(i, _)| *i == m) {
                lines.push(format!("- {}", fields::path_string(path)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(i, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", manager_label(&entries[*i])),
                "field": fields::path_string(path),
            })
        })
        .collect();
    // Only the causes: the real server names no object here.
    let mut error = ApiError::new(409, "Conflict", message);
    error.details = Some(json!({"causes": causes}));
    error
}

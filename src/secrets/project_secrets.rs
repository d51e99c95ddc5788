//! The clear text of every secret a project's values refer to, in any environment, that can be
//! read here: what a build masks in its log without resolving any environment's values (a build
//! belongs to no environment, and must not fail because one of them lacks a secret).

use std::path::Path;

use yaml_serde::Value;

use crate::config::Project;
use crate::config::marker::{Marker, SecretRef};
use crate::config::values::VALUES_DIR;

/// Secrets of `values/*.yaml` and of every environment's inline `values:`; unreadable ones are
/// skipped.
pub fn project_secrets(project: &Project) -> Vec<String> {
    let mut refs = Vec::new();
    for environment in project.environments.values() {
        collect(&Value::Mapping(environment.values.clone()), &mut refs);
    }
    let dir = project.root.join(VALUES_DIR);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && let Ok(text) = crate::config::limits::read_bounded(&path)
                && let Ok(value) = yaml_serde::from_str::<Value>(&text)
            {
                collect(&value, &mut refs);
            }
        }
    }
    let mut secrets: Vec<String> = refs
        .iter()
        .filter_map(|secret| read(secret, &project.root))
        .collect();
    secrets.sort();
    secrets.dedup();
    secrets
}

fn collect(value: &Value, out: &mut Vec<SecretRef>) {
    if let Some(Ok(Marker::Secret(secret))) = Marker::of(value) {
        out.push(secret);
        return;
    }
    match value {
        Value::Mapping(map) => map.values().for_each(|v| collect(v, out)),
        Value::Sequence(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

fn read(secret: &SecretRef, root: &Path) -> Option<String> {
    match secret {
        SecretRef::Env(name) => std::env::var(name).ok(),
        SecretRef::File(path) => std::fs::read_to_string(root.join(path))
            .ok()
            .map(|t| t.trim_end().to_string()),
    }
}

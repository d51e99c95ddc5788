//! Each service's values resolved for a rollout: layered, `--set` applied, and every secret read,
//! once, before anything changes. Targets get the masked tree (for files, records and digests)
//! and the secrets' clear texts (to mask output, and to put back where a process needs the
//! values in clear).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::marker::MASK;
use crate::config::{ConfigErrors, Project, Values};
use crate::render::context::replica_count;
use crate::render::secrets::shown;
use crate::render::{RenderError, RenderErrors, SecretMode};

/// One service's values, resolved.
#[derive(Debug, Clone, Default)]
pub struct ResolvedValues {
    /// Secrets replaced by the mask: safe to write, record and print.
    pub masked: Value,
    /// The clear text of every secret, to mask wherever output is shown.
    pub secrets: Vec<String>,
    /// Each secret's clear text by dotted key (for its keyed hash, and [`Self::revealed`];
    /// never written anywhere).
    pub secret_values: std::collections::BTreeMap<String, String>,
    /// Where each value (by dotted key) was set: `values/production.yaml:3:5`, `--set`.
    pub origins: std::collections::BTreeMap<String, String>,
    /// `replicas`, checked to be a count a target can take (1 when unset).
    pub replicas: i32,
}

impl ResolvedValues {
    /// The values with each secret in clear where its mask stands: only for the service's own
    /// processes. Built when asked, not held: most targets never need it, and a thousand
    /// services' second trees were megabytes of a release's peak.
    pub fn revealed(&self) -> Value {
        let mut tree = self.masked.clone();
        if !self.secret_values.is_empty() {
            reveal(&mut tree, "", &self.secret_values);
        }
        tree
    }
}

/// Resolves `services`' values in `environment`; every problem of every service is reported at
/// once (a missing required value, an unreadable secret). With `SecretMode::Mask` no secret is
/// read: the clear tree is the masked one.
pub fn resolve_values(
    project: &Project,
    environment: &str,
    services: &[String],
    sets: &[String],
    mode: SecretMode,
) -> Result<BTreeMap<String, ResolvedValues>, RenderErrors> {
    let mut resolved = BTreeMap::new();
    let mut errors: Vec<RenderError> = Vec::new();
    for name in services {
        let values = match Values::layer(project, environment, name, sets) {
            Ok(values) => values,
            Err(ConfigErrors(found)) => {
                errors.extend(found.into_iter().map(RenderError::Config));
                continue;
            }
        };
        let masked = shown(&values, &project.secrets_root, SecretMode::Mask);
        let revealed = shown(&values, &project.secrets_root, mode);
        let (masked, revealed) = match (masked, revealed) {
            (Ok(masked), Ok(revealed)) => (masked, revealed),
            (Err(error), _) | (_, Err(error)) => {
                errors.push(error);
                continue;
            }
        };
        let replicas = match replica_count(&values, &masked) {
            Ok(count) => i32::try_from(count).unwrap_or(i32::MAX),
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let mut secret_values = BTreeMap::new();
        collect_secrets(&masked, &revealed, "", &mut secret_values);
        let origins = crate::plan::revision::flatten(&masked)
            .into_keys()
            .filter_map(|key| {
                let origin = values.explain(&key)?.origins.last()?.to_string();
                Some((key, origin))
            })
            .collect();
        let values = ResolvedValues {
            masked,
            secrets: secret_values.values().cloned().collect(),
            secret_values,
            origins,
            replicas,
        };
        resolved.insert(name.clone(), values);
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(RenderErrors(errors))
    }
}

/// The clear text of every secret by dotted key: where the masked tree shows the mask, the
/// revealed one holds it.
fn collect_secrets(
    masked: &Value,
    revealed: &Value,
    path: &str,
    out: &mut BTreeMap<String, String>,
) {
    match (masked, revealed) {
        (Value::String(mask), Value::String(clear)) if mask == MASK && clear != mask => {
            out.insert(path.to_string(), clear.clone());
        }
        (Value::Object(m), Value::Object(r)) => {
            for (key, value) in m {
                if let Some(other) = r.get(key) {
                    collect_secrets(value, other, &child(path, key), out);
                }
            }
        }
        (Value::Array(m), Value::Array(r)) => {
            for (index, (value, other)) in m.iter().zip(r).enumerate() {
                collect_secrets(value, other, &child(path, &index.to_string()), out);
            }
        }
        _ => {}
    }
}

/// Puts each secret of `secrets` back where `tree` shows its mask: the inverse of
/// [`collect_secrets`], by the same dotted keys.
fn reveal(tree: &mut Value, path: &str, secrets: &BTreeMap<String, String>) {
    match tree {
        Value::String(text) if text == MASK => {
            if let Some(clear) = secrets.get(path) {
                *text = clear.clone();
            }
        }
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                reveal(value, &child(path, key), secrets);
            }
        }
        Value::Array(items) => {
            for (index, value) in items.iter_mut().enumerate() {
                reveal(value, &child(path, &index.to_string()), secrets);
            }
        }
        _ => {}
    }
}

/// `path.key`, or `key` at the top.
fn child(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_found_where_the_mask_stands() {
        let masked = json!({"db": {"password": MASK, "host": "h"}, "list": [MASK]});
        let revealed = json!({"db": {"password": "s3cret", "host": "h"}, "list": ["k"]});
        let mut found = BTreeMap::new();
        collect_secrets(&masked, &revealed, "", &mut found);
        let expected = [("db.password", "s3cret"), ("list.0", "k")];
        let expected = expected.map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(found, BTreeMap::from(expected));
    }

    #[test]
    fn the_clear_tree_is_the_masked_one_with_each_secret_where_its_mask_stands() {
        let clear = json!({
            "db": {"password": "s3cret", "host": "h", "note": MASK},
            "list": ["k", "plain"],
            "count": 3
        });
        let masked = json!({
            "db": {"password": MASK, "host": "h", "note": MASK},
            "list": [MASK, "plain"],
            "count": 3
        });
        let mut secret_values = BTreeMap::new();
        collect_secrets(&masked, &clear, "", &mut secret_values);
        let values = ResolvedValues {
            masked: masked.clone(),
            secret_values,
            ..ResolvedValues::default()
        };
        // `db.note` is the mask's own text, not a secret: it stays as it is.
        assert_eq!(values.revealed(), clear);
        let masked_only = ResolvedValues {
            masked: masked.clone(),
            ..ResolvedValues::default()
        };
        assert_eq!(masked_only.revealed(), masked);
    }
}

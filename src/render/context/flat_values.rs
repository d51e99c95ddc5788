//! A service's values flattened into environment variables: `database.host` → `DATABASE_HOST`,
//! plain values apart from secret ones.

use std::collections::BTreeMap;

use yaml_serde::Value as Yaml;

use crate::config::Values;
use crate::config::marker::Marker;

use super::EnvVar;

/// Values keys that shape the objects themselves rather than the program's configuration.
pub(crate) const RESERVED: &[&str] = &["replicas", "resources", "env", "autoscaling", "disruption"];

/// Every non-reserved value as an environment variable.
pub(super) struct FlatValues {
    pub config: BTreeMap<String, String>,
    /// Secret values, masked or revealed as the shown tree has them.
    pub secrets: BTreeMap<String, String>,
    /// Each secret's source (never its clear text), by variable name.
    pub secret_refs: BTreeMap<String, String>,
}

impl FlatValues {
    /// `values` flattened; `shown` is the tree with secrets masked or revealed.
    pub fn of(values: &Values, shown: &serde_json::Value) -> FlatValues {
        let mut flat = FlatValues {
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            secret_refs: BTreeMap::new(),
        };
        flatten(values.tree(), "", &mut |key, value| {
            if RESERVED
                .iter()
                .any(|r| key == *r || key.starts_with(&format!("{r}.")))
            {
                return;
            }
            let name = env_name(key);
            match Marker::of(value) {
                Some(Ok(Marker::Secret(secret))) => {
                    flat.secret_refs.insert(name.clone(), secret.to_string());
                    flat.secrets.insert(name, lookup_text(shown, key));
                }
                _ => {
                    flat.config.insert(name, scalar_text(value));
                }
            }
        });
        flat
    }

    /// `config` as a list in name order.
    pub fn config_env(&self) -> Vec<EnvVar> {
        self.config
            .iter()
            .map(|(k, v)| EnvVar {
                name: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
}

fn flatten(value: &Yaml, key: &str, visit: &mut impl FnMut(&str, &Yaml)) {
    match value {
        Yaml::Mapping(map) if Marker::of(value).is_none() => {
            for (k, v) in map {
                flatten(
                    v,
                    &crate::config::yaml::child_key(key, &scalar_text(k)),
                    visit,
                );
            }
        }
        _ if !key.is_empty() => visit(key, value),
        _ => {}
    }
}

pub(in crate::render) fn scalar_text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Null => String::new(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

pub(super) fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lookup_text(tree: &serde_json::Value, key: &str) -> String {
    let found = key.split('.').try_fold(tree, |node, part| node.get(part));
    found.map(json_text).unwrap_or_default()
}

/// `database.host` → `DATABASE_HOST`.
pub fn env_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_upper_snake_case() {
        assert_eq!(env_name("database.host"), "DATABASE_HOST");
        assert_eq!(env_name("payments-api.url"), "PAYMENTS_API_URL");
    }
}

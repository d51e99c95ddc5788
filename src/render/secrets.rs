//! Secrets in the render context: replaced by the mask, or read from their variable or file.

use std::path::Path;

use yaml_serde::Value as Yaml;

use crate::config::marker::{MASK, Marker, SecretRef};
use crate::config::{ConfigError, Values};
use crate::diagnostic::Location;
use crate::render::context::scalar_text;
use crate::render::{RenderError, SecretMode};

/// The values as JSON with each secret replaced by the mask, or by its clear text.
pub fn shown(
    values: &Values,
    root: &Path,
    mode: SecretMode,
) -> Result<serde_json::Value, RenderError> {
    let tree = reveal(values.tree(), "", values, root, mode)?;
    serde_json::to_value(&tree).map_err(|error| {
        RenderError::Config(ConfigError::Schema {
            location: Location::new(Path::new("<values>"), 1, 1, ""),
            message: format!("values cannot be rendered: {error}"),
            suggestion: None,
        })
    })
}

fn reveal(
    value: &Yaml,
    key: &str,
    values: &Values,
    root: &Path,
    mode: SecretMode,
) -> Result<Yaml, RenderError> {
    if let Some(Ok(Marker::Secret(secret))) = Marker::of(value) {
        return match mode {
            SecretMode::Mask => Ok(Yaml::String(MASK.to_string())),
            SecretMode::Reveal => read_secret(&secret, key, values, root).map(Yaml::String),
        };
    }
    Ok(match value {
        Yaml::Mapping(map) => {
            let mut out = yaml_serde::Mapping::new();
            for (k, v) in map {
                let child = crate::config::yaml::child_key(key, &scalar_text(k));
                out.insert(k.clone(), reveal(v, &child, values, root, mode)?);
            }
            Yaml::Mapping(out)
        }
        other => other.clone(),
    })
}

fn read_secret(
    secret: &SecretRef,
    key: &str,
    values: &Values,
    root: &Path,
) -> Result<String, RenderError> {
    let text = match secret {
        SecretRef::Env(name) => std::env::var(name).ok(),
        SecretRef::File(path) => std::fs::read_to_string(root.join(path))
            .ok()
            .map(|t| t.trim_end().to_string()),
    };
    text.ok_or_else(|| {
        let location = values
            .explain(key)
            .and_then(|e| e.origins.last().and_then(|o| o.location.clone()))
            .unwrap_or_else(|| Location::new(Path::new("<values>"), 1, 1, key));
        RenderError::Config(ConfigError::SecretUnavailable {
            location,
            key: key.to_string(),
            source_name: secret.to_string(),
        })
    })
}

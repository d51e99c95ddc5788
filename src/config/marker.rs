//! Special values inside values files: `{ secret: { env: NAME } }`, `{ secret: { file: PATH } }`
//! and `{ required: "what it is for" }`. A marker is a mapping with exactly that one key.

use std::fmt;
use std::path::PathBuf;

use yaml_serde::Value;

/// Where a secret's clear text comes from at render time. Never the clear text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// What masked output shows in place of a secret.
pub const MASK: &str = "********";

#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    Secret(SecretRef),
    Required(String),
}

impl Marker {
    /// `None` for ordinary values; `Some(Err(reason))` for a malformed marker.
    pub fn of(value: &Value) -> Option<Result<Marker, String>> {
        let Value::Mapping(map) = value else {
            return None;
        };
        if map.len() != 1 {
            return None;
        }
        let (key, inner) = map.iter().next()?;
        match key.as_str()? {
            "required" => Some(Ok(Marker::Required(match inner {
                Value::String(text) => text.clone(),
                Value::Bool(true) | Value::Null => String::new(),
                _ => return Some(Err("`required` takes a description string".to_string())),
            }))),
            "secret" => Some(secret_ref(inner).map(Marker::Secret)),
            _ => None,
        }
    }
}

fn secret_ref(inner: &Value) -> Result<SecretRef, String> {
    let shape = "write `{ secret: { env: NAME } }` or `{ secret: { file: PATH } }`";
    let Value::Mapping(map) = inner else {
        return Err(shape.to_string());
    };
    if map.len() != 1 {
        return Err(shape.to_string());
    }
    let (key, value) = map.iter().next().ok_or_else(|| shape.to_string())?;
    match (key.as_str(), value.as_str()) {
        (Some("env"), Some(name)) if !name.is_empty() => Ok(SecretRef::Env(name.to_string())),
        (Some("file"), Some(path)) if !path.is_empty() => Ok(SecretRef::File(PathBuf::from(path))),
        _ => Err(shape.to_string()),
    }
}

/// A copy of `value` with every secret replaced by `replace(secret)`.
pub fn map_secrets<E>(
    value: &Value,
    replace: &mut impl FnMut(&SecretRef) -> Result<Value, E>,
) -> Result<Value, E> {
    if let Some(Ok(Marker::Secret(secret))) = Marker::of(value) {
        return replace(&secret);
    }
    Ok(match value {
        Value::Mapping(map) => {
            let mut out = yaml_serde::Mapping::new();
            for (k, v) in map {
                out.insert(k.clone(), map_secrets(v, replace)?);
            }
            Value::Mapping(out)
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|v| map_secrets(v, replace))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// `value` with secrets shown as a mask and their source, e.g. `******** (env DB_PASSWORD)`.
pub fn masked(value: &Value) -> Value {
    let result: Result<Value, std::convert::Infallible> = map_secrets(value, &mut |secret| {
        Ok(Value::String(format!("{MASK} ({secret})")))
    });
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn recognizes_markers_only_as_single_key_maps() {
        assert_eq!(
            Marker::of(&yaml("{secret: {env: DB_PASSWORD}}")),
            Some(Ok(Marker::Secret(SecretRef::Env("DB_PASSWORD".into()))))
        );
        assert_eq!(
            Marker::of(&yaml("{required: database URL}")),
            Some(Ok(Marker::Required("database URL".into())))
        );
        assert_eq!(Marker::of(&yaml("{required: x, other: y}")), None);
        assert_eq!(Marker::of(&yaml("plain")), None);
        assert!(matches!(
            Marker::of(&yaml("{secret: {vault: x}}")),
            Some(Err(_))
        ));
    }

    #[test]
    fn masking_hides_clear_text_but_names_the_source() {
        let shown = masked(&yaml(
            "db: {password: {secret: {env: DB_PASSWORD}}, host: h}",
        ));
        let text = yaml_serde::to_string(&shown).unwrap();
        assert!(text.contains("******** (env DB_PASSWORD)"), "{text}");
        assert!(text.contains("host: h"), "{text}");
    }
}

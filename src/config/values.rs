//! Values layered yoconfigurator-style, lowest first: built-in defaults → `values/common.yaml` →
//! the environment's inline `values:` → `values/<env>.yaml` → `values/<service>.yaml` →
//! `values/<service>.<env>.yaml` → `--set`. Maps merge deeply; lists and scalars replace; a type
//! change is an error; every key remembers which layers set it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use yaml_serde::{Mapping, Value};

use crate::config::error::{ConfigError, ConfigErrors};
use crate::config::marker::{Marker, masked};
use crate::config::project::Project;
use crate::config::yaml::{Document, child_key};
use crate::diagnostic::Location;

const BUILT_IN: &str = include_str!("../../templates/values.yaml");
pub const VALUES_DIR: &str = "values";

/// Where one layer's setting of a key came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The layer, e.g. `common`, `environment production`, `--set`.
    pub layer: String,
    /// File position; `None` for `--set`.
    pub location: Option<Location>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(
                f,
                "{}:{}:{} ({})",
                location.file.display(),
                location.line,
                location.column,
                self.layer
            ),
            None => f.write_str(&self.layer),
        }
    }
}

/// The merged values of one service in one environment, with provenance.
#[derive(Debug, Clone)]
pub struct Values {
    pub environment: String,
    pub service: String,
    tree: Value,
    origins: BTreeMap<String, Vec<Origin>>,
}

/// What `--explain KEY` shows.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub key: String,
    /// Secrets masked.
    pub value: Value,
    /// Every layer that set the key, lowest first; the last one won.
    pub origins: Vec<Origin>,
}

impl Values {
    /// Layers every source for `service` in `environment`. Missing values files are skipped.
    pub fn layer(
        project: &Project,
        environment: &str,
        service: &str,
        sets: &[String],
    ) -> Result<Values, ConfigErrors> {
        let env = project.environment(environment)?;
        project.service(service)?;
        let dir = project.root.join(VALUES_DIR);
        let mut merger = Merger {
            limits: project.limits,
            ..Merger::default()
        };

        let builtin = Document::parse(Path::new("<built-in>/values.yaml"), BUILT_IN.to_string())?;
        merger.apply_document(&builtin, "built-in defaults")?;
        merger.apply_file(&dir.join("common.yaml"), "common")?;
        if !env.values.is_empty() {
            let prefix = format!("environments.{environment}.values");
            let label = format!("environment {environment} (convoy.yaml)");
            let locate = |key: &str| Some(project.document.locate(&child_key(&prefix, key)));
            merger.merge_root(Value::Mapping(env.values.clone()), &label, &locate);
        }
        merger.apply_file(
            &dir.join(format!("{environment}.yaml")),
            &format!("environment {environment}"),
        )?;
        merger.apply_file(
            &dir.join(format!("{service}.yaml")),
            &format!("service {service}"),
        )?;
        merger.apply_file(
            &dir.join(format!("{service}.{environment}.yaml")),
            &format!("service {service} in {environment}"),
        )?;
        for argument in sets {
            let value = parse_set(argument)?;
            merger.merge_root(value, &format!("--set {argument}"), &|_| None);
        }

        let values = Values {
            environment: environment.to_string(),
            service: service.to_string(),
            tree: merger.tree,
            origins: merger.origins,
        };
        merger.errors.extend(values.missing_required());
        if merger.errors.is_empty() {
            Ok(values.tidy())
        } else {
            Err(ConfigErrors(merger.errors))
        }
    }

    fn tidy(mut self) -> Self {
        for origins in self.origins.values_mut() {
            origins.dedup();
        }
        self
    }

    /// The merged tree, secrets still as markers (see `config::marker`).
    pub fn tree(&self) -> &Value {
        &self.tree
    }

    /// The merged tree with secrets masked: safe to print.
    pub fn masked(&self) -> Value {
        masked(&self.tree)
    }

    pub fn explain(&self, key: &str) -> Option<Explanation> {
        let value = lookup(&self.tree, key)?;
        Some(Explanation {
            key: key.to_string(),
            value: masked(value),
            origins: self.origins.get(key).cloned().unwrap_or_default(),
        })
    }

    fn missing_required(&self) -> Vec<ConfigError> {
        let mut missing = Vec::new();
        walk(&self.tree, "", &mut |key, value| {
            if let Some(Ok(Marker::Required(description))) = Marker::of(value) {
                let location = self
                    .origins
                    .get(key)
                    .and_then(|o| o.last())
                    .and_then(|o| o.location.clone())
                    .unwrap_or_else(|| Location::new(Path::new("<values>"), 1, 1, key));
                missing.push(ConfigError::MissingRequired {
                    location,
                    key: key.to_string(),
                    service: self.service.clone(),
                    environment: self.environment.clone(),
                    description,
                });
                return false;
            }
            true
        });
        missing
    }
}

/// Visits every node depth first; `visit` returns whether to descend.
fn walk(value: &Value, key: &str, visit: &mut impl FnMut(&str, &Value) -> bool) {
    if !key.is_empty() && !visit(key, value) {
        return;
    }
    if let Value::Mapping(map) = value {
        for (k, v) in map {
            if let Some(name) = key_text(k) {
                walk(v, &child_key(key, &name), visit);
            }
        }
    }
}

fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(tree, |node, part| match node {
        Value::Mapping(map) => map.get(part),
        _ => None,
    })
}

/// `a.b.c=value` as a nested mapping; the value is read as a YAML scalar (`3`, `true`, `text`).
pub fn parse_set(argument: &str) -> Result<Value, ConfigError> {
    let bad = |reason: &str| ConfigError::BadSet {
        argument: argument.to_string(),
        reason: reason.to_string(),
    };
    let (key, raw) = argument
        .split_once('=')
        .ok_or_else(|| bad("there is no `=`"))?;
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(bad("the key has an empty part"));
    }
    let leaf: Value =
        yaml_serde::from_str(raw).map_err(|_| bad("the value is not a YAML scalar"))?;
    if matches!(leaf, Value::Mapping(_) | Value::Sequence(_)) {
        return Err(bad("only scalar values can be set from the command line"));
    }
    Ok(key.rsplit('.').fold(leaf, |inner, part| {
        let mut map = Mapping::new();
        map.insert(Value::String(part.to_string()), inner);
        Value::Mapping(map)
    }))
}

fn kind(value: &Value) -> &'static str {
    match Marker::of(value) {
        Some(Ok(Marker::Secret(_))) => return "string",
        Some(Ok(Marker::Required(_))) => return "required",
        _ => {}
    }
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "map",
        Value::Tagged(_) => "tagged value",
    }
}

#[derive(Default)]
struct Merger {
    limits: crate::config::limits::InputLimits,
    tree: Value,
    origins: BTreeMap<String, Vec<Origin>>,
    errors: Vec<ConfigError>,
}

type Locate<'a> = dyn Fn(&str) -> Option<Location> + 'a;

impl Merger {
    fn apply_file(&mut self, path: &Path, label: &str) -> Result<(), ConfigErrors> {
        let text = match crate::config::limits::read_bounded(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
                .into());
            }
        };
        let document = Document::parse_with(path, text, &self.limits)?;
        self.apply_document(&document, label)
    }

    fn apply_document(&mut self, document: &Document, label: &str) -> Result<(), ConfigErrors> {
        let value: Value = document.typed()?;
        let value = if value.is_null() {
            Value::Mapping(Mapping::new())
        } else {
            value
        };
        if !value.is_mapping() {
            return Err(ConfigError::Schema {
                location: document.locate(""),
                message: "a values file must be a mapping of keys to values".to_string(),
                suggestion: None,
            }
            .into());
        }
        self.merge_root(value, label, &|key| Some(document.locate(key)));
        Ok(())
    }

    fn merge_root(&mut self, value: Value, label: &str, locate: &Locate<'_>) {
        if self.tree.is_null() {
            self.tree = Value::Mapping(Mapping::new());
        }
        let mut tree = std::mem::take(&mut self.tree);
        self.merge(&mut tree, value, "", label, locate);
        self.tree = tree;
    }

    fn record(&mut self, key: &str, label: &str, locate: &Locate<'_>) {
        self.origins
            .entry(key.to_string())
            .or_default()
            .push(Origin {
                layer: label.to_string(),
                location: locate(key),
            });
    }

    /// Records `value`'s key and every key nested in it.
    fn record_all(&mut self, key: &str, value: &Value, label: &str, locate: &Locate<'_>) {
        let mut keys = Vec::new();
        walk(value, key, &mut |k, v| {
            keys.push(k.to_string());
            Marker::of(v).is_none()
        });
        if key.is_empty() {
            keys.retain(|k| !k.is_empty());
        }
        for k in keys {
            self.record(&k, label, locate);
        }
    }

    fn merge(
        &mut self,
        base: &mut Value,
        over: Value,
        key: &str,
        label: &str,
        locate: &Locate<'_>,
    ) {
        let both_maps = matches!((&*base, &over), (Value::Mapping(_), Value::Mapping(_)))
            && Marker::of(base).is_none()
            && Marker::of(&over).is_none();
        if both_maps {
            let (Value::Mapping(base_map), Value::Mapping(over_map)) = (base, over) else {
                return;
            };
            if !key.is_empty() {
                self.record(key, label, locate);
            }
            for (k, v) in over_map {
                let Some(name) = key_text(&k) else { continue };
                let child = child_key(key, &name);
                if let Some(Err(reason)) = Marker::of(&v) {
                    self.errors.push(self.marker_error(&child, reason, locate));
                    continue;
                }
                match base_map.get_mut(&k) {
                    Some(existing) => self.merge(existing, v, &child, label, locate),
                    None => {
                        self.record_all(&child, &v, label, locate);
                        base_map.insert(k, v);
                    }
                }
            }
            return;
        }
        let (from, to) = (kind(base), kind(&over));
        let compatible =
            from == to || ["null", "required"].contains(&from) || to == "null" || to == "required";
        if !compatible {
            let previous = self
                .origins
                .get(key)
                .and_then(|o| o.last())
                .and_then(|o| o.location.clone())
                .unwrap_or_else(|| Location::new(Path::new("<values>"), 1, 1, key));
            let location =
                locate(key).unwrap_or_else(|| Location::new(Path::new(label), 1, 1, key));
            self.errors.push(ConfigError::TypeChange {
                location,
                key: key.to_string(),
                from,
                to,
                previous,
            });
            return;
        }
        // Keys nested under the replaced value no longer exist.
        let nested = format!("{key}.");
        self.origins.retain(|k, _| !k.starts_with(&nested));
        self.record_all(key, &over, label, locate);
        *base = over;
    }

    fn marker_error(&self, key: &str, reason: String, locate: &Locate<'_>) -> ConfigError {
        ConfigError::Schema {
            location: locate(key)
                .unwrap_or_else(|| Location::new(Path::new("<values>"), 1, 1, key)),
            message: format!("invalid marker at `{key}`: {reason}"),
            suggestion: None,
        }
    }
}

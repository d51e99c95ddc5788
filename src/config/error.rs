//! Everything that can be wrong with a project's configuration, each with where and what to do.

use std::fmt;
use std::path::PathBuf;

use crate::diagnostic::{Diagnose, Location};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no convoy.yaml in {} or any parent directory", start.display())]
    NotFound { start: PathBuf },

    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("malformed YAML: {message}")]
    Syntax { location: Location, message: String },

    #[error("duplicate key `{}` (first set on line {first_line})", last_segment(&location.key))]
    DuplicateKey {
        location: Location,
        first_line: usize,
    },

    #[error("{message}")]
    Schema {
        location: Location,
        message: String,
        suggestion: Option<String>,
    },

    #[error("invalid {what} name `{name}`: {reason}")]
    InvalidName {
        location: Location,
        what: &'static str,
        name: String,
        reason: String,
    },

    #[error(
        "service `{service}` depends on `{dependency}`, which is not a service of this project"
    )]
    UnknownDependency {
        location: Location,
        service: String,
        dependency: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },

    #[error("dependency cycle: {}", cycle.join(" → "))]
    Cycle {
        location: Location,
        cycle: Vec<String>,
    },

    #[error("environment `{environment}` has no target")]
    NoTarget {
        location: Location,
        environment: String,
    },

    #[error("environment `{environment}` has more than one target: {}", kinds.join(", "))]
    ManyTargets {
        location: Location,
        environment: String,
        kinds: Vec<&'static str>,
    },

    #[error("invalid rollout policy: {reason}")]
    Steps { location: Location, reason: String },

    #[error("invalid path `{path}` for service `{service}`: {reason}")]
    ServicePath {
        location: Location,
        service: String,
        path: String,
        reason: &'static str,
    },

    #[error("`{name}` is both a service and an environment")]
    NameClash { location: Location, name: String },

    #[error("invalid `target.aws.{key}` of environment `{environment}`: {reason}")]
    AwsLaunch {
        location: Location,
        environment: String,
        key: String,
        reason: String,
    },

    #[error("unknown {what} `{name}`")]
    Unknown {
        what: &'static str,
        name: String,
        known: Vec<String>,
    },

    #[error("value `{key}` changes type from {from} to {to}")]
    TypeChange {
        location: Location,
        key: String,
        from: &'static str,
        to: &'static str,
        previous: Location,
    },

    #[error(
        "required value `{key}` is not set for service `{service}` in environment `{environment}`"
    )]
    MissingRequired {
        location: Location,
        key: String,
        service: String,
        environment: String,
        description: String,
    },

    #[error("invalid --set `{argument}`: {reason}")]
    BadSet { argument: String, reason: String },

    #[error("secret `{key}` cannot be read from {source_name}")]
    SecretUnavailable {
        location: Location,
        key: String,
        source_name: String,
    },

    #[error("file is too large: {size} bytes, over the limit of {limit}")]
    TooLarge {
        location: Location,
        size: u64,
        limit: u64,
    },

    #[error("maps and lists are nested more than {limit} deep")]
    TooDeep { location: Location, limit: usize },

    #[error("no value `{key}` for service `{service}` in environment `{environment}`")]
    NoSuchValue {
        key: String,
        service: String,
        environment: String,
    },
}

fn last_segment(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

impl Diagnose for ConfigError {
    fn location(&self) -> Option<&Location> {
        use ConfigError::*;
        match self {
            Syntax { location, .. }
            | DuplicateKey { location, .. }
            | Schema { location, .. }
            | InvalidName { location, .. }
            | UnknownDependency { location, .. }
            | Cycle { location, .. }
            | NoTarget { location, .. }
            | ManyTargets { location, .. }
            | Steps { location, .. }
            | ServicePath { location, .. }
            | NameClash { location, .. }
            | AwsLaunch { location, .. }
            | TypeChange { location, .. }
            | MissingRequired { location, .. }
            | SecretUnavailable { location, .. }
            | TooLarge { location, .. }
            | TooDeep { location, .. } => Some(location),
            NotFound { .. } | Read { .. } | Unknown { .. } | BadSet { .. } | NoSuchValue { .. } => {
                None
            }
        }
    }

    fn help(&self) -> Option<String> {
        use ConfigError::*;
        Some(match self {
            NotFound { .. } => "run convoy inside a project, or pass `--project PATH`".to_string(),
            Read { .. } => "check that the file exists and is readable".to_string(),
            Syntax { .. } => "fix the YAML at that position (indentation, brackets and quotes are the usual culprits)".to_string(),
            DuplicateKey { first_line, .. } => {
                format!("remove one of the two; YAML would silently keep only the last (the other is on line {first_line})")
            }
            Schema { suggestion: Some(name), .. } => format!("did you mean `{name}`?"),
            Schema { message, .. } if message.starts_with("missing field") => {
                "add the field; see the project file sketch in the README".to_string()
            }
            Schema { .. } => "see the project file sketch in the README for the expected shape".to_string(),
            InvalidName { .. } => {
                "use lowercase letters, digits and `-`, starting with a letter (it becomes part of Kubernetes and AWS names)".to_string()
            }
            UnknownDependency { suggestion: Some(name), .. } => format!("did you mean `{name}`?"),
            UnknownDependency { known, .. } => format!("declared services: {}", known.join(", ")),
            Cycle { .. } => "remove one of these `depends_on` entries; providers must be deployable before their clients".to_string(),
            NoTarget { .. } => "add `target:` with one of `host: { root: DIR }`, `kubernetes: { namespace: NS }` or `aws: { region: REGION }`".to_string(),
            ManyTargets { .. } => "keep exactly one target per environment; make another environment for the other".to_string(),
            Steps { .. } => "steps rise and end at 100 (e.g. `steps: [10, 50, 100]`), and `bake` is shorter than `step_timeout`".to_string(),
            ServicePath { .. } => "give the service's directory relative to the project root, inside the repository".to_string(),
            NameClash { .. } => "rename one of them: `values/<name>.yaml` would be ambiguous".to_string(),
            AwsLaunch { key, .. } if key == "iam_instance_profile" => "name the instance profile whose role has the `instance` policy of manifests/aws-iam.json: `iam_instance_profile: ticketshop-instance`".to_string(),
            AwsLaunch { .. } => "see \"Launch template\" in README's AWS section for `block_devices` and `metadata`; AWS would refuse this setting halfway through a rollout".to_string(),
            Unknown { known, .. } => format!("known: {}", known.join(", ")),
            TypeChange { previous, .. } => {
                format!("make both layers the same type, or remove the value from one of them (the earlier one is at {previous})")
            }
            MissingRequired { description, environment, service, key, .. } => {
                let why = if description.is_empty() { String::new() } else { format!(" ({description})") };
                format!("set `{key}`{why} in values/{environment}.yaml, values/{service}.{environment}.yaml, or with `--set {key}=…`")
            }
            BadSet { .. } => "write `--set dotted.key=value`, e.g. `--set replicas=3`".to_string(),
            SecretUnavailable { .. } => "export the variable or create the file before rendering; `convoy check` works without secrets".to_string(),
            TooLarge { location, .. } if location.file.ends_with("convoy.yaml") => format!("a project file is at most {} bytes; move values into values/*.yaml", crate::config::limits::PROJECT_MAX_BYTES),
            TooLarge { .. } => "split the file, or raise `limits.max_file_size` in convoy.yaml if it really must be this large".to_string(),
            TooDeep { .. } => "flatten the structure, or raise `limits.max_depth` in convoy.yaml".to_string(),
            NoSuchValue { .. } => "run `convoy values` without `--explain` to see the merged keys".to_string(),
        })
    }
}

/// One or more configuration problems, all reported at once.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => write!(f, "{} problems in the project configuration", many.len()),
        }
    }
}

impl std::error::Error for ConfigErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.as_slice() {
            [one] => one.source(),
            _ => None,
        }
    }
}

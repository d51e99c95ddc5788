//! Everything that can go wrong while rendering and validating manifests, each with a place to
//! look and what to do next.

use std::fmt;

use crate::config::ConfigError;
use crate::diagnostic::{Diagnose, Location};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A values problem (missing required value, unreadable secret) met while rendering.
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("template `{template}`: {message}")]
    Template {
        location: Location,
        template: String,
        message: String,
    },

    #[error("template `{template}` did not render valid YAML for `{service}`: {message}")]
    Yaml {
        location: Location,
        template: String,
        service: String,
        message: String,
    },

    #[error("{kind} `{name}` ({service}): {path}: unknown field")]
    UnknownField {
        location: Location,
        service: String,
        kind: String,
        name: String,
        path: String,
        suggestion: Option<String>,
    },

    #[error("{kind} `{name}` ({service}): {path}: {message}")]
    Invalid {
        location: Location,
        service: String,
        kind: String,
        name: String,
        path: String,
        message: String,
    },

    #[error("a document rendered by `{template}` for `{service}` has no {missing}")]
    MissingIdentity {
        location: Location,
        template: String,
        service: String,
        missing: &'static str,
    },

    #[error("{kind} name `{name}` is {length} characters long; Kubernetes allows {limit}")]
    NameTooLong {
        location: Location,
        kind: String,
        name: String,
        length: usize,
        limit: usize,
    },

    #[error("{what} `{value}` is not valid in Kubernetes: {reason}")]
    InvalidName {
        location: Location,
        what: String,
        value: String,
        reason: &'static str,
    },

    #[error("service `{service}` uses template `{template}`, which does not exist")]
    UnknownTemplate {
        service: String,
        template: String,
        known: Vec<String>,
    },

    #[error("cannot read project template {}", path.display())]
    ReadTemplate {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no version given for service `{service}`")]
    NoVersion { service: String },

    #[error(
        "service `{service}` asks for {value} replicas; a replica count is a whole number from 0 to {}",
        i32::MAX
    )]
    Replicas {
        /// Where it was set; `None` for `--set`.
        location: Option<Location>,
        service: String,
        value: String,
        /// What set it: a values layer (`service api in production`) or a template.
        set_by: String,
    },

    #[error("lints failed: {errors} lint error(s), {warnings} warning(s){}", if *strict { " (--strict)" } else { "" })]
    Lints {
        errors: usize,
        warnings: usize,
        strict: bool,
    },
}

impl Diagnose for RenderError {
    fn location(&self) -> Option<&Location> {
        use RenderError::*;
        match self {
            Config(error) => error.location(),
            Template { location, .. }
            | Yaml { location, .. }
            | UnknownField { location, .. }
            | Invalid { location, .. }
            | MissingIdentity { location, .. }
            | NameTooLong { location, .. }
            | InvalidName { location, .. } => Some(location),
            Replicas { location, .. } => location.as_ref(),
            UnknownTemplate { .. } | ReadTemplate { .. } | NoVersion { .. } | Lints { .. } => None,
        }
    }

    fn help(&self) -> Option<String> {
        use RenderError::*;
        Some(match self {
            Config(error) => return error.help(),
            Template { .. } => "fix the template at that line; templates use Tera 2 syntax (`{{ value }}`, `{% if %}`)".to_string(),
            Yaml { .. } => "render with `convoy render` and look at the output of that template; `| json` quotes any value safely".to_string(),
            UnknownField { suggestion: Some(name), .. } => format!("did you mean {name}?"),
            UnknownField { .. } => "remove the field, or check the object's apiVersion (`kubectl explain` lists the fields)".to_string(),
            Invalid { .. } => "give the field the type Kubernetes expects (`kubectl explain` shows it)".to_string(),
            MissingIdentity { .. } => "every document needs `apiVersion`, `kind` and `metadata.name`".to_string(),
            NameTooLong { .. } => "shorten the service name or the version (`--version`); versioned names are `<service>-<version>`".to_string(),
            InvalidName { .. } => "use lowercase letters, digits, `-` and `.` in names (label values may also hold `_` and capitals); versions become both".to_string(),
            UnknownTemplate { known, .. } => format!("templates: {}", known.join(", ")),
            ReadTemplate { .. } => "check that the file is readable UTF-8 text".to_string(),
            NoVersion { .. } => "pass `--version`, or render from inside the project's git repository".to_string(),
            Replicas { set_by, .. } => format!("`replicas` was set by {set_by}; give it a whole number from 0 to {}", i32::MAX),
            Lints { strict: true, .. } => "fix the findings above, or drop `--strict` to let warnings pass".to_string(),
            Lints { .. } => "fix the findings above".to_string(),
        })
    }
}

/// One or more render problems, all reported at once.
#[derive(Debug, Default)]
pub struct RenderErrors(pub Vec<RenderError>);

impl RenderErrors {
    pub fn iter(&self) -> impl Iterator<Item = &RenderError> {
        self.0.iter()
    }
}

impl From<RenderError> for RenderErrors {
    fn from(error: RenderError) -> Self {
        RenderErrors(vec![error])
    }
}

impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => write!(f, "{} problems while rendering", many.len()),
        }
    }
}

impl std::error::Error for RenderErrors {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.0.as_slice() {
            [one] => one.source(),
            _ => None,
        }
    }
}

//! The project: `convoy.yaml` found, parsed, validated, with its services in dependency order.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::artifacts::{UnpackLimits, VerifyKeys};
use crate::config::ByteSize;
use crate::config::environment::{Environment, EnvironmentSpec};
use crate::config::error::{ConfigError, ConfigErrors};
use crate::config::limits::{InputLimits, read_bounded};
use crate::config::names;
use crate::config::service::Service;
use crate::config::service_graph::ServiceGraph;
use crate::config::target::Target;
use crate::config::yaml::Document;
use crate::diagnostic::did_you_mean;

pub const PROJECT_FILE: &str = "convoy.yaml";
pub const DEFAULT_STORE: &str = "file://.convoy/artifacts";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    project: String,
    #[serde(default)]
    artifacts: ArtifactsSpec,
    services: BTreeMap<String, Service>,
    #[serde(default)]
    environments: BTreeMap<String, EnvironmentSpec>,
    #[serde(default)]
    limits: InputLimits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactsSpec {
    #[serde(default = "default_store")]
    store: String,
    #[serde(default)]
    limits: ArtifactLimitsSpec,
    #[serde(default)]
    signing_key: Option<KeySource>,
    #[serde(default)]
    verify_keys: Vec<String>,
}

fn default_store() -> String {
    DEFAULT_STORE.to_string()
}

impl Default for ArtifactsSpec {
    fn default() -> Self {
        ArtifactsSpec {
            store: default_store(),
            limits: ArtifactLimitsSpec::default(),
            signing_key: None,
            verify_keys: Vec::new(),
        }
    }
}

/// `artifacts.limits`: bounds on an artifact's unpacked contents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ArtifactLimitsSpec {
    max_size: ByteSize,
    max_entries: u64,
}

impl Default for ArtifactLimitsSpec {
    fn default() -> Self {
        let limits = UnpackLimits::default();
        ArtifactLimitsSpec {
            max_size: ByteSize(limits.max_size),
            max_entries: limits.max_entries,
        }
    }
}

/// Where a key's text comes from: `{ env: NAME }` or `{ file: PATH }` (relative to the project
/// root). Never the key itself, so `convoy.yaml` can be committed.
/// Written as a one-key map, `{ env: NAME }` or `{ file: PATH }`, like a secret's source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KeySource {
    Env { env: String },
    File { file: PathBuf },
}

/// `artifacts:` after validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactSettings {
    pub limits: UnpackLimits,
    /// Signs meta.json at build when set.
    pub signing_key: Option<KeySource>,
    /// Public keys a deploy accepts; non-empty means every artifact must be signed by one.
    pub verify_keys: VerifyKeys,
}

/// A validated project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The directory holding `convoy.yaml`; relative paths in the project are taken from here.
    pub root: PathBuf,
    /// Where secrets' file sources are read from: `root`, except for a project re-created at an
    /// earlier commit (a rollback), whose secrets are read from their sources as they are now.
    pub secrets_root: PathBuf,
    /// The project file as given (kept relative when it was found relatively, for messages).
    pub file: PathBuf,
    /// Artifact store URL: `file://DIR` or `s3://bucket/prefix`.
    pub artifact_store: String,
    pub services: BTreeMap<String, Service>,
    pub environments: BTreeMap<String, Environment>,
    pub graph: ServiceGraph,
    pub document: Document,
    /// `limits:`: bounds on values files.
    pub limits: InputLimits,
    /// `artifacts:` besides the store: limits, signing and verification keys.
    pub artifacts: ArtifactSettings,
}

impl Project {
    /// Finds the project file: `--project` (a file or a directory), or the nearest `convoy.yaml`
    /// from `cwd` upwards.
    pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<PathBuf, ConfigError> {
        if let Some(path) = explicit {
            let path = if path.is_dir() {
                path.join(PROJECT_FILE)
            } else {
                path.to_path_buf()
            };
            return Ok(path);
        }
        let found = cwd
            .ancestors()
            .map(|dir| dir.join(PROJECT_FILE))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| ConfigError::NotFound {
                start: cwd.to_path_buf(),
            })?;
        // Messages read better as `convoy.yaml:3:5` than with the whole absolute path.
        Ok(found
            .strip_prefix(cwd)
            .map(Path::to_path_buf)
            .unwrap_or(found))
    }

    /// Reads and validates the project file; every problem found is reported, not only the first.
    pub fn load(file: &Path) -> Result<Project, ConfigErrors> {
        let text = read_bounded(file).map_err(|source| ConfigError::Read {
            path: file.to_path_buf(),
            source,
        })?;
        Self::from_text(file, text)
    }

    pub fn from_text(file: &Path, text: String) -> Result<Project, ConfigErrors> {
        let document = Document::parse_with(file, text, &InputLimits::project_file())?;
        let raw: ProjectFile = document.typed()?;
        let root = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root
        };
        validate(raw, document, root)
    }

    pub fn service(&self, name: &str) -> Result<&Service, ConfigError> {
        self.services
            .get(name)
            .ok_or_else(|| unknown("service", name, self.services.keys()))
    }

    pub fn environment(&self, name: &str) -> Result<&Environment, ConfigError> {
        self.environments
            .get(name)
            .ok_or_else(|| unknown("environment", name, self.environments.keys()))
    }

    /// Services in dependency order: every service after the ones it depends on.
    pub fn layers(&self) -> Vec<Vec<String>> {
        self.graph.layers()
    }
}

fn unknown<'a>(
    what: &'static str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> ConfigError {
    let known: Vec<String> = known.cloned().collect();
    let mut known_sorted = known;
    if let Some(close) =
        did_you_mean(name, known_sorted.iter().map(String::as_str)).map(str::to_string)
    {
        known_sorted.retain(|k| *k != close);
        known_sorted.insert(0, format!("{close} (closest)"));
    }
    ConfigError::Unknown {
        what,
        name: name.to_string(),
        known: known_sorted,
    }
}

fn validate(raw: ProjectFile, document: Document, root: PathBuf) -> Result<Project, ConfigErrors> {
    let mut errors = name_errors(&raw, &document);
    let mut services = raw.services;
    for (name, service) in services.iter_mut() {
        service.name = name.clone();
    }
    errors.extend(path_errors(&services, &document));
    errors.extend(dependency_errors(&services, &document));
    errors.extend(crate::config::task::task_errors(&services, &document));
    let graph = ServiceGraph::new(
        services
            .iter()
            .map(|(n, s)| (n.as_str(), s.depends_on.as_slice())),
    );
    if let Some(cycle) = graph.find_cycle() {
        let key = format!("services.{}.depends_on", cycle[0]);
        errors.push(ConfigError::Cycle {
            location: document.locate(&key),
            cycle,
        });
    }
    let environments = environments(raw.environments, &services, &document, &mut errors);
    let verify_keys = VerifyKeys::parse(&raw.artifacts.verify_keys).unwrap_or_else(|reason| {
        errors.push(ConfigError::Schema {
            location: document.locate("artifacts.verify_keys"),
            message: format!("invalid `artifacts.verify_keys`: {reason}"),
            suggestion: None,
        });
        VerifyKeys::default()
    });
    let artifacts = ArtifactSettings {
        limits: UnpackLimits {
            max_size: raw.artifacts.limits.max_size.0,
            max_entries: raw.artifacts.limits.max_entries,
        },
        signing_key: raw.artifacts.signing_key,
        verify_keys,
    };

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let file = document.file.clone();
    Ok(Project {
        name: raw.project,
        secrets_root: root.clone(),
        root,
        file,
        artifact_store: raw.artifacts.store,
        services,
        environments,
        graph,
        document,
        limits: raw.limits,
        artifacts,
    })
}

/// The project's, services' and environments' names, each a DNS-1123 label.
fn name_errors(raw: &ProjectFile, document: &Document) -> Vec<ConfigError> {
    let project = [("project", &raw.project, "project".to_string())];
    let services = raw
        .services
        .keys()
        .map(|name| ("service", name, format!("services.{name}")));
    let environments = raw
        .environments
        .keys()
        .map(|name| ("environment", name, format!("environments.{name}")));
    project
        .into_iter()
        .chain(services)
        .chain(environments)
        .filter_map(|(what, name, key)| {
            let reason = names::problem(name)?;
            Some(ConfigError::InvalidName {
                location: document.locate(&key),
                what,
                name: name.to_string(),
                reason,
            })
        })
        .collect()
}

fn path_errors(services: &BTreeMap<String, Service>, document: &Document) -> Vec<ConfigError> {
    services
        .iter()
        .filter_map(|(name, service)| {
            let reason = path_problem(&service.path)?;
            Some(ConfigError::ServicePath {
                location: document.locate(&format!("services.{name}.path")),
                service: name.clone(),
                path: service.path.clone(),
                reason,
            })
        })
        .collect()
}

/// Every `depends_on` entry names a service of the project.
fn dependency_errors(
    services: &BTreeMap<String, Service>,
    document: &Document,
) -> Vec<ConfigError> {
    let known: Vec<String> = services.keys().cloned().collect();
    let mut errors = Vec::new();
    for (name, service) in services {
        for (index, dependency) in service.depends_on.iter().enumerate() {
            if !services.contains_key(dependency) {
                errors.push(ConfigError::UnknownDependency {
                    location: document.locate(&format!("services.{name}.depends_on[{index}]")),
                    service: name.clone(),
                    dependency: dependency.clone(),
                    suggestion: did_you_mean(dependency, known.iter().map(String::as_str))
                        .map(str::to_string),
                    known: known.clone(),
                });
            }
        }
    }
    errors
}

/// The environments whose target resolves; every problem found goes to `errors`.
fn environments(
    specs: BTreeMap<String, EnvironmentSpec>,
    services: &BTreeMap<String, Service>,
    document: &Document,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, Environment> {
    let mut environments = BTreeMap::new();
    for (name, spec) in specs {
        errors.extend(environment_errors(&name, &spec, services, document));
        match target_of(&name, &spec, document) {
            Ok(target) => {
                let environment = Environment {
                    name: name.clone(),
                    target,
                    rollout: spec.rollout,
                    values: spec.values,
                    protected: spec.protected,
                };
                environments.insert(name, environment);
            }
            Err(error) => errors.push(error),
        }
    }
    environments
}

/// An environment named like a service, and rollout steps that make no sense.
fn environment_errors(
    name: &str,
    spec: &EnvironmentSpec,
    services: &BTreeMap<String, Service>,
    document: &Document,
) -> Vec<ConfigError> {
    let key = format!("environments.{name}");
    let mut errors = Vec::new();
    if services.contains_key(name) {
        errors.push(ConfigError::NameClash {
            location: document.locate(&key),
            name: name.to_string(),
        });
    }
    if let Some(reason) = spec.rollout.steps_problem() {
        let steps_key = format!("{key}.rollout.steps");
        // Point at `steps` when it was written, else at the policy that defaulted it.
        let steps_key = if document.marks.contains(&steps_key) {
            steps_key
        } else {
            format!("{key}.rollout")
        };
        errors.push(ConfigError::Steps {
            location: document.locate(&steps_key),
            reason,
        });
    }
    if let Some(aws) = spec.target.as_ref().and_then(|t| t.aws.as_ref()) {
        let mut problems = crate::config::aws_launch::problems(&aws.block_devices, &aws.metadata);
        if aws.instance_profile.is_none() {
            problems.push((
                "iam_instance_profile".to_string(),
                "it is required: the agent on each instance reads its revision's secrets from SSM and completes the launch hook with the instance's role, so without one every instance is abandoned".to_string(),
            ));
        }
        errors.extend(
            problems
                .into_iter()
                .map(|(setting, reason)| ConfigError::AwsLaunch {
                    location: document.locate(&format!("{key}.target.aws.{setting}")),
                    environment: name.to_string(),
                    key: setting,
                    reason,
                }),
        );
    }
    errors
}

/// The one target kind an environment names.
fn target_of(
    name: &str,
    spec: &EnvironmentSpec,
    document: &Document,
) -> Result<Target, ConfigError> {
    let key = format!("environments.{name}");
    let Some(target) = &spec.target else {
        return Err(ConfigError::NoTarget {
            location: document.locate(&key),
            environment: name.to_string(),
        });
    };
    target.resolve().ok_or_else(|| {
        let kinds = target.kinds();
        let location = document.locate(&format!("{key}.target"));
        if kinds.is_empty() {
            ConfigError::NoTarget {
                location,
                environment: name.to_string(),
            }
        } else {
            ConfigError::ManyTargets {
                location,
                environment: name.to_string(),
                kinds,
            }
        }
    })
}

/// Service paths are sub-trees of the repository: relative, and never climbing out of it.
fn path_problem(path: &str) -> Option<&'static str> {
    let path = Path::new(path);
    if path.as_os_str().is_empty() {
        return Some("it is empty");
    }
    if path.is_absolute() {
        return Some("it is absolute");
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Some("it leaves the repository with `..`");
    }
    None
}

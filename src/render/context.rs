//! The typed render context every template sees, built from the project, one service's layered
//! values and its version. Secrets are masked or revealed here, once.

mod flat_values;

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Project, Service, Target, Values};
use crate::render::{RenderError, SecretMode, ServiceVersion};

pub(crate) use flat_values::RESERVED;
pub use flat_values::env_name;
pub(super) use flat_values::scalar_text;
use flat_values::{FlatValues, json_text};

#[derive(Debug, Clone, Serialize)]
pub struct RenderContext {
    pub project: String,
    pub service: String,
    pub version: String,
    pub commit: String,
    pub environment: String,
    /// `kubernetes`, `aws` or `host`.
    pub target: &'static str,
    pub namespace: Option<String>,
    pub release: u64,
    /// `<image>:<version>`; empty when the service has no image.
    pub image: String,
    pub artifact: Artifact,
    pub port: Option<u16>,
    pub public: bool,
    pub background: bool,
    pub health: Health,
    /// The merged values, secrets masked or revealed.
    pub values: serde_json::Value,
    /// Flattened non-secret values as environment variables (`database.host` → `DATABASE_HOST`).
    pub config: BTreeMap<String, String>,
    /// `config` as a list in name order, for templates that loop (Tera's maps iterate unordered).
    pub config_env: Vec<EnvVar>,
    /// Flattened secret values, masked unless revealed.
    pub secrets: BTreeMap<String, String>,
    /// Environment variables for the container: dependency endpoints, then `values.env`.
    pub env: Vec<EnvVar>,
    pub dependencies: Vec<Endpoint>,
    pub names: Names,
    /// Labels of every per-version object; `selector` is the subset that picks its pods.
    pub labels: BTreeMap<String, String>,
    pub selector: BTreeMap<String, String>,
    pub autoscaling: Autoscaling,
    pub aws: Option<AwsContext>,
    /// The rendered `aws/user-data.sh`, for the launch template (empty elsewhere).
    pub user_data: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub url: String,
    /// Known once the artifact is built; empty before.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub http: Option<String>,
    pub command: Option<String>,
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// Where a client reaches one of its providers.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub service: String,
    pub url: String,
    /// The environment variable it is passed in, e.g. `PAYMENTS_URL`.
    pub env: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Names {
    pub deployment: String,
    pub service: String,
    pub config_map: String,
    pub secret: String,
    /// The environment's live flags (`<project>-flags`), mounted read-only on Kubernetes.
    pub flags: String,
}

/// The ConfigMap holding a Kubernetes environment's live flags: `<project>-flags`.
pub fn flags_config_map(project: &str) -> String {
    format!("{project}-flags")
}

#[derive(Debug, Clone, Serialize)]
pub struct Autoscaling {
    pub min: u64,
    pub max: u64,
    pub cpu_percent: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AwsContext {
    pub region: String,
    pub ami: Option<String>,
    pub instance_type: String,
    pub security_groups: Vec<String>,
    pub subnets: Vec<String>,
    pub instance_profile: Option<String>,
    pub target_group: Option<String>,
    pub store: String,
    pub root: String,
    /// The revision's Auto Scaling group, whose launch hook the agent completes.
    pub group: String,
    pub launch_hook: &'static str,
    /// The SSM path of the revision's secrets (SecureStrings the agent reads; never their values).
    pub parameters: String,
    /// Where the agent writes the service's environment file (mode 0600).
    pub env_file: String,
    /// The SSM parameter of the environment's live flags, which the agent copies to
    /// `<root>/flags.json` at start and a systemd timer every 30 s after.
    pub flags: String,
    /// The environment besides secrets: configuration values and dependency endpoints, by name.
    pub environment: BTreeMap<String, String>,
}

/// Everything `RenderContext::build` needs besides the values.
pub struct Inputs<'a> {
    pub project: &'a Project,
    pub environment: &'a str,
    pub target: &'a Target,
    pub service: &'a Service,
    pub version: &'a ServiceVersion,
    pub release: u64,
    pub secrets: SecretMode,
}

impl RenderContext {
    pub fn build(inputs: &Inputs<'_>, values: &Values) -> Result<RenderContext, RenderError> {
        let Inputs {
            project,
            environment,
            target,
            service,
            version,
            release,
            secrets,
        } = *inputs;
        let tree = super::secrets::shown(values, &project.secrets_root, secrets)?;
        let replicas = replica_count(values, &tree)?;
        let flat = FlatValues::of(values, &tree);
        let name = service.name.clone();
        let selector = selector(&name, version);
        let dependencies = endpoints(project, &name, target, &tree);
        let aws = AwsContext::of(
            project,
            &name,
            target,
            (environment, version.id()),
            flat.config
                .iter()
                .chain(dependencies.iter().map(|d| (&d.env, &d.url))),
        );
        Ok(RenderContext {
            project: project.name.clone(),
            service: name.clone(),
            version: version.version.clone(),
            commit: version.commit.clone(),
            environment: environment.to_string(),
            target: target.kind(),
            namespace: namespace(target),
            release,
            image: image(service, version),
            artifact: Artifact::of(project, &name, version),
            port: service.port,
            public: service.public,
            background: service.background,
            health: Health::of(service),
            env: container_env(&dependencies, &tree),
            autoscaling: Autoscaling::of(&tree, replicas),
            values: tree,
            names: Names::of(&name, version, &flat, &project.name),
            config_env: flat.config_env(),
            config: flat.config,
            secrets: flat.secrets,
            dependencies,
            labels: labels(&selector, release),
            selector,
            aws,
            user_data: String::new(),
        })
    }
}

const MAX_REPLICAS: u64 = i32::MAX as u64;

/// `values.replicas`, default 1. Kubernetes and Auto Scaling groups hold it as an `i32`, so a
/// count outside `0..=i32::MAX` is refused here rather than truncated (or refused by the API
/// halfway through a rollout).
pub(crate) fn replica_count(values: &Values, tree: &serde_json::Value) -> Result<u64, RenderError> {
    let Some(serde_json::Value::Number(number)) = tree.get("replicas") else {
        return Ok(1);
    };
    if let Some(count) = number.as_u64().filter(|n| *n <= MAX_REPLICAS) {
        return Ok(count);
    }
    let origin = values
        .explain("replicas")
        .and_then(|e| e.origins.last().cloned());
    Err(RenderError::Replicas {
        location: origin.as_ref().and_then(|o| o.location.clone()),
        service: values.service.clone(),
        value: number.to_string(),
        set_by: origin.map(|o| o.layer).unwrap_or_default(),
    })
}

/// The labels that pick one version's pods.
fn selector(service: &str, version: &ServiceVersion) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), service.to_string()),
        // The revision: what runs, code and configuration; a new one runs beside the old.
        (
            "app.kubernetes.io/version".to_string(),
            version.id().to_string(),
        ),
    ])
}

fn labels(selector: &BTreeMap<String, String>, release: u64) -> BTreeMap<String, String> {
    let mut labels = selector.clone();
    labels.insert("app.kubernetes.io/managed-by".into(), "convoy".into());
    labels.insert("convoy.dev/release".into(), release.to_string());
    labels
}

/// Dependency endpoints first, then `values.env`.
fn container_env(dependencies: &[Endpoint], tree: &serde_json::Value) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = dependencies
        .iter()
        .map(|d| EnvVar {
            name: d.env.clone(),
            value: d.url.clone(),
        })
        .collect();
    if let Some(serde_json::Value::Object(extra)) = tree.get("env") {
        env.extend(extra.iter().map(|(k, v)| EnvVar {
            name: k.clone(),
            value: json_text(v),
        }));
    }
    env
}

fn image(service: &Service, version: &ServiceVersion) -> String {
    service
        .image
        .as_ref()
        .map(|i| format!("{i}:{}", version.version))
        .unwrap_or_default()
}

fn namespace(target: &Target) -> Option<String> {
    target.namespace().map(str::to_string)
}

impl Names {
    fn of(service: &str, version: &ServiceVersion, flat: &FlatValues, project: &str) -> Names {
        Names {
            deployment: format!("{service}-{}", version.id()),
            service: service.to_string(),
            config_map: format!("{service}-config-{}", short_hash(&flat.config)),
            // From the values' keyed hash (the key is the environment's own, so the name says
            // nothing of them), else from their sources; never from their clear text, whose
            // plain hash in a name could be brute-forced.
            secret: match &version.secrets_digest {
                Some(digest) => format!("{service}-secret-{}", &digest[..digest.len().min(10)]),
                None => format!("{service}-secret-{}", short_hash(&flat.secret_refs)),
            },
            flags: flags_config_map(project),
        }
    }
}

impl Artifact {
    fn of(project: &Project, service: &str, version: &ServiceVersion) -> Artifact {
        Artifact {
            url: format!(
                "{}/{service}/{}.tar.gz",
                project.artifact_store.trim_end_matches('/'),
                version.version
            ),
            sha256: version.artifact_sha256.clone().unwrap_or_default(),
        }
    }
}

impl Health {
    fn of(service: &Service) -> Health {
        let health = service.health.as_ref();
        Health {
            http: health.and_then(|h| h.http.clone()),
            command: health.and_then(|h| h.command.clone()),
            timeout_seconds: health.map_or(10, |h| h.timeout.0.as_secs().max(1)),
        }
    }
}

impl Autoscaling {
    /// `values.autoscaling`, each bound defaulting from the replica count.
    fn of(tree: &serde_json::Value, replicas: u64) -> Autoscaling {
        let scaling = tree.get("autoscaling");
        let number = |key: &str| scaling.and_then(|s| s.get(key)).and_then(|v| v.as_u64());
        Autoscaling {
            min: number("min").unwrap_or(replicas),
            max: number("max").unwrap_or(replicas * 2),
            cpu_percent: number("cpu_percent").unwrap_or(70),
        }
    }
}

impl AwsContext {
    fn of<'a>(
        project: &Project,
        service: &str,
        target: &Target,
        (environment, revision): (&str, &str),
        variables: impl Iterator<Item = (&'a String, &'a String)>,
    ) -> Option<AwsContext> {
        use crate::targets::aws::names;
        let a = target.aws()?;
        Some(AwsContext {
            group: names::group_name(&project.name, environment, service, revision),
            launch_hook: names::LAUNCH_HOOK,
            parameters: names::parameter_path(&project.name, environment, service, revision),
            env_file: names::instance_env_file(service),
            flags: names::flags_parameter(&project.name, environment),
            environment: variables.map(|(k, v)| (k.clone(), v.clone())).collect(),
            region: a.region.clone(),
            ami: a.ami.clone(),
            instance_type: a.instance_type.clone(),
            security_groups: a.security_groups.clone(),
            subnets: a.subnets.clone(),
            instance_profile: a.instance_profile.clone(),
            target_group: a.target_groups.get(service).cloned(),
            store: project.artifact_store.clone(),
            root: names::instance_root(&project.name),
        })
    }
}

fn short_hash<T: Serialize>(data: &T) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))[..10].to_string()
}

/// How `service` reaches each direct dependency that listens on a port. On Kubernetes that is the
/// stable Service; elsewhere a value `endpoints.<dep>` wins over a conventional internal name.
fn endpoints(
    project: &Project,
    service: &str,
    target: &Target,
    values: &serde_json::Value,
) -> Vec<Endpoint> {
    let mut found: Vec<Endpoint> = project
        .graph
        .dependencies(service)
        .filter_map(|dep| {
            let port = project.services.get(dep)?.port?;
            let configured = values
                .get("endpoints")
                .and_then(|e| e.get(dep))
                .and_then(|u| u.as_str());
            let url = match configured {
                Some(url) => url.to_string(),
                None => target.default_endpoint(&project.name, dep, port),
            };
            Some(Endpoint {
                service: dep.to_string(),
                url,
                env: format!("{}_URL", env_name(dep)),
            })
        })
        .collect();
    found.sort_by(|a, b| a.service.cmp(&b.service));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_short() {
        let data = BTreeMap::from([("A", "1")]);
        assert_eq!(short_hash(&data), short_hash(&data.clone()));
        assert_eq!(short_hash(&data).len(), 10);
    }

    fn replicas(set: &str) -> Result<u64, RenderError> {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/ticketshop/convoy.yaml");
        let project = Project::load(&file).unwrap();
        let sets = [format!("replicas={set}")];
        let values = Values::layer(&project, "production", "api", &sets).unwrap();
        let tree = crate::render::secrets::shown(&values, &project.root, SecretMode::Mask).unwrap();
        replica_count(&values, &tree)
    }

    /// Kubernetes read `replicas` as `value as i32`: 4294967297 became 1, silently.
    #[test]
    fn replicas_beyond_i32_is_an_error_not_a_truncation() {
        for wrong in ["4294967297", "2147483648", "-1", "2.5"] {
            let error = replicas(wrong).unwrap_err();
            let RenderError::Replicas {
                service,
                value,
                set_by,
                ..
            } = &error
            else {
                panic!("{wrong}: {error:?}");
            };
            assert_eq!((service.as_str(), value.as_str()), ("api", wrong));
            assert_eq!(set_by, &format!("--set replicas={wrong}"));
            let help = crate::diagnostic::Diagnose::help(&error).unwrap();
            assert!(help.contains("from 0 to 2147483647"), "{help}");
        }
        assert_eq!(replicas("2147483647").unwrap(), 2_147_483_647);
        assert_eq!(replicas("0").unwrap(), 0);
    }
}

//! Targets, one per kind of place versions run: `host` (directories and a `live` symlink),
//! `kubernetes`, `aws`. Each implements the executor's traits in its own module.

pub mod aws;
pub mod host;
pub mod kubernetes;
pub mod prewarm;
mod wiring;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::artifacts::ArtifactStore;
use crate::config::{Project, Target};
use crate::execute::{Clock, EnvLock, ReleaseStore};
use crate::plan::ServiceState;

/// Connection settings given on the command line, overriding the environment's own, so a project
/// can be pointed at a scratch cluster unchanged.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kube_context: Option<String>,
    pub namespace: Option<String>,
}

/// An environment's target, opened with every value resolved, ready to run steps.
pub struct OpenedTarget {
    pub target: Arc<dyn crate::execute::Target>,
    /// Each service's values with secrets masked (for the release's values digest).
    pub values: BTreeMap<String, serde_json::Value>,
}

/// What opening a target needs besides the project.
pub struct OpenRequest<'a> {
    pub environment: &'a str,
    pub services: &'a [String],
    pub sets: &'a [String],
    pub store: Arc<dyn ArtifactStore>,
    pub clock: Arc<dyn Clock>,
    pub overrides: &'a Overrides,
}

/// Opens the target of an environment and its state; nothing is changed.
pub async fn open(
    project: &Project,
    request: OpenRequest<'_>,
) -> Result<(OpenedTarget, EnvironmentState), crate::Error> {
    let env = project
        .environment(request.environment)
        .map_err(crate::config::ConfigErrors::from)?;
    match &env.target {
        Target::Host(_) => {
            let (target, state) = wiring::host_target(
                project,
                request.environment,
                request.services,
                request.sets,
                request.store,
                request.clock,
            )?;
            let values = target
                .services
                .iter()
                .map(|(name, service)| (name.clone(), service.values.clone()))
                .collect();
            Ok((
                OpenedTarget {
                    target: Arc::new(target),
                    values,
                },
                state,
            ))
        }
        Target::Kubernetes(spec) => kubernetes::open::open(project, spec, request).await,
        Target::Aws(_) => aws::open(project, request).await,
    }
}

/// The live and warm versions of `services`, observed without resolving any value (so without
/// needing any secret).
pub async fn observe(
    project: &Project,
    environment: &str,
    services: &[String],
    overrides: &Overrides,
) -> Result<BTreeMap<String, ServiceState>, crate::Error> {
    let env = project
        .environment(environment)
        .map_err(crate::config::ConfigErrors::from)?;
    if let Target::Kubernetes(spec) = &env.target {
        let connection = kubernetes::open::connect(spec, overrides).await?;
        return Ok(kubernetes::observe::observe(
            &connection.client,
            &connection.namespace,
            services,
        )
        .await?);
    }
    if is_aws(project, environment) {
        return aws::observe(project, environment, services).await;
    }
    Ok(host_layout(project, environment)?.observe(services))
}

/// Where an environment keeps its release records and its lock.
pub struct EnvironmentState {
    pub releases: Box<dyn ReleaseStore>,
    pub lock: std::sync::Arc<dyn EnvLock>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error("the {kind} target of environment `{environment}` cannot do this")]
    NotYet {
        kind: &'static str,
        environment: String,
    },
    #[error("the {kind} target of environment `{environment}` cannot prewarm")]
    NoPrewarm {
        kind: &'static str,
        environment: String,
    },
    #[error(transparent)]
    Aws(#[from] aws::AwsError),
}

impl crate::diagnostic::Diagnose for TargetsError {
    fn help(&self) -> Option<String> {
        Some(match self {
            TargetsError::NotYet { .. } => {
                "`convoy diff` compares with a cluster, so it needs a kubernetes environment; deploy, rollback, status and history work on every target"
                    .to_string()
            }
            TargetsError::NoPrewarm { .. } => "prewarm works on kubernetes and aws environments; a host environment's capacity is its machines".to_string(),
            TargetsError::Aws(error) => return error.help(),
        })
    }
}

/// Opens the release records and lock of `environment`.
pub async fn environment_state(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<EnvironmentState, crate::Error> {
    let env = project
        .environment(environment)
        .map_err(crate::config::ConfigErrors::from)?;
    if let Target::Kubernetes(spec) = &env.target {
        let connection = kubernetes::open::connect(spec, overrides).await?;
        return Ok(kubernetes::open::state(project, environment, &connection));
    }
    if is_aws(project, environment) {
        return aws::environment_state(project, environment).await;
    }
    let root = host_layout(project, environment)?.root;
    Ok(EnvironmentState {
        releases: Box::new(host::ReleaseFiles::new(&root)),
        lock: std::sync::Arc::new(host::LockFile::new(&root, environment)),
    })
}

fn is_aws(project: &Project, environment: &str) -> bool {
    project
        .environment(environment)
        .is_ok_and(|env| matches!(env.target, Target::Aws(_)))
}

/// Where a host environment's versions live: enough to observe it, with no values resolved
/// (and so no secrets needed).
pub fn host_layout(project: &Project, environment: &str) -> Result<host::HostLayout, crate::Error> {
    let env = project
        .environment(environment)
        .map_err(crate::config::ConfigErrors::from)?;
    match &env.target {
        Target::Host(host) => Ok(host::HostLayout::new(host::resolve_root(
            &project.root,
            &host.root,
        ))),
        other => Err(TargetsError::NotYet {
            kind: other.kind(),
            environment: environment.to_string(),
        }
        .into()),
    }
}

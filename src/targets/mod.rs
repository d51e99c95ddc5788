//! Targets, one per kind of place versions run: `host` (directories and a `live` symlink),
//! `kubernetes`, `aws`. Each implements the executor's traits in its own module.

pub mod host;
pub mod kubernetes;
mod wiring;

pub use wiring::host_target;

use crate::config::{Project, Target};
use crate::execute::{EnvLock, ReleaseStore};

/// Where an environment keeps its release records and its lock.
pub struct EnvironmentState {
    pub releases: Box<dyn ReleaseStore>,
    pub lock: std::sync::Arc<dyn EnvLock>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error("the {kind} target of environment `{environment}` cannot do this yet")]
    NotYet {
        kind: &'static str,
        environment: String,
    },
}

impl crate::diagnostic::Diagnose for TargetsError {
    fn help(&self) -> Option<String> {
        Some(
            "the host target supports it today; kubernetes and aws follow in their own issues"
                .to_string(),
        )
    }
}

/// Opens the release records and lock of `environment`.
pub fn environment_state(
    project: &Project,
    environment: &str,
) -> Result<EnvironmentState, crate::Error> {
    let root = host_layout(project, environment)?.root;
    Ok(EnvironmentState {
        releases: Box::new(host::ReleaseFiles::new(&root)),
        lock: std::sync::Arc::new(host::LockFile::new(&root, environment)),
    })
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

//! Targets, one per kind of place versions run: `host` (directories and a `live` symlink),
//! `kubernetes`, `aws`. Each kind opens as a [`Backend`] in `targets/<kind>/open.rs`; [`open`]
//! is the only place that looks at which kind an environment has.

pub mod aws;
mod backend;
mod error;
pub mod host;
pub mod kubernetes;
pub mod prewarm;

use std::sync::Arc;

use crate::config::{ConfigErrors, Project, Target};

pub use backend::{Backend, DiffRequest, RevisionSpec, Revisions, TargetRequest, spec_of};
pub use error::{Operation, Severity, TargetsError};
pub use kubernetes::diff::{Difference, ObjectDiff};

/// Connection settings given on the command line, overriding the environment's own, so a project
/// can be pointed at a scratch cluster unchanged.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kube_context: Option<String>,
    pub namespace: Option<String>,
}

/// A new environment digest key: 32 random bytes from the system's generator.
pub(crate) fn new_digest_key() -> std::io::Result<Vec<u8>> {
    let mut key = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| std::io::Error::other("the system's random generator failed"))?;
    Ok(key)
}

/// Opens `environment`'s target. Nothing is changed, no value is resolved and no secret read:
/// observing, reading records and the lock need none of them.
pub async fn open(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<Box<dyn Backend>, TargetsError> {
    backend(
        project,
        || Arc::new(project.clone()),
        environment,
        overrides,
    )
    .await
}

/// [`open`] sharing `project` where the backend keeps it (a release's: megabytes at a thousand
/// services).
pub async fn open_shared(
    project: &Arc<Project>,
    environment: &str,
    overrides: &Overrides,
) -> Result<Box<dyn Backend>, TargetsError> {
    backend(project, || project.clone(), environment, overrides).await
}

/// The backend of `environment`'s target; `shared` gives the project to a backend that keeps
/// it whole (Kubernetes), made only for that one.
async fn backend(
    project: &Project,
    shared: impl FnOnce() -> Arc<Project>,
    environment: &str,
    overrides: &Overrides,
) -> Result<Box<dyn Backend>, TargetsError> {
    let env = project
        .environment(environment)
        .map_err(ConfigErrors::from)?;
    Ok(match &env.target {
        Target::Host(spec) => Box::new(host::open::open(project, environment, spec)),
        Target::Kubernetes(spec) => {
            let project = shared();
            Box::new(kubernetes::open::open(&project, environment, spec, overrides).await?)
        }
        Target::Aws(spec) => Box::new(aws::open::open(project, environment, spec).await?),
    })
}

//! `convoy diff`: what a deploy would change in the target, object by object.

use crate::Error;
use crate::config::Project;
use crate::execute::Reporter;
use crate::ops::rollout::{Made, desired, services};
use crate::targets::{DiffRequest, ObjectDiff, Overrides};

pub struct DiffOptions {
    pub project: Project,
    pub environment: String,
    /// The git revision whose versions to compare.
    pub rev: String,
    /// Services to compare; empty means all.
    pub services: Vec<String>,
    pub sets: Vec<String>,
    pub overrides: Overrides,
}

pub async fn diff(options: DiffOptions, reporter: &dyn Reporter) -> Result<Vec<ObjectDiff>, Error> {
    let DiffOptions {
        project,
        environment,
        rev,
        services: named,
        sets,
        overrides,
    } = options;
    let services = services(&project, &named)?;
    let desired = desired(&project, &rev, &services, reporter)?;
    let project = std::sync::Arc::new(project);
    let backend = crate::targets::open_shared(&project, &environment, &overrides).await?;
    let made = Made {
        project: &project,
        environment: &environment,
        backend: backend.as_ref(),
    };
    let (_, specs) = made.revisions(&services, &sets, &desired).await?;
    let request = DiffRequest {
        revisions: std::sync::Arc::new(specs),
    };
    Ok(backend.diff(request).await?)
}

//! `convoy artifacts list|show|gc`: the store's contents, and pruning what no release needs.

use std::collections::HashSet;

use crate::Error;
use crate::artifacts::{ArtifactError, ArtifactMeta, GcReport};
use crate::config::Project;
use crate::plan::revision::artifact_of;
use crate::targets::Overrides;

pub async fn list(project: &Project, service: Option<&str>) -> Result<Vec<ArtifactMeta>, Error> {
    let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
    Ok(store.list(service).await?)
}

pub async fn show(
    project: &Project,
    service: String,
    version: String,
) -> Result<ArtifactMeta, Error> {
    let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
    let meta = store.meta(&service, &version).await?;
    Ok(meta.ok_or_else(|| ArtifactError::NotFound {
        service,
        version,
        store: store.describe(),
    })?)
}

/// Deletes all but the newest `keep` versions of each service, never one a release record of
/// any environment mentions (it may be rolled back to).
pub async fn gc(project: &Project, keep: usize, overrides: &Overrides) -> Result<GcReport, Error> {
    let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
    let protected = referenced(project, overrides).await?;
    Ok(crate::artifacts::gc(store.as_ref(), keep, &protected).await?)
}

/// Every (service, version) a release record of an environment with stored records mentions.
async fn referenced(
    project: &Project,
    overrides: &Overrides,
) -> Result<HashSet<(String, String)>, Error> {
    let mut protected = HashSet::new();
    for environment in project.environments.keys() {
        // Environments whose state cannot be reached from here keep nothing to protect.
        let Ok(backend) = crate::targets::open(project, environment, overrides).await else {
            continue;
        };
        let Ok(releases) = backend.releases() else {
            continue;
        };
        for record in releases.list(usize::MAX).await? {
            // Revisions run artifacts: protect the artifact of each.
            let before = record
                .before
                .iter()
                .filter_map(|(s, v)| Some((s.clone(), v.clone()?)));
            let after = record.after.iter().map(|(s, v)| (s.clone(), v.clone()));
            let artifact = |(s, id): (String, String)| (s, artifact_of(&id).to_string());
            protected.extend(before.chain(after).map(artifact));
        }
    }
    Ok(protected)
}

//! `convoy build`: build and publish the services whose key is not in the store yet. Only what
//! is committed is built; a dirty work tree is noted.

use crate::Error;
use crate::build::{BuildOutcome, BuildRequest, Progress};
use crate::config::Project;
use crate::execute::{Event, Reporter};

pub async fn build(
    project: &Project,
    request: &BuildRequest,
    progress: &dyn Progress,
    reporter: &dyn Reporter,
) -> Result<Vec<BuildOutcome>, Error> {
    let resolved = crate::build::resolve_versions(project, &request.rev)?;
    if resolved.dirty {
        let commit = resolved
            .commit
            .get(..crate::build::VERSION_LEN)
            .unwrap_or(&resolved.commit);
        reporter.report(&Event::Warning {
            message: format!(
                "the work tree has uncommitted changes; building commit {commit} without them"
            ),
        });
    }
    let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
    Ok(crate::build::build(project, request, store.as_ref(), progress).await?)
}

/// The services whose recipe failed, or `Ok` when every one was built or cached.
pub fn failures(outcomes: &[BuildOutcome]) -> Result<(), Error> {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o, BuildOutcome::Failed { .. }))
        .map(|o| o.service().to_string())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::BuildsFailed {
            failed,
            total: outcomes.len(),
        })
    }
}

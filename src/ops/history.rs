//! `convoy history`: an environment's releases, newest first.

use crate::Error;
use crate::config::Project;
use crate::execute::ReleaseRecord;
use crate::targets::Overrides;

pub async fn history(
    project: &Project,
    environment: &str,
    limit: usize,
    overrides: &Overrides,
) -> Result<Vec<ReleaseRecord>, Error> {
    let backend = crate::targets::open(project, environment, overrides).await?;
    Ok(backend.releases()?.list(limit).await?)
}

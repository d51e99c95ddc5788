//! `convoy lock status|release`: who holds an environment, and breaking a dead run's lease.

use crate::Error;
use crate::config::Project;
use crate::execute::Lease;
use crate::targets::Overrides;

/// The lease held on `environment`, if any.
pub async fn held(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<Option<Lease>, Error> {
    let backend = crate::targets::open(project, environment, overrides).await?;
    Ok(backend.lock()?.status().await?)
}

/// Breaks whatever lease there is; a live run notices at its next renewal and stops. Returns the
/// lease broken.
pub async fn release(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<Option<Lease>, Error> {
    let backend = crate::targets::open(project, environment, overrides).await?;
    Ok(backend.lock()?.break_lock().await?)
}

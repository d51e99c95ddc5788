//! `convoy rollback`: revert an unfinished release, or return to an earlier release's versions —
//! instant when they are still warm.

use std::sync::Arc;

use crate::Error;
use crate::config::Project;
use crate::execute::{Reporter, Request};
use crate::ops::confirm::{Confirmation, confirm};
use crate::ops::deploy::DeployOutcome;
use crate::ops::interrupt::Interrupt;
use crate::ops::rollout::{Rollout, RolloutRequest, services};
use crate::targets::Overrides;

pub struct RollbackOptions {
    pub project: Project,
    pub environment: String,
    /// The release whose versions to return to; by default those before the last successful one.
    pub to: Option<u64>,
    pub overrides: Overrides,
}

/// Ends like a deploy: declined, nothing to do (already there), or a release.
pub async fn rollback(
    options: RollbackOptions,
    reporter: Arc<dyn Reporter>,
    confirmation: &Confirmation<'_>,
) -> Result<DeployOutcome, Error> {
    let RollbackOptions {
        project,
        environment,
        to,
        overrides,
    } = options;
    let services = services(&project, &[])?;
    let rollout = Rollout::open(RolloutRequest {
        project,
        environment: &environment,
        services: &services,
        sets: &[],
        desired: None,
        overrides: &overrides,
        reporter: reporter.clone(),
    })
    .await?;
    if !confirm(&rollout.project, &environment, "Roll back", confirmation)? {
        return Ok(DeployOutcome::Declined);
    }
    let interrupt = Interrupt::on_ctrl_c(reporter.clone());
    let session = rollout.session(reporter.as_ref(), interrupt.abort())?;
    crate::ops::deploy::run(&session, Request::Rollback { to }, &interrupt).await
}

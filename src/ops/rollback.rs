//! `convoy rollback`: revert an unfinished release, or return to an earlier release's versions —
//! instant when they are still warm.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::config::Project;
use crate::execute::{Reporter, Request};
use crate::ops::confirm::{Confirmation, confirm};
use crate::ops::deploy::DeployOutcome;
use crate::ops::interrupt::Interrupt;
use crate::ops::rollout::{Rollout, RolloutRequest, services};
use crate::plan::revision::Revision;
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
    let rollout = from_records(rollout, to, reporter.as_ref()).await?;
    if !confirm(&rollout.project, &environment, "Roll back", confirmation)? {
        return Ok(DeployOutcome::Declined);
    }
    let interrupt = Interrupt::on_ctrl_c(reporter.clone());
    let session = rollout.session(reporter.as_ref(), interrupt.abort())?;
    crate::ops::deploy::run(&session, Request::Rollback { to }, &interrupt).await
}

/// `rollout` returning to the revisions the records say (never today's tree): those the target
/// no longer runs (neither live nor warm) are made again from their records, before anything
/// changes; a revision that cannot be is refused here.
async fn from_records(
    rollout: Rollout,
    to: Option<u64>,
    reporter: &dyn Reporter,
) -> Result<Rollout, Error> {
    // Both reads at once: what the target runs is observed for every service of the project,
    // the ones returned to among them.
    let (records, state) = futures::join!(
        rollout.releases.list(usize::MAX),
        rollout.backend.observe(&rollout.services)
    );
    let (records, state) = (records?, state?);
    let returning = crate::execute::returning_to(&records, to);
    let recorded: BTreeMap<String, Arc<Revision>> = returning
        .iter()
        .filter_map(|(service, id)| {
            let found = crate::execute::recorded(&records, service, id)?;
            Some((service.clone(), found.clone()))
        })
        .collect();
    let gone: Vec<Revision> = recorded
        .values()
        .filter(|revision| {
            let running = state.get(&revision.service);
            !running.is_some_and(|s| {
                s.live.as_deref() == Some(revision.id.as_str()) || s.warm.contains(&revision.id)
            })
        })
        .map(|revision| revision.as_ref().clone())
        .collect();
    let recreated = crate::ops::recreate::recreate(
        &rollout.project,
        &rollout.environment,
        rollout.backend.as_ref(),
        &gone,
        reporter,
    )
    .await?;
    rollout.returning_to(recorded, recreated).await
}

//! `convoy deploy` and `convoy plan`: build what is missing, plan, ask, lock, roll out, record.

use std::sync::Arc;

use crate::Error;
use crate::config::Project;
use crate::execute::{Lease, ReleaseRecord, Reporter, Request};
use crate::ops::confirm::{Confirmation, confirm};
use crate::ops::interrupt::Interrupt;
use crate::ops::rollout::{Rollout, RolloutRequest, build_missing, desired, services};
use crate::plan::Plan;
use crate::targets::Overrides;

pub struct DeployOptions {
    pub project: Project,
    pub environment: String,
    /// The git revision to deploy.
    pub rev: String,
    /// Services to deploy; empty means all.
    pub services: Vec<String>,
    /// Plan only: change nothing.
    pub dry_run: bool,
    /// Continue the unfinished release from its journal.
    pub resume: bool,
    /// Never build: a missing artifact fails the deploy.
    pub no_build: bool,
    /// `--set key=value` overrides.
    pub sets: Vec<String>,
    pub overrides: Overrides,
}

pub enum DeployOutcome {
    /// `--dry-run` or `convoy plan`: the plan, and the API calls of each step where a target
    /// counts them.
    Planned {
        plan: Plan,
        calls: Vec<(String, Vec<String>)>,
    },
    /// The person asked said no.
    Declined,
    /// Every service already runs its version.
    NothingToDo,
    Released {
        record: Box<ReleaseRecord>,
        /// An expired lease that this run took over.
        took_over: Option<Lease>,
    },
}

pub async fn deploy(
    options: DeployOptions,
    reporter: Arc<dyn Reporter>,
    confirmation: &Confirmation<'_>,
) -> Result<DeployOutcome, Error> {
    let DeployOptions {
        project,
        environment,
        rev,
        services: named,
        dry_run,
        resume,
        no_build,
        sets,
        overrides,
    } = options;
    let services = services(&project, &named)?;
    let desired = desired(&project, &rev, &services, reporter.as_ref())?;
    let rollout = Rollout::open(RolloutRequest {
        project,
        environment: &environment,
        services: &services,
        sets: &sets,
        desired: Some(&desired),
        overrides: &overrides,
        reporter: reporter.clone(),
    })
    .await?;
    let desired = rollout.desired();
    let interrupt = Interrupt::on_ctrl_c(reporter.clone());
    let session = rollout.session(reporter.as_ref(), interrupt.abort())?;
    if dry_run {
        let plan = session.plan(&desired).await?;
        let calls = plan
            .steps
            .iter()
            .map(|step| {
                let calls = rollout.target.calls(step);
                (format!("{} {}", step.id, step.service), calls)
            })
            .filter(|(_, calls)| !calls.is_empty())
            .collect();
        return Ok(DeployOutcome::Planned { plan, calls });
    }
    let request = if resume {
        Request::Resume
    } else {
        if !no_build {
            let store = rollout.store.as_ref();
            build_missing(&rollout.project, &rev, &services, store, reporter.as_ref()).await?;
        }
        // Unsigned or tampered artifacts are refused here, before anything changes.
        rollout.pin_artifacts().await?;
        if !confirm(&rollout.project, &environment, "Deploy to", confirmation)? {
            return Ok(DeployOutcome::Declined);
        }
        Request::Deploy { desired }
    };
    run(&session, request, &interrupt).await
}

/// Runs `request` in `session` until it ends, or until a second Ctrl-C stops it at once.
pub(super) async fn run(
    session: &crate::execute::Session<'_>,
    request: Request,
    interrupt: &Interrupt,
) -> Result<DeployOutcome, Error> {
    let finished = tokio::select! {
        finished = session.run(request) => finished?,
        () = interrupt.stopped() => {
            let environment = session.environment.to_string();
            return Err(Error::Stopped { environment });
        }
    };
    Ok(match finished.record {
        None => DeployOutcome::NothingToDo,
        Some(record) => DeployOutcome::Released {
            record: Box::new(record),
            took_over: finished.took_over,
        },
    })
}

/// `convoy plan`: what a deploy of `rev` would run now; changes nothing.
pub async fn plan(
    project: Project,
    environment: String,
    rev: String,
    services: Vec<String>,
    sets: Vec<String>,
    overrides: Overrides,
    reporter: Arc<dyn Reporter>,
) -> Result<DeployOutcome, Error> {
    let options = DeployOptions {
        project,
        environment,
        rev,
        services,
        dry_run: true,
        resume: false,
        no_build: true,
        sets,
        overrides,
    };
    let nobody = Confirmation {
        assume_yes: false,
        prompt: &crate::ops::confirm::Yes,
    };
    deploy(options, reporter, &nobody).await
}

//! `convoy task run NAME --env E --service S`: a task of a service run by hand on the
//! environment's live revision, like `heroku run`. Under the environment's lease, through the
//! same target step a release runs (`Action::Task`), with maintenance around it when the task
//! asks for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::config::{ConfigErrors, Project};
use crate::diagnostic::Diagnose;
use crate::execute::flags::{FlagAuthor, maintenance_off, maintenance_on};
use crate::execute::{
    Clock, Event, Holder, LEASE_TTL, Lease, Reporter, Target, TargetError, recorded,
};
use crate::ops::rollout::{Rollout, RolloutRequest};
use crate::plan::{Action, Phase, Plan, Step, StepId};
use crate::targets::Overrides;

pub struct TaskRunOptions {
    pub project: Project,
    pub environment: String,
    pub service: String,
    pub task: String,
    pub overrides: Overrides,
}

/// What ran.
#[derive(Debug, Clone)]
pub struct TaskRun {
    pub service: String,
    pub task: String,
    pub revision: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskRunError {
    #[error("service `{service}` has no task `{task}`")]
    UnknownTask {
        service: String,
        task: String,
        known: Vec<String>,
    },
    #[error("`{service}` has no live revision in `{environment}`")]
    NoLiveRevision {
        service: String,
        environment: String,
    },
    #[error("task {task} of `{service}` failed on revision {revision}: {error}")]
    Failed {
        service: String,
        task: String,
        revision: String,
        error: TargetError,
    },
    #[error("task {task} of `{service}` needs maintenance, which cannot be turned on: {detail}")]
    Maintenance {
        service: String,
        task: String,
        detail: String,
    },
}

impl TaskRunError {
    pub fn exit(&self) -> crate::Exit {
        match self {
            TaskRunError::Failed { .. } | TaskRunError::Maintenance { .. } => crate::Exit::Failed,
            TaskRunError::UnknownTask { .. } | TaskRunError::NoLiveRevision { .. } => {
                crate::Exit::Usage
            }
        }
    }
}

impl Diagnose for TaskRunError {
    fn help(&self) -> Option<String> {
        match self {
            TaskRunError::UnknownTask { service, known, .. } if known.is_empty() => Some(format!(
                "`{service}` has no tasks: define one under `services.{service}.tasks` in convoy.yaml"
            )),
            TaskRunError::UnknownTask { service, known, .. } => {
                Some(format!("tasks of `{service}`: {}", known.join(", ")))
            }
            TaskRunError::NoLiveRevision {
                service,
                environment,
            } => Some(format!(
                "deploy it first: `convoy deploy --env {environment} {service}`"
            )),
            TaskRunError::Failed { error, .. } => error.help(),
            TaskRunError::Maintenance { .. } => None,
        }
    }
}

/// Runs the task on the live revision, holding the environment's lease throughout.
pub async fn run(options: TaskRunOptions, reporter: Arc<dyn Reporter>) -> Result<TaskRun, Error> {
    let TaskRunOptions {
        project,
        environment,
        service,
        task,
        overrides,
    } = options;
    let spec = project.service(&service).map_err(ConfigErrors::from)?;
    let Some(definition) = spec.tasks.get(&task).cloned() else {
        let known = spec.tasks.keys().cloned().collect();
        return Err(TaskRunError::UnknownTask {
            service,
            task,
            known,
        }
        .into());
    };
    project
        .environment(&environment)
        .map_err(ConfigErrors::from)?;
    let services = [service.clone()];
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
    let state = rollout.backend.observe(&services).await?;
    let Some(live) = state.get(&service).and_then(|s| s.live.clone()) else {
        return Err(TaskRunError::NoLiveRevision {
            service,
            environment,
        }
        .into());
    };
    // The target renders the live revision as it was recorded (its image, values, secrets),
    // never from today's tree.
    let records = rollout.releases.list(usize::MAX).await?;
    let latest = records.first().map_or(0, |r| r.number);
    let rollout = match recorded(&records, &service, &live).cloned() {
        Some(revision) => {
            let recreated = crate::ops::recreate::recreate(
                &rollout.project,
                &environment,
                rollout.backend.as_ref(),
                std::slice::from_ref(&revision),
                reporter.as_ref(),
            )
            .await?;
            rollout
                .returning_to(BTreeMap::from([(service.clone(), revision)]), recreated)
                .await?
        }
        None => rollout,
    };
    let step = Step {
        id: StepId(0),
        phase: Phase::Provision,
        service: service.clone(),
        action: Action::Task {
            task: task.clone(),
            version: live.clone(),
            command: definition.command.clone(),
            when: definition.when,
            maintenance: definition.maintenance,
        },
        after: Vec::new(),
        after_all_below: None,
        timeout: definition.timeout,
        not_before: None,
    };
    let holder = Holder::this_process();
    let clock = rollout.clock.clone();
    let lease = rollout
        .lock
        .acquire(&holder, &holder.token(clock.now()), LEASE_TTL, clock.now())
        .await?
        .lease;
    let renewal = renew(rollout.lock.clone(), clock.clone(), lease.clone());
    let author = FlagAuthor {
        who: format!("task run {task} ({holder})"),
        at: clock.now(),
        release: Some(latest),
    };
    let ran = run_step(&rollout, &step, &author, reporter.as_ref()).await;
    renewal.abort();
    let released = rollout.lock.release(&lease).await;
    ran.map_err(|e| match e {
        Ran::Failed(error) => TaskRunError::Failed {
            service: service.clone(),
            task: task.clone(),
            revision: live.clone(),
            error,
        },
        Ran::Maintenance(detail) => TaskRunError::Maintenance {
            service: service.clone(),
            task: task.clone(),
            detail,
        },
    })?;
    released?;
    Ok(TaskRun {
        service,
        task,
        revision: live,
    })
}

enum Ran {
    Failed(TargetError),
    Maintenance(String),
}

/// The step as the target runs it in a release, with maintenance on around it when asked.
async fn run_step(
    rollout: &Rollout,
    step: &Step,
    author: &FlagAuthor,
    reporter: &dyn Reporter,
) -> Result<(), Ran> {
    let target: &dyn Target = rollout.target.as_ref();
    let plan = Plan {
        environment: rollout.environment.clone(),
        created: rollout.clock.now(),
        changes: Vec::new(),
        unchanged: Vec::new(),
        steps: vec![step.clone()],
    };
    target
        .preflight(&plan, crate::targets::kubernetes::BY_HAND)
        .await
        .map_err(Ran::Failed)?;
    let Action::Task {
        maintenance: true, ..
    } = &step.action
    else {
        return target.apply(step).await.map_err(Ran::Failed);
    };
    let flags = rollout
        .backend
        .flags()
        .map_err(|e| Ran::Maintenance(crate::diagnostic::chain(&e)))?;
    maintenance_on(flags.as_ref(), author)
        .await
        .map_err(|e| Ran::Maintenance(crate::diagnostic::chain(&e)))?;
    reporter.report(&Event::Note {
        message: format!("maintenance on ({}: {})", step.service, step.action),
    });
    let result = target.apply(step).await;
    let author = FlagAuthor {
        at: rollout.clock.now(),
        ..author.clone()
    };
    match maintenance_off(flags.as_ref(), &author).await {
        Ok(()) => reporter.report(&Event::Note {
            message: "maintenance off".to_string(),
        }),
        Err(error) => reporter.report(&Event::Warning {
            message: format!(
                "cannot turn maintenance off: {}; `convoy flags unset maintenance --env {}`",
                crate::diagnostic::chain(&error),
                rollout.environment
            ),
        }),
    }
    result.map_err(Ran::Failed)
}

/// Keeps the lease alive while the task runs (a task may outlast [`LEASE_TTL`]).
fn renew(
    lock: Arc<dyn crate::execute::EnvLock>,
    clock: Arc<dyn Clock>,
    lease: Lease,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lease = lease;
        loop {
            tokio::time::sleep(LEASE_TTL / 3).await;
            match lock.renew(&lease, LEASE_TTL, clock.now()).await {
                Ok(renewed) => lease = renewed,
                Err(_) => return,
            }
        }
    })
}

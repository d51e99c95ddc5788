//! `convoy prewarm`: a new window (`prewarm_window`), or `apply` what is due (from cron), `list`
//! and `cancel` windows.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::args::EnvArg;
use super::{Context, prompt};
use crate::execute::{Clock, SystemClock};
use crate::ops::prewarm;
use crate::plan::prewarm::Change;
use crate::report::{self, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PrewarmArgs {
    #[command(subcommand)]
    pub action: Option<PrewarmAction>,
    #[command(flatten)]
    pub schedule: super::prewarm_window::ScheduleArgs,
}

#[derive(Debug, Subcommand)]
pub enum PrewarmAction {
    /// Raise or restore whatever is due now (idempotent: run it every minute from cron or CI)
    Apply(EnvArg),
    /// The stored windows: active, upcoming, and ended ones not yet restored
    List(EnvArg),
    /// Remove a window; capacity it raised is given back at once
    Cancel {
        #[command(flatten)]
        env: EnvArg,
        /// The window's id (`convoy prewarm list`)
        #[arg(value_name = "ID")]
        id: String,
    },
}

pub fn run(args: PrewarmArgs, context: &Context) -> Result<Exit, Error> {
    let PrewarmArgs { action, schedule } = args;
    let project = context.load_project()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let overrides = &context.overrides;
    let runtime = super::runtime()?;
    match action {
        None => super::prewarm_window::create(schedule, project, context, clock),
        Some(PrewarmAction::Apply(EnvArg { environment })) => {
            let applied = prewarm::apply(&project, &environment, overrides, clock.now());
            let changes = runtime.block_on(applied)?;
            report_changes(context, &environment, &changes, "nothing due");
            Ok(Exit::Success)
        }
        Some(PrewarmAction::List(EnvArg { environment })) => {
            let listed = prewarm::list(&project, &environment, overrides);
            let (schedule, location) = runtime.block_on(listed)?;
            context.output.event(
                json!({"event": "prewarms", "environment": environment, "schedule": schedule}),
            );
            context
                .output
                .human(&report::prewarm::windows(&schedule, clock.now(), &location));
            Ok(Exit::Success)
        }
        Some(PrewarmAction::Cancel {
            env: EnvArg { environment },
            id,
        }) => {
            let confirmation = prompt::confirmation(context);
            let cancelled = prewarm::cancel(
                &project,
                &environment,
                &id,
                overrides,
                clock.now(),
                &confirmation,
            );
            let Some(changes) = runtime.block_on(cancelled)? else {
                return Ok(Exit::Usage);
            };
            context
                .output
                .human(&format!("prewarm {id} of {environment} cancelled"));
            report_changes(context, &environment, &changes, "");
            Ok(Exit::Success)
        }
    }
}

pub(super) fn report_changes(
    context: &Context,
    environment: &str,
    changes: &[Change],
    nothing: &str,
) {
    context
        .output
        .event(json!({"event": "prewarm_applied", "environment": environment, "changes": changes}));
    if changes.is_empty() {
        context.output.human(nothing);
    } else {
        context.output.human(&report::prewarm::changes(changes));
    }
}

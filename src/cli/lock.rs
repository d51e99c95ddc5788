//! `convoy lock status|release --env E`.

use clap::{Args, Subcommand};

use super::Context;
use super::args::EnvArg;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(subcommand)]
    pub action: LockAction,
}

#[derive(Debug, Subcommand)]
pub enum LockAction {
    /// Who holds the environment's lock, since when, until when
    Status(EnvArg),
    /// Break the lock (for a run that died); a live run notices and stops at its next renewal
    Release(EnvArg),
}

pub fn run(args: LockArgs, context: &Context) -> Result<Exit, Error> {
    let LockArgs { action } = args;
    let project = context.load_project()?;
    let runtime = super::runtime()?;
    let overrides = &context.overrides;
    match action {
        LockAction::Status(EnvArg { environment }) => {
            let lease =
                runtime.block_on(crate::ops::lock::held(&project, &environment, overrides))?;
            context
                .output
                .event(json!({"event": "lock", "environment": environment, "lease": lease}));
            context.output.human(&match lease {
                None => format!("{environment}: not locked"),
                Some(lease) => format!(
                    "{environment}: locked by {} since {} (renewed {}, expires {})",
                    lease.holder, lease.acquired, lease.renewed, lease.expires
                ),
            });
        }
        LockAction::Release(EnvArg { environment }) => {
            let broken =
                runtime.block_on(crate::ops::lock::release(&project, &environment, overrides))?;
            context.output.event(
                json!({"event": "lock_released", "environment": environment, "lease": broken}),
            );
            context.output.human(&match broken {
                None => format!("{environment}: was not locked"),
                Some(lease) => format!(
                    "{environment}: released the lock held by {} since {}",
                    lease.holder, lease.acquired
                ),
            });
        }
    }
    Ok(Exit::Success)
}

//! `convoy task run NAME --env E --service S`.

use clap::{Args, Subcommand};

use super::Context;
use super::args::EnvArg;
use crate::ops::task::TaskRunOptions;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Run task NAME of a service on its live revision (takes the environment's lock)
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The task, as named under `services.<service>.tasks`
    #[arg(value_name = "NAME")]
    pub task: String,
    #[command(flatten)]
    pub env: EnvArg,
    /// The service whose task it is
    #[arg(long, value_name = "SERVICE")]
    pub service: String,
}

pub fn run(command: TaskCommand, context: &Context) -> Result<Exit, Error> {
    let TaskCommand::Run(RunArgs {
        task,
        env: EnvArg { environment },
        service,
    }) = command;
    let project = context.load_project()?;
    let runtime = super::runtime()?;
    let options = TaskRunOptions {
        project,
        environment: environment.clone(),
        service,
        task,
        overrides: context.overrides.clone(),
    };
    let ran = runtime.block_on(crate::ops::task::run(options, context.reporter()))?;
    context.output.event(json!({"event": "task_ran", "environment": environment, "service": ran.service, "task": ran.task, "revision": ran.revision}));
    context.output.human(&format!(
        "{}: task {} ran on revision {} in {environment}",
        ran.service, ran.task, ran.revision
    ));
    Ok(Exit::Success)
}

//! `convoy rollback`.

use clap::Args;

use super::args::EnvArg;
use super::{Context, prompt};
use crate::ops::deploy::DeployOutcome;
use crate::ops::rollback::RollbackOptions;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// The release whose versions to return to [default: those before the last successful release]
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<u64>,
}

pub fn run(args: RollbackArgs, context: &Context) -> Result<Exit, Error> {
    let RollbackArgs {
        env: EnvArg { environment },
        to,
    } = args;
    let options = RollbackOptions {
        project: context.load_project()?,
        environment: environment.clone(),
        to,
        overrides: context.overrides.clone(),
    };
    let confirmation = prompt::confirmation(context);
    let outcome = super::runtime()?.block_on(crate::ops::rollback::rollback(
        options,
        context.reporter(),
        &confirmation,
    ))?;
    if matches!(outcome, DeployOutcome::NothingToDo) {
        context.output.human(&format!(
            "{environment}: already at those versions; nothing to do"
        ));
        return Ok(Exit::Success);
    }
    Ok(super::deploy::print(context, &environment, outcome))
}

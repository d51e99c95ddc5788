//! `convoy rollback`: revert an unfinished release, or return to an earlier release's versions —
//! instant when they are still warm (on disk, for the host target).

use clap::Args;

use super::Context;
use super::rollout;
use crate::execute::Request;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// The release whose versions to return to [default: those before the last successful release]
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<u64>,
}

pub fn run(args: RollbackArgs, context: &Context) -> Result<Exit, Error> {
    let RollbackArgs { environment, to } = args;
    let project = context.load_project()?;
    let services = rollout::services(&project, &[])?;
    super::runtime()?.block_on(async {
        let opened = rollout::open(context, project, &environment, &services, &[]).await?;
        if !rollout::confirm(context, &opened.project, &environment, "Roll back")? {
            context.output.human("nothing changed");
            return Ok(Exit::Success);
        }
        let reporter = rollout::reporter(context);
        let session = opened.session(&environment, reporter.as_ref())?;
        let finished = session.run(Request::Rollback { to }).await?;
        let Some(record) = finished.record else {
            context.output.human(&format!(
                "{environment}: already at those versions; nothing to do"
            ));
            return Ok(Exit::Success);
        };
        context
            .output
            .event(json!({"event": "release", "number": record.number, "outcome": record.outcome}));
        context.output.human(&super::status::describe(&record));
        Ok(rollout::exit_for(&record.outcome))
    })
}

//! `convoy history --env E`: releases with their outcome, who, when and how long.

use clap::Args;

use super::Context;
use crate::execute::Outcome;
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// How many releases to show, newest first
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

pub fn run(args: HistoryArgs, context: &Context) -> Result<Exit, Error> {
    let HistoryArgs { environment, limit } = args;
    let project = context.load_project()?;
    let records = super::runtime()?.block_on(async {
        let state =
            crate::targets::environment_state(&project, &environment, &context.overrides).await?;
        Ok::<_, Error>(state.releases.list(limit).await?)
    })?;
    let mut table = Table::new([
        "RELEASE", "OUTCOME", "WHO", "STARTED", "DURATION", "CHANGES",
    ]);
    for record in &records {
        let outcome = match &record.outcome {
            Outcome::InProgress => "unfinished",
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled back",
            Outcome::Failed { .. } => "FAILED",
        };
        let changes: Vec<String> = record
            .plan
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{} {}→{}",
                    c.service,
                    c.from.as_deref().unwrap_or("∅"),
                    c.to
                )
            })
            .collect();
        let duration = record
            .duration()
            .map(|d| format!("{:.0?}", d.unsigned_abs()))
            .unwrap_or_default();
        context
            .output
            .event(json!({"event": "release", "record": record}));
        table.row([
            record.number.to_string(),
            outcome.to_string(),
            record.who.to_string(),
            record.started.to_string(),
            duration,
            changes.join(", "),
        ]);
    }
    if table.is_empty() {
        context
            .output
            .human(&format!("{environment}: no releases yet"));
    } else {
        context.output.human(&table.to_string());
    }
    Ok(Exit::Success)
}

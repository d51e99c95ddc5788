//! `convoy history --env E`.

use clap::Args;

use super::Context;
use super::args::EnvArg;
use crate::execute::{Outcome, ReleaseRecord};
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// How many releases to show, newest first
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Show one release in detail: why each service changed, what its revision was made of, and
    /// how long each step took
    #[arg(long, value_name = "N")]
    pub release: Option<u64>,
}

pub fn run(args: HistoryArgs, context: &Context) -> Result<Exit, Error> {
    let HistoryArgs {
        env: EnvArg { environment },
        limit,
        release,
    } = args;
    let project = context.load_project()?;
    let limit = if release.is_some() { usize::MAX } else { limit };
    let records = super::runtime()?.block_on(crate::ops::history::history(
        &project,
        &environment,
        limit,
        &context.overrides,
    ))?;
    if let Some(number) = release {
        let Some(record) = records.iter().find(|r| r.number == number) else {
            let kept: Vec<String> = records.iter().map(|r| r.number.to_string()).collect();
            let kept = if kept.is_empty() {
                "none".to_string()
            } else {
                kept.join(", ")
            };
            eprintln!(
                "error: `{environment}` has no release {number}\nhelp: the records kept are {kept}"
            );
            return Ok(Exit::Usage);
        };
        context
            .output
            .event(json!({"event": "release", "record": record}));
        context
            .output
            .human(&crate::report::release::detail(record));
        return Ok(Exit::Success);
    }
    let mut table = Table::new([
        "RELEASE", "OUTCOME", "WHO", "STARTED", "DURATION", "CHANGES",
    ]);
    for record in &records {
        context
            .output
            .event(json!({"event": "release", "record": record}));
        table.row(row(record));
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

fn row(record: &ReleaseRecord) -> [String; 6] {
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
            let from = c.from.as_deref().unwrap_or("∅");
            format!("{} {from}→{}", c.service, c.to)
        })
        .collect();
    let duration = record
        .duration()
        .map(|d| crate::report::elapsed(d.unsigned_abs()))
        .unwrap_or_default();
    [
        record.number.to_string(),
        outcome.to_string(),
        record.who.to_string(),
        record.started.to_string(),
        duration,
        changes.join(", "),
    ]
}

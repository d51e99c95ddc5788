//! A release for people: one paragraph with its number, outcome, and what to do if it needs
//! attention.

use crate::execute::{Outcome, ReleaseRecord, StepEvent};

pub fn describe(record: &ReleaseRecord) -> String {
    let env = &record.environment;
    let mut text = match &record.outcome {
        Outcome::Succeeded => format!("release {} of {env} succeeded", record.number),
        Outcome::InProgress => format!(
            "release {} of {env} is unfinished: `convoy deploy --env {env} --resume` continues it, `convoy rollback --env {env}` reverts it",
            record.number
        ),
        Outcome::RolledBack { reason } => format!(
            "release {} of {env} failed and was rolled back: {reason}",
            record.number
        ),
        Outcome::Failed { reason, left } => format!(
            "release {} of {env} FAILED and needs attention: {reason}\nnot reverted: {}",
            record.number,
            left.join("; ")
        ),
    };
    if let Some(duration) = record.duration() {
        text.push_str(&format!(" ({})", super::elapsed(duration.unsigned_abs())));
    }
    text.push('\n');
    if let Some(help) = failed_step_help(record) {
        text.push_str(&format!("help: {help}\n"));
    }
    text
}

/// The `help:` of the step whose failure took the release back, if its target gave one.
fn failed_step_help(record: &ReleaseRecord) -> Option<&str> {
    if matches!(record.outcome, Outcome::Succeeded | Outcome::InProgress) {
        return None;
    }
    record
        .journal
        .iter()
        .rev()
        .find_map(|entry| match &entry.event {
            StepEvent::Failed { help, .. } => help.as_deref(),
            _ => None,
        })
}

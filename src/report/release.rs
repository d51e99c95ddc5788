//! A release for people: one paragraph with its number, outcome, and what to do if it needs
//! attention.

use crate::execute::{Outcome, ReleaseRecord};

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
    text
}

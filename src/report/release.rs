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

/// One release in detail (`convoy history --release N`): its outcome, who ran it, each service's
/// change and why, what each revision was made of, and how long each step took.
pub fn detail(record: &ReleaseRecord) -> String {
    use std::fmt::Write;
    let mut text = describe(record);
    let _ = writeln!(text, "by {} at {}", record.who, record.started);
    for change in &record.plan.changes {
        let from = change.from.as_deref().unwrap_or("(new)");
        let _ = writeln!(text, "\n{}  {from} → {}", change.service, change.to);
        for reason in &change.reasons {
            let _ = writeln!(text, "  {reason}");
        }
        if let Some(revision) = record.revisions.get(&change.service) {
            let dirty = if revision.dirty {
                " (dirty work tree)"
            } else {
                ""
            };
            let _ = writeln!(
                text,
                "  artifact {} · commit {}{dirty} · config {}",
                revision.version,
                short(&revision.commit),
                short(&revision.digest)
            );
            for flag in &revision.sets {
                let _ = writeln!(text, "  --set {flag}");
            }
            for (object, digest) in &revision.objects {
                let _ = writeln!(text, "  {object} {}", short(digest));
            }
        }
    }
    let steps = step_durations(record);
    if !steps.is_empty() {
        let _ = writeln!(text, "\nsteps:");
        for (step, line) in steps {
            let _ = writeln!(text, "  #{:<3} {line}", step.0);
        }
    }
    text
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Each journaled step of the deploy plan: service, action and how it ended, with its duration.
fn step_durations(record: &ReleaseRecord) -> Vec<(crate::plan::StepId, String)> {
    let mut lines = Vec::new();
    for step in &record.plan.steps {
        let entries = record.journal.iter().filter(|e| e.step == step.id);
        let started = entries.clone().find(|e| e.event == StepEvent::Started);
        let ended = entries.clone().rev().find(|e| {
            matches!(
                e.event,
                StepEvent::Succeeded | StepEvent::Failed { .. } | StepEvent::Deferred
            )
        });
        let Some(ended) = ended else { continue };
        let how = match &ended.event {
            StepEvent::Succeeded => "ok".to_string(),
            StepEvent::Failed { error, .. } => format!("failed: {error}"),
            _ => "deferred".to_string(),
        };
        let took = started
            .and_then(|s| ended.at.duration_since(s.at).try_into().ok())
            .map(|d| format!(" in {}", super::elapsed(d)))
            .unwrap_or_default();
        let line = format!("{:<12} {} — {how}{took}", step.service, step.action);
        lines.push((step.id, line));
    }
    lines
}

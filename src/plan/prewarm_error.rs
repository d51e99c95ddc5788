//! What a prewarm request can get wrong, each naming the flag and what to write instead.

use crate::diagnostic::Diagnose;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrewarmError {
    #[error("--at {at} is in the past (now is {now})")]
    InThePast { at: String, now: String },
    #[error("{flag} {value} is out of range: {rule}")]
    OutOfRange {
        flag: &'static str,
        value: String,
        rule: String,
    },
    #[error("service `{service}` has no live version in `{environment}`, so nothing to prewarm")]
    NotLive {
        service: String,
        environment: String,
    },
    #[error("service `{service}` is both prewarmed and paused (--pause)")]
    PausedAndRaised { service: String },
    #[error("no service to prewarm: every named service is background work")]
    NothingToRaise,
    #[error("no prewarm window `{id}` in `{environment}`")]
    UnknownWindow { id: String, environment: String },
    #[error("{group}: {detail}")]
    ScheduledActions { group: String, detail: String },
}

impl Diagnose for PrewarmError {
    fn help(&self) -> Option<String> {
        Some(match self {
            PrewarmError::InThePast { .. } => {
                "give a future --at, or `--now` to raise capacity at once".to_string()
            }
            PrewarmError::OutOfRange { .. } => "see `convoy prewarm --help`".to_string(),
            PrewarmError::NotLive { environment, .. } => format!(
                "deploy it first (`convoy deploy --env {environment}`), or leave it out of the services named"
            ),
            PrewarmError::PausedAndRaised { .. } => {
                "name it either as a service to prewarm or with --pause, not both".to_string()
            }
            PrewarmError::NothingToRaise => {
                "name a request-path service, or leave the service list empty for all of them"
                    .to_string()
            }
            PrewarmError::UnknownWindow { environment, .. } => {
                format!("`convoy prewarm list --env {environment}` shows the windows and their ids")
            }
            PrewarmError::ScheduledActions { .. } => {
                "use fewer or longer windows, or a longer --lead".to_string()
            }
        })
    }
}

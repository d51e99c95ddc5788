//! What a target must do for the executor: observe, and perform one plan step including its
//! health gate. Actions are idempotent so that a resumed release can repeat a started step.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::diagnostic::Diagnose;
use crate::plan::{Plan, ServiceState, Step};

#[async_trait]
pub trait Target: Send + Sync {
    /// Whether traffic can be split between two versions (canary steps); if not, one switch.
    fn weighted_traffic(&self) -> bool;

    /// The live and warm versions of these services.
    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetError>;

    /// Checks, changing nothing, that every step of a new release's `plan` can be applied
    /// (e.g. a server-side dry run); called before the release is recorded.
    async fn preflight(&self, plan: &Plan, release: u64) -> Result<(), TargetError> {
        let _ = (plan, release);
        Ok(())
    }

    /// Performs `step` and waits until its health gate passes (or fails).
    async fn apply(&self, step: &Step) -> Result<(), TargetError>;

    /// After a bake: is `version` of `service` still healthy?
    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError>;

    /// The API calls `step` makes, for `convoy plan` where calls are a budget (AWS's request
    /// buckets are shared per account and region); empty where nobody needs to know.
    fn calls(&self, step: &Step) -> Vec<String> {
        let _ = step;
        Vec::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{service} {version} is unhealthy: {detail}")]
    Unhealthy {
        service: String,
        version: String,
        detail: String,
    },
    #[error("{service}: {action} failed: {detail}")]
    Action {
        service: String,
        action: String,
        detail: String,
    },
    /// A target kind's own error, kept whole so that its diagnosis (the `help:` line) survives
    /// the executor, the journal and the report.
    #[error("{service}: {action} failed: {source}")]
    Failed {
        service: String,
        action: String,
        #[source]
        source: Cause,
    },
    #[error("{service}: cannot {action} {}", path.display())]
    Io {
        service: String,
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TargetError {
    /// `error` of `service`'s `action`, with its diagnosis.
    pub fn failed<E>(service: &str, action: &str, error: E) -> Self
    where
        E: Diagnose + Send + Sync + 'static,
    {
        TargetError::Failed {
            service: service.to_string(),
            action: action.to_string(),
            source: Cause(Box::new(error)),
        }
    }
}

impl Diagnose for TargetError {
    fn help(&self) -> Option<String> {
        match self {
            TargetError::Failed { source, .. } => source.0.help(),
            TargetError::Unhealthy { .. } | TargetError::Action { .. } | TargetError::Io { .. } => {
                None
            }
        }
    }
}

/// A target kind's error behind the executor's seam: its message, sources and help.
pub struct Cause(Box<dyn Diagnose + Send + Sync>);

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

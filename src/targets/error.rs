//! What opening or using an environment's target can go wrong with: each kind's own error, the
//! configuration and values it resolves, its state (records, lock), and operations a kind does
//! not offer. Every variant keeps its diagnosis, so the `help:` line reaches the user.

use crate::artifacts::ArtifactError;
use crate::config::ConfigErrors;
use crate::diagnostic::Diagnose;
use crate::execute::{LockError, ReleaseError};
use crate::plan::prewarm::PrewarmError;
use crate::render::RenderErrors;
use crate::targets::aws::AwsError;
use crate::targets::kubernetes::KubeError;

#[derive(Debug, thiserror::Error)]
pub enum TargetsError {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// Values or secrets that do not resolve, or objects that do not render.
    #[error(transparent)]
    Render(#[from] RenderErrors),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Releases(#[from] ReleaseError),
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A prewarm that cannot be planned from what the target holds.
    #[error(transparent)]
    Prewarm(#[from] PrewarmError),
    #[error("the prewarm schedule in {location} cannot be read: {detail}")]
    CorruptSchedule { location: String, detail: String },
    #[error("the prewarmed capacity was not Ready within {budget}")]
    NotReady { budget: String },
    #[error("the {kind} target of environment `{environment}` cannot {operation}")]
    Unsupported {
        kind: &'static str,
        environment: String,
        operation: Operation,
    },
}

/// What a target kind may not offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Diff,
    Prewarm,
    Flags,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Diff => "diff",
            Operation::Prewarm => "prewarm",
            Operation::Flags => "flags",
        })
    }
}

/// How serious an error is for the process's exit code: nothing was touched (usage), or an
/// operation failed part way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Bad input or configuration: nothing was changed.
    Usage,
    /// The target refused or failed an operation.
    Failed,
    /// State that needs a person: records or the lock could not be written.
    NeedsAttention,
    /// Someone else holds the environment.
    Locked,
}

impl TargetsError {
    pub fn severity(&self) -> Severity {
        match self {
            TargetsError::Config(_)
            | TargetsError::Render(_)
            | TargetsError::Prewarm(_)
            | TargetsError::CorruptSchedule { .. }
            | TargetsError::Unsupported { .. }
            | TargetsError::Aws(_) => Severity::Usage,
            TargetsError::Kube(KubeError::Config { .. } | KubeError::Object { .. }) => {
                Severity::Usage
            }
            TargetsError::Kube(_) | TargetsError::NotReady { .. } => Severity::Failed,
            TargetsError::Artifact(error) if error.is_usage() => Severity::Usage,
            TargetsError::Artifact(_) => Severity::Failed,
            TargetsError::Releases(_) => Severity::NeedsAttention,
            TargetsError::Lock(LockError::Held { .. }) => Severity::Locked,
            TargetsError::Lock(_) => Severity::NeedsAttention,
        }
    }

    /// The individual problems to show, each with its location and help.
    pub fn diagnostics(&self) -> Vec<&dyn Diagnose> {
        match self {
            TargetsError::Config(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            TargetsError::Render(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            TargetsError::Kube(error) => vec![error],
            TargetsError::Aws(error) => vec![error],
            TargetsError::Artifact(error) => vec![error],
            TargetsError::Lock(error) => vec![error],
            TargetsError::Prewarm(error) => vec![error],
            TargetsError::Releases(_) => Vec::new(),
            TargetsError::CorruptSchedule { .. }
            | TargetsError::NotReady { .. }
            | TargetsError::Unsupported { .. } => vec![self],
        }
    }
}

impl Diagnose for TargetsError {
    fn help(&self) -> Option<String> {
        match self {
            TargetsError::CorruptSchedule { location, .. } => Some(format!(
                "fix its `schedule.json`, or delete {location} to drop every window (then restore any raised capacity by hand)"
            )),
            TargetsError::NotReady { .. } => Some("the window is stored and stays raised; `convoy status` shows which services lack Ready replicas (look for pending pods: quota, node capacity)".to_string()),
            TargetsError::Unsupported { operation: Operation::Diff, .. } => Some(
                "`convoy diff` compares with a cluster, so it needs a kubernetes environment; `convoy plan` shows what a deploy would change on every target".to_string(),
            ),
            TargetsError::Unsupported { operation: Operation::Prewarm, .. } => Some(
                "prewarm works on kubernetes and aws environments; a host environment's capacity is its machines".to_string(),
            ),
            TargetsError::Unsupported { operation: Operation::Flags, .. } => Some(
                "live flags are kept by host environments so far".to_string(),
            ),
            TargetsError::Config(_) | TargetsError::Render(_) => None,
            TargetsError::Kube(error) => error.help(),
            TargetsError::Aws(error) => error.help(),
            TargetsError::Artifact(error) => error.help(),
            TargetsError::Lock(error) => error.help(),
            TargetsError::Prewarm(error) => error.help(),
            TargetsError::Releases(_) => None,
        }
    }
}

//! The top-level error and the process exit codes of DESIGN.md.

use crate::artifacts::ArtifactError;
use crate::build::BuildError;
use crate::config::ConfigErrors;
use crate::diagnostic::Diagnose;
use crate::render::RenderErrors;
use crate::targets::{Severity, TargetsError};

/// How the process ends. The numbers are part of Convoy's interface: CI scripts branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Success = 0,
    /// A deploy failed and was rolled back cleanly (also: `diff` found differences).
    Failed = 1,
    /// Usage or configuration error; nothing was touched.
    Usage = 2,
    /// Failed and needs attention: a rollback did not complete.
    NeedsAttention = 3,
    /// The environment is locked by someone else.
    Locked = 4,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}

/// Every error that reaches the user. Each module contributes its own enum; only the
/// operations (`ops`) and the command line return this one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Render(#[from] RenderErrors),
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Targets(#[from] TargetsError),
    #[error(transparent)]
    At(#[from] crate::ops::prewarm_at::AtError),
    #[error(transparent)]
    Releases(#[from] crate::execute::ReleaseError),
    #[error(transparent)]
    Lock(#[from] crate::execute::LockError),
    /// Nothing could be built: bad ref, unknown service, unsafe `output`, no repository.
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// Some recipes failed (each was reported); the others were built and published.
    #[error("{} of {total} service(s) failed to build: {}", failed.len(), failed.join(", "))]
    BuildsFailed { failed: Vec<String>, total: usize },
    #[error(transparent)]
    Session(#[from] crate::execute::SessionError),
    #[error(transparent)]
    Flags(#[from] crate::execute::FlagError),
    #[error("environment `{environment}` is protected and there is no terminal to ask")]
    Protected { environment: String },
    /// A second Ctrl-C: stopped at once, the journal left as it was.
    #[error("stopped; the release of `{environment}` is unfinished")]
    Stopped { environment: String },
    #[error(transparent)]
    Task(#[from] crate::ops::task::TaskRunError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A rollback's revision no longer runs and cannot be made again exactly as it ran.
    #[error(
        "cannot re-create revision {revision} of `{service}` from its record (commit {commit}): {reason}"
    )]
    Recreate {
        service: String,
        revision: String,
        commit: String,
        reason: String,
    },
}

impl Error {
    pub fn exit_code(&self) -> Exit {
        use crate::execute::{LockError, SessionError};
        match self {
            Error::Config(_) | Error::Render(_) | Error::Output(_) | Error::At(_) => Exit::Usage,
            Error::Targets(error) => match error.severity() {
                Severity::Usage => Exit::Usage,
                Severity::Failed => Exit::Failed,
                Severity::NeedsAttention => Exit::NeedsAttention,
                Severity::Locked => Exit::Locked,
            },
            Error::Releases(_) | Error::Stopped { .. } => Exit::NeedsAttention,
            Error::Protected { .. } => Exit::Usage,
            Error::Session(SessionError::Lock(LockError::Held { .. })) => Exit::Locked,
            Error::Session(
                SessionError::NothingToResume { .. }
                | SessionError::NothingToRollBack { .. }
                | SessionError::Interrupted
                | SessionError::ValuesChanged { .. }
                | SessionError::Preflight { .. },
            ) => Exit::Usage,
            Error::Session(_) => Exit::NeedsAttention,
            Error::Lock(LockError::Held { .. }) => Exit::Locked,
            Error::Lock(_) => Exit::NeedsAttention,
            Error::Build(BuildError::Artifact(error)) | Error::Artifact(error) => {
                artifact_exit(error)
            }
            Error::Build(BuildError::RecipeFailed { .. }) | Error::BuildsFailed { .. } => {
                Exit::Failed
            }
            Error::Build(_) => Exit::Usage,
            Error::Runtime(_) => Exit::Failed,
            Error::Recreate { .. } => Exit::Usage,
            Error::Flags(crate::execute::FlagError::BadArgument { .. }) => Exit::Usage,
            // Someone else wrote meanwhile: like a held lock, another party's doing.
            Error::Flags(crate::execute::FlagError::Stale { .. }) => Exit::Locked,
            Error::Flags(_) => Exit::Failed,
            Error::Task(error) => error.exit(),
        }
    }

    /// The individual problems to show, each with its location and help.
    pub fn diagnostics(&self) -> Vec<&dyn Diagnose> {
        match self {
            Error::Config(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            Error::Render(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            Error::Targets(error) => error.diagnostics(),
            Error::At(error) => vec![error],
            Error::Lock(error) => vec![error],
            Error::Flags(error) => vec![error],
            Error::Task(error) => vec![error],
            Error::Session(error) => vec![error],
            Error::Protected { .. } | Error::Stopped { .. } | Error::Recreate { .. } => vec![self],
            Error::Build(error) => vec![error],
            Error::Artifact(error) => vec![error],
            Error::Output(_)
            | Error::Releases(_)
            | Error::BuildsFailed { .. }
            | Error::Runtime(_) => Vec::new(),
        }
    }
}

/// One artifact error, one exit code, however it reached the top: a store named wrongly is
/// usage; anything else failed.
fn artifact_exit(error: &ArtifactError) -> Exit {
    if error.is_usage() {
        Exit::Usage
    } else {
        Exit::Failed
    }
}

impl Diagnose for Error {
    fn help(&self) -> Option<String> {
        match self {
            Error::Protected { .. } => {
                Some("pass `--yes` to confirm from a script or CI job".to_string())
            }
            Error::Stopped { environment } => Some(format!(
                "`convoy deploy --env {environment} --resume` or `convoy rollback --env {environment}` continues from the journal"
            )),
            Error::Recreate { .. } => Some(
                "roll back to a release whose revisions still run (`convoy status` lists the warm ones), or deploy the configuration you want; a secret source that is gone must be restored first".to_string(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: an invalid store URL exited 2 from `convoy deploy` but 1 from `convoy build`,
    /// where it arrived wrapped in a build error.
    #[test]
    fn an_invalid_store_url_is_a_usage_error_however_it_arrives() {
        let invalid = || ArtifactError::InvalidUrl {
            url: "ftp://x".into(),
            reason: "unsupported scheme",
        };
        assert_eq!(Error::Artifact(invalid()).exit_code(), Exit::Usage);
        assert_eq!(
            Error::Build(BuildError::Artifact(invalid())).exit_code(),
            Exit::Usage
        );
        let targets = Error::Targets(TargetsError::Artifact(invalid()));
        assert_eq!(targets.exit_code(), Exit::Usage);
    }
}

//! The top-level error and the process exit codes of DESIGN.md.

use crate::artifacts::ArtifactError;
use crate::build::BuildError;
use crate::config::ConfigErrors;
use crate::diagnostic::Diagnose;
use crate::render::RenderErrors;

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

/// Every error that reaches the user. Each module contributes its own enum.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Render(#[from] RenderErrors),
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Targets(#[from] crate::targets::TargetsError),
    #[error(transparent)]
    Kube(#[from] crate::targets::kubernetes::KubeError),
    #[error(transparent)]
    Prewarm(#[from] crate::plan::prewarm::PrewarmError),
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
    #[error("environment `{environment}` is protected and there is no terminal to ask")]
    Protected { environment: String },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> Exit {
        match self {
            Error::Config(_) | Error::Targets(_) | Error::Render(_) => Exit::Usage,
            Error::Output(_) => Exit::Usage,
            Error::Kube(
                crate::targets::kubernetes::KubeError::Config { .. }
                | crate::targets::kubernetes::KubeError::Object { .. },
            ) => Exit::Usage,
            Error::Kube(_) => Exit::Failed,
            Error::Prewarm(crate::plan::prewarm::PrewarmError::NotReady { .. }) => Exit::Failed,
            Error::Prewarm(_) => Exit::Usage,
            Error::Releases(_) => Exit::NeedsAttention,
            Error::Protected { .. } => Exit::Usage,
            Error::Session(crate::execute::SessionError::Lock(
                crate::execute::LockError::Held { .. },
            )) => Exit::Locked,
            Error::Session(
                crate::execute::SessionError::NothingToResume { .. }
                | crate::execute::SessionError::NothingToRollBack { .. }
                | crate::execute::SessionError::Interrupted
                | crate::execute::SessionError::ValuesChanged { .. }
                | crate::execute::SessionError::Preflight { .. },
            ) => Exit::Usage,
            Error::Session(_) => Exit::NeedsAttention,
            Error::Lock(crate::execute::LockError::Held { .. }) => Exit::Locked,
            Error::Lock(_) => Exit::NeedsAttention,
            Error::Build(BuildError::Artifact(_)) | Error::Artifact(_) => match self {
                Error::Artifact(ArtifactError::InvalidUrl { .. }) => Exit::Usage,
                _ => Exit::Failed,
            },
            Error::Build(BuildError::RecipeFailed { .. }) | Error::BuildsFailed { .. } => {
                Exit::Failed
            }
            Error::Build(_) => Exit::Usage,
            Error::Runtime(_) => Exit::Failed,
        }
    }

    /// The individual problems to show, each with its location and help.
    pub fn diagnostics(&self) -> Vec<&dyn Diagnose> {
        match self {
            Error::Config(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            Error::Targets(error) => vec![error as &dyn Diagnose],
            Error::Lock(error) => vec![error as &dyn Diagnose],
            Error::Kube(error) => vec![error as &dyn Diagnose],
            Error::Prewarm(error) => vec![error as &dyn Diagnose],
            Error::Session(error) => vec![error as &dyn Diagnose],
            Error::Protected { .. } => vec![self as &dyn Diagnose],
            Error::Build(error) => vec![error],
            Error::Artifact(error) => vec![error],
            Error::Output(_)
            | Error::Releases(_)
            | Error::BuildsFailed { .. }
            | Error::Runtime(_) => Vec::new(),
            Error::Render(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
        }
    }
}

impl Diagnose for Error {
    fn help(&self) -> Option<String> {
        match self {
            Error::Protected { .. } => {
                Some("pass `--yes` to confirm from a script or CI job".to_string())
            }
            _ => None,
        }
    }
}

//! The top-level error and the process exit codes of DESIGN.md.

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
}

impl Error {
    pub fn exit_code(&self) -> Exit {
        match self {
            Error::Config(_) => Exit::Usage,
            Error::Render(_) => Exit::Usage,
            Error::Output(_) => Exit::Usage,
        }
    }

    /// The individual problems to show, each with its location and help.
    pub fn diagnostics(&self) -> Vec<&dyn Diagnose> {
        match self {
            Error::Config(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            Error::Render(errors) => errors.iter().map(|e| e as &dyn Diagnose).collect(),
            Error::Output(_) => Vec::new(),
        }
    }
}

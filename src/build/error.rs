//! What can go wrong building: git, the recipe, the package, the store.

use std::path::PathBuf;

use crate::artifacts::ArtifactError;
use crate::diagnostic::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no git repository at or above {}", root.display())]
    NoRepository {
        root: PathBuf,
        #[source]
        source: git2::Error,
    },

    #[error("cannot resolve `{rev}` to a commit")]
    BadRevision {
        rev: String,
        #[source]
        source: git2::Error,
    },

    #[error("git failed while {action}")]
    Git {
        action: String,
        #[source]
        source: git2::Error,
    },

    #[error("service `{service}`: `{path}` does not exist at commit {commit}")]
    MissingPath {
        service: String,
        path: String,
        commit: String,
    },

    #[error("unknown service `{name}`")]
    UnknownService { name: String, known: Vec<String> },

    #[error("service `{service}`: output `{output}` is refused: {reason}")]
    BadOutput {
        service: String,
        output: String,
        reason: &'static str,
    },

    #[error("service `{service}`: `{command}` exited with {status}\n{tail}")]
    RecipeFailed {
        service: String,
        command: String,
        /// Exit code, or `signal N`.
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Artifact(#[from] ArtifactError),

    /// `artifacts.signing_key` names a key that cannot be read or is not one. The key's text
    /// never appears here.
    #[error("cannot use the artifact signing key from {source_name}: {reason}")]
    SigningKey { source_name: String, reason: String },

    #[error("build task of `{service}` ended abnormally")]
    Task {
        service: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Diagnose for BuildError {
    fn help(&self) -> Option<String> {
        use BuildError::*;
        Some(match self {
            NoRepository { .. } => "convoy builds from git: run `git init` and commit the project".to_string(),
            BadRevision { .. } => "give a branch, tag or commit that exists, e.g. `--ref HEAD~1`".to_string(),
            Git { .. } => "check the repository with `git fsck`; -v shows git's own message".to_string(),
            MissingPath { .. } => "commit the service's directory, or fix `path`/`extra_paths` in convoy.yaml".to_string(),
            UnknownService { known, .. } => format!("known services: {}", known.join(", ")),
            BadOutput { .. } => "write `output` relative to the service's directory, without `..`, e.g. `output: dist`".to_string(),
            RecipeFailed { log, .. } => format!("the whole log is in {}; run the command in the service's directory to reproduce", log.display()),
            Io { .. } => "check free disk space and permissions of the temporary directory".to_string(),
            Artifact(inner) => return inner.help(),
            SigningKey { .. } => "set `artifacts.signing_key` to `{ env: NAME }` or `{ file: PATH }` holding an ed25519 private key (64 hex digits or PKCS#8 PEM); README: Signed artifacts".to_string(),
            Task { .. } => "this is a bug in convoy; please report it with -v output".to_string(),
        })
    }
}

pub(crate) fn io(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io {
        action,
        path,
        source,
    }
}

pub(crate) fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> BuildError {
    let action = action.into();
    move |source| BuildError::Git { action, source }
}

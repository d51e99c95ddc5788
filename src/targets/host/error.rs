//! What can go wrong running versions on a host, each with what to do about it.

use crate::artifacts::ArtifactError;
use crate::diagnostic::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A hook (`prepare`, `deployed`) exited non-zero or timed out.
    #[error("{detail}")]
    Hook { which: String, detail: String },
    #[error("{version} is not on disk and no artifact store was given")]
    NoStore { version: String },
    #[error("cannot fetch {version}")]
    Fetch {
        version: String,
        #[source]
        source: ArtifactError,
    },
    #[error("cannot unpack {version}: {detail}")]
    Unpack { version: String, detail: String },
    #[error("no other version is on disk to roll back to")]
    NothingToRollBack,
    /// A release task exited non-zero or timed out; `detail` ends with its output's tail.
    #[error("{detail}")]
    Task { task: String, detail: String },
    #[error("revision {version} is not on this host, so its task `{task}` cannot run")]
    TaskWithoutRevision { task: String, version: String },
}

impl Diagnose for HostError {
    fn help(&self) -> Option<String> {
        Some(match self {
            HostError::Hook { which, .. } => format!(
                "run the {which} hook by hand in the version's directory to see why; the version that served before keeps serving"
            ),
            HostError::NoStore { .. } => {
                "pass `--store file://DIR` or `--store s3://bucket/prefix`".to_string()
            }
            HostError::Fetch { source, .. } => return source.help(),
            HostError::Unpack { .. } => {
                "the artifact is damaged or was not made by `convoy build`; build it again"
                    .to_string()
            }
            HostError::Task { task, .. } => format!(
                "run the `{task}` task by hand in the new revision's directory to see why; the release was rolled back, but what the task changed (a migration) stays: make tasks safe to run again"
            ),
            HostError::TaskWithoutRevision { .. } => {
                "deploy the revision again: a task runs on a revision the release provisioned"
                    .to_string()
            }
            HostError::NothingToRollBack => {
                "`convoy host status` lists the versions on disk; deploy the one you want"
                    .to_string()
            }
        })
    }
}

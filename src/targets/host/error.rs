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
            HostError::NothingToRollBack => {
                "`convoy host status` lists the versions on disk; deploy the one you want"
                    .to_string()
            }
        })
    }
}

//! What can go wrong reading and writing artifacts, each with what to do next.

use std::path::PathBuf;

use crate::diagnostic::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("invalid artifact store `{url}`: {reason}")]
    InvalidUrl { url: String, reason: &'static str },

    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("corrupted artifact {location}: expected sha256 {expected}, found {actual}")]
    Corrupted {
        location: String,
        expected: String,
        actual: String,
    },

    #[error("malformed meta.json at {location}")]
    BadMeta {
        location: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("no artifact {service} {version} in {store}")]
    NotFound {
        service: String,
        version: String,
        store: String,
    },

    #[error(
        "artifact {service} {version} already exists in the store with key {existing}, not {wanted}"
    )]
    KeyConflict {
        service: String,
        version: String,
        existing: String,
        wanted: String,
    },

    #[error(transparent)]
    S3(#[from] super::bucket::ObjectError),

    /// The store refused our `meta.json` because one existed, which was gone when read back
    /// (a concurrent `convoy artifacts gc`).
    #[error("meta.json of {service} {version} in {store} vanished while publishing")]
    Vanished {
        service: String,
        version: String,
        store: String,
    },

    #[error("unsafe entry `{entry}` in {}: {reason}", archive.display())]
    UnsafeEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },

    /// The archive is over one of `artifacts.limits`.
    #[error("artifact {} is too large: {detail} (`artifacts.limits.{limit}`)", archive.display())]
    TooLarge {
        archive: PathBuf,
        limit: &'static str,
        detail: String,
    },

    /// A signature is required (`artifacts.verify_keys`) and this artifact's does not hold.
    #[error("artifact {service} {version} ({location}) is not trusted: {reason}")]
    Untrusted {
        location: String,
        service: String,
        version: String,
        reason: String,
    },

    /// A key given to `convoy host deploy --verify-key` is not an ed25519 public key.
    #[error("invalid verify key `{key}`: {reason}")]
    BadVerifyKey { key: String, reason: String },

    /// The tarball is not the one the release recorded (or `--sha256` named).
    #[error(
        "artifact {service} {version} is not the one {pinned_by} names: expected sha256 {expected}, found {actual}"
    )]
    NotAsPinned {
        service: String,
        version: String,
        pinned_by: String,
        expected: String,
        actual: String,
    },

    /// Not a readable tar.gz: bad gzip, a bad header checksum, a truncated entry.
    #[error("malformed archive {} at entry #{entry}", archive.display())]
    Malformed {
        archive: PathBuf,
        entry: usize,
        #[source]
        source: std::io::Error,
    },
}

impl ArtifactError {
    /// Whether the store was named wrongly (bad input, nothing touched) rather than failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ArtifactError::InvalidUrl { .. } | ArtifactError::BadVerifyKey { .. }
        )
    }
}

impl Diagnose for ArtifactError {
    fn help(&self) -> Option<String> {
        use ArtifactError::*;
        Some(match self {
            InvalidUrl { .. } => "use `file://DIR` (relative to the project root) or `s3://bucket/prefix` in `artifacts.store`".to_string(),
            Io { .. } => "check that the path exists, is writable and the disk is not full".to_string(),
            Corrupted { .. } => "delete that artifact (`convoy artifacts gc` or by hand) and run `convoy build` again".to_string(),
            BadMeta { .. } => "the store was written by something else or damaged; delete that version and rebuild".to_string(),
            NotFound { service, .. } => format!("`convoy artifacts list {service}` shows the versions there are; `convoy build {service}` makes one"),
            KeyConflict { .. } => "the project's recipe or history changed under an existing version; delete that version and build again".to_string(),
            S3 { .. } => "check AWS_ENDPOINT_URL, AWS_REGION and credentials, and that the bucket exists; -v shows the whole cause".to_string(),
            Vanished { .. } => "another run deleted it meanwhile (`convoy artifacts gc`?); build again".to_string(),
            UnsafeEntry { .. } => "the archive was not made by `convoy build`; do not deploy it".to_string(),
            Untrusted { .. } => "deploy only artifacts built with `artifacts.signing_key` set to a key whose public half is in `artifacts.verify_keys`; if meta.json was changed, rebuild the version (README: Signed artifacts)".to_string(),
            BadVerifyKey { .. } => "give 64 hex digits (the public key) or the path of a PEM public key (`openssl pkey -pubout`)".to_string(),
            NotAsPinned { .. } => "the store's copy was replaced after it was first deployed; do not deploy it — find out who wrote to the store, then rebuild the version".to_string(),
            TooLarge { limit, .. } => format!("if the artifact really is that large, raise `artifacts.limits.{limit}` in convoy.yaml; otherwise check what the build packs (`output:`)"),
            Malformed { .. } => "the archive is damaged or was not made by `convoy build`; build it again".to_string(),
        })
    }
}

/// Shorthand for I/O errors that name the path and what was being done.
pub(crate) fn io(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let path = path.to_path_buf();
    move |source| ArtifactError::Io {
        action,
        path,
        source,
    }
}

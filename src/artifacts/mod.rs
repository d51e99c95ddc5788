//! Artifact stores: where built artifacts and their `meta.json` live (local directory or S3).
//!
//! Layout, in both stores: `<service>/<version>/meta.json`, the tarball
//! `<service>/<version>/<service>-<sha256>.tar.gz` and the recipe's `build.log`. `meta.json` is
//! written last and only if absent: it is the commit point, so a reader never sees a version
//! whose tarball is missing or belongs to another build.

pub mod bucket;
mod error;
mod gc;
pub mod limits;
mod local;
mod meta;
mod s3;
pub mod signing;
#[cfg(test)]
mod suite;
pub mod trust;
mod unpack;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

pub use error::ArtifactError;
pub use gc::{GcReport, gc};
pub use limits::UnpackLimits;
pub use local::LocalStore;
pub use meta::{ArtifactMeta, hash_file, verify};
pub use s3::S3Store;
pub use signing::{ArtifactSigner, VerifyKeys};
pub use trust::{ArtifactDigest, ArtifactPins, ArtifactTrust, PinSource};
pub use unpack::{reserved, unpack, unpack_with};

/// What [`ArtifactStore::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Our meta.json is now the version's.
    Stored(ArtifactMeta),
    /// Someone published the same key first; theirs stays and is returned.
    AlreadyPresent(ArtifactMeta),
}

impl Published {
    /// Someone published `existing` first: fine when it has our key (same inputs, same bytes),
    /// a conflict otherwise. Every store applies this one rule.
    pub(crate) fn already_present(
        existing: ArtifactMeta,
        ours: &ArtifactMeta,
    ) -> Result<Published, ArtifactError> {
        if existing.key != ours.key {
            return Err(ArtifactError::KeyConflict {
                service: ours.service.clone(),
                version: ours.version.clone(),
                existing: existing.key,
                wanted: ours.key.clone(),
            });
        }
        Ok(Published::AlreadyPresent(existing))
    }

    pub fn meta(&self) -> &ArtifactMeta {
        match self {
            Published::Stored(meta) | Published::AlreadyPresent(meta) => meta,
        }
    }
}

/// A place that keeps artifacts. Implementations make `publish` atomic: concurrent publishers
/// of one version never leave a half-written or mismatched artifact.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// The version's metadata, or `None` when it has not been published.
    async fn meta(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<ArtifactMeta>, ArtifactError>;

    /// Writes the version's tarball to `dest_file` after checking its sha256 against meta.json.
    async fn fetch(
        &self,
        service: &str,
        version: &str,
        dest_file: &Path,
    ) -> Result<ArtifactMeta, ArtifactError>;

    /// Stores `tarball` (whose hash and size `meta` already records) and the optional build
    /// log, then meta.json last. Publishing an existing version with the same key is not an
    /// error: the first one wins.
    async fn publish(
        &self,
        meta: &ArtifactMeta,
        tarball: &Path,
        log: Option<&Path>,
    ) -> Result<Published, ArtifactError>;

    /// Published artifacts, optionally of one service, ordered by service then age (oldest first).
    async fn list(&self, service: Option<&str>) -> Result<Vec<ArtifactMeta>, ArtifactError>;

    /// Removes a version: meta.json first (so it stops existing at once), then its files.
    async fn delete(&self, service: &str, version: &str) -> Result<(), ArtifactError>;

    /// Where this store is, for messages: `file:///abs/dir` or `s3://bucket/prefix`.
    fn describe(&self) -> String;
}

/// Opens the store named by `url`: `file://DIR` (relative to `project_root`) or
/// `s3://bucket/prefix` (AWS settings from the standard environment; path-style addressing
/// when `AWS_ENDPOINT_URL` is set, for S3-compatible servers).
pub async fn open(url: &str, project_root: &Path) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
    if let Some(dir) = url.strip_prefix("file://") {
        if dir.is_empty() {
            return Err(invalid(url, "the directory is empty"));
        }
        let dir = Path::new(dir);
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            project_root.join(dir)
        };
        return Ok(Arc::new(LocalStore::new(dir)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(url, "the bucket is empty"));
        }
        return Ok(Arc::new(S3Store::from_env(bucket, prefix).await));
    }
    Err(invalid(url, "it starts with neither file:// nor s3://"))
}

fn invalid(url: &str, reason: &'static str) -> ArtifactError {
    ArtifactError::InvalidUrl {
        url: url.to_string(),
        reason,
    }
}

/// Orders artifacts by service, then commit time, then build time: oldest first.
pub(crate) fn sort(list: &mut [ArtifactMeta]) {
    list.sort_by(|a, b| {
        (&a.service, a.commit_time, a.build_time, &a.version).cmp(&(
            &b.service,
            b.commit_time,
            b.build_time,
            &b.version,
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relative_file_urls_are_taken_from_the_project_root() {
        let store = open("file://.convoy/artifacts", Path::new("/srv/shop"))
            .await
            .unwrap();
        assert_eq!(store.describe(), "file:///srv/shop/.convoy/artifacts");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        let error = open("ftp://x", Path::new("/")).await.err().unwrap();
        assert!(matches!(error, ArtifactError::InvalidUrl { .. }), "{error}");
    }
}

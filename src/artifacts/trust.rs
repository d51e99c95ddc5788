//! What a target checks about an artifact before it unpacks it, beyond the store's own sha256:
//! the signature over `meta.json` (when keys are configured), the sha256 pinned for the version
//! by a release record or a deploy (so the store alone cannot swap an artifact), and the limits
//! on its unpacked size.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::error::ArtifactError;
use super::limits::UnpackLimits;
use super::meta::{ArtifactMeta, hash_file};
use super::signing::VerifyKeys;

/// An artifact's identity as a release record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactDigest {
    pub version: String,
    /// sha256 of the tar.gz, lowercase hex.
    pub sha256: String,
    pub size: u64,
    /// The key that signed its meta.json, when signatures are required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl ArtifactDigest {
    pub fn of(meta: &ArtifactMeta, signed_by: Option<String>) -> Self {
        ArtifactDigest {
            version: meta.version.clone(),
            sha256: meta.sha256.clone(),
            size: meta.size,
            signed_by,
        }
    }
}

/// Who vouches for a pinned digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A release record: what was actually released. Outranks the store.
    Release(u64),
    /// The store's meta.json, read (and its signature checked) by this deploy.
    Store,
    /// The `--sha256` an EC2 instance's user data gives its agent: the deployer's pin, carried
    /// to the instance.
    UserData,
}

impl std::fmt::Display for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinSource::Release(number) => write!(f, "release {number}"),
            PinSource::Store => f.write_str("the store's meta.json at deploy"),
            PinSource::UserData => f.write_str("the instance's user data"),
        }
    }
}

type Pins = BTreeMap<(String, String), (ArtifactDigest, PinSource)>;

/// The digest each (service, version) must have, and who said so. Shared between whoever learns
/// digests (a deploy, release records read back) and the target that fetches; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ArtifactPins {
    pins: Arc<Mutex<Pins>>,
}

impl ArtifactPins {
    /// Pins `service`'s `digest`. A release record's pin replaces the store's, and the first
    /// release's stays: a later, different digest for a released version is exactly what
    /// pinning guards against.
    pub fn pin(&self, service: &str, digest: &ArtifactDigest, by: PinSource) {
        let Ok(mut pins) = self.pins.lock() else {
            return;
        };
        let key = (service.to_string(), digest.version.clone());
        match pins.get(&key) {
            Some((_, PinSource::Release(_))) => {}
            Some((_, PinSource::Store)) if by == PinSource::Store => {}
            _ => {
                pins.insert(key, (digest.clone(), by));
            }
        }
    }

    /// The pinned digest of `service` `version` and who pinned it.
    pub fn get(&self, service: &str, version: &str) -> Option<(ArtifactDigest, PinSource)> {
        let pins = self.pins.lock().ok()?;
        pins.get(&(service.to_string(), version.to_string()))
            .cloned()
    }
}

/// Everything a target checks before unpacking; the default checks only the limits.
#[derive(Debug, Clone, Default)]
pub struct ArtifactTrust {
    pub limits: UnpackLimits,
    pub keys: VerifyKeys,
    pub pins: ArtifactPins,
}

impl ArtifactTrust {
    /// Checks `meta` (fetched with `tarball` as `service` `version`): its signature when keys
    /// are set, then the tarball's own bytes against the pin of what was asked for, when there
    /// is one — by the names asked for, not those in `meta`, which whoever can write the
    /// store can write too.
    pub fn check(
        &self,
        (service, version): (&str, &str),
        meta: &ArtifactMeta,
        tarball: &Path,
    ) -> Result<(), ArtifactError> {
        if !self.keys.is_empty() {
            self.keys.verify(meta, &tarball.display().to_string())?;
        }
        let Some((pinned, by)) = self.pins.get(service, version) else {
            return Ok(());
        };
        let (actual, _) = hash_file(tarball)?;
        if actual != pinned.sha256 {
            return Err(ArtifactError::NotAsPinned {
                service: service.to_string(),
                version: version.to_string(),
                pinned_by: by.to_string(),
                expected: pinned.sha256,
                actual,
            });
        }
        Ok(())
    }

    /// Pins `meta` as this deploy's (unless a release already pinned its version), its
    /// signature checked first when keys are set.
    pub fn pin_from_store(&self, meta: &ArtifactMeta, location: &str) -> Result<(), ArtifactError> {
        let signed_by = match self.keys.is_empty() {
            true => None,
            false => Some(self.keys.verify(meta, location)?),
        };
        let digest = ArtifactDigest::of(meta, signed_by);
        self.pins.pin(&meta.service, &digest, PinSource::Store);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(sha: &str) -> ArtifactDigest {
        ArtifactDigest {
            version: "v1".into(),
            sha256: sha.into(),
            size: 1,
            signed_by: None,
        }
    }

    #[test]
    fn a_release_pin_outranks_the_store_and_the_first_release_stays() {
        let pins = ArtifactPins::default();
        pins.pin("api", &digest("store"), PinSource::Store);
        pins.pin("api", &digest("r3"), PinSource::Release(3));
        pins.pin("api", &digest("store again"), PinSource::Store);
        pins.pin("api", &digest("r2"), PinSource::Release(2));
        let (pinned, by) = pins.get("api", "v1").unwrap();
        assert_eq!((pinned.sha256.as_str(), by), ("r3", PinSource::Release(3)));
    }

    #[test]
    fn a_tarball_that_differs_from_its_pin_is_refused_naming_the_release() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("a.tar.gz");
        std::fs::write(&tarball, b"swapped").unwrap();
        let (sha256, size) = hash_file(&tarball).unwrap();
        let trust = ArtifactTrust::default();
        trust
            .pins
            .pin("api", &digest(&"0".repeat(64)), PinSource::Release(7));
        let meta = ArtifactMeta {
            service: "api".into(),
            version: "v1".into(),
            commit: "c".into(),
            tree: "t".into(),
            key: "k".into(),
            author: "a".into(),
            message: "m".into(),
            commit_time: jiff::Timestamp::UNIX_EPOCH,
            build_time: jiff::Timestamp::UNIX_EPOCH,
            build_duration_ms: 0,
            size,
            sha256,
            signature: None,
        };
        let error = trust.check(("api", "v1"), &meta, &tarball);
        let error = error.unwrap_err().to_string();
        assert!(error.contains("not the one release 7 names"), "{error}");
        // A meta.json that names another version does not escape the pin of the one asked for.
        let lying = ArtifactMeta {
            version: "v2".into(),
            ..meta.clone()
        };
        assert!(trust.check(("api", "v1"), &lying, &tarball).is_err());
        trust.check(("api", "v2"), &lying, &tarball).unwrap();
    }
}

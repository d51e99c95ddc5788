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

/// The sha256 each (service, version) must have, and who said so. Shared between whoever learns
/// digests (a deploy, release records read back) and the target that fetches; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ArtifactPins {
    pins: Arc<Mutex<BTreeMap<(String, String), (String, String)>>>,
}

impl ArtifactPins {
    /// Pins `service`'s `digest`, as said by `by` (e.g. "release 12"). The first pin of a
    /// version wins: a later, different digest for it is exactly what pinning guards against.
    pub fn pin(&self, service: &str, digest: &ArtifactDigest, by: &str) {
        if let Ok(mut pins) = self.pins.lock() {
            pins.entry((service.to_string(), digest.version.clone()))
                .or_insert_with(|| (digest.sha256.clone(), by.to_string()));
        }
    }

    /// The pinned sha256 of `service` `version` and who pinned it.
    pub fn get(&self, service: &str, version: &str) -> Option<(String, String)> {
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
    /// Checks `meta` (fetched with `tarball`): its signature when keys are set, then the
    /// tarball's own bytes against the pin, when there is one.
    pub fn check(&self, meta: &ArtifactMeta, tarball: &Path) -> Result<(), ArtifactError> {
        if !self.keys.is_empty() {
            self.keys.verify(meta, &tarball.display().to_string())?;
        }
        let Some((expected, pinned_by)) = self.pins.get(&meta.service, &meta.version) else {
            return Ok(());
        };
        let (actual, _) = hash_file(tarball)?;
        if actual != expected {
            return Err(ArtifactError::NotAsPinned {
                service: meta.service.clone(),
                version: meta.version.clone(),
                pinned_by,
                expected,
                actual,
            });
        }
        Ok(())
    }

    /// The digest a release records for `meta`: its signature checked first when keys are set.
    pub fn digest(
        &self,
        meta: &ArtifactMeta,
        location: &str,
    ) -> Result<ArtifactDigest, ArtifactError> {
        let signed_by = match self.keys.is_empty() {
            true => None,
            false => Some(self.keys.verify(meta, location)?),
        };
        Ok(ArtifactDigest::of(meta, signed_by))
    }
}

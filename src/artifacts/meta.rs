//! `meta.json`: what an artifact is, where it came from, and the hash that proves its bytes.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ArtifactError, io};

/// Everything known about one built artifact; stored as `meta.json` beside the tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    pub service: String,
    pub version: String,
    /// The commit built (the newest one asked for; `version` names the oldest with this key).
    pub commit: String,
    /// The service's sub-tree id at `commit`.
    pub tree: String,
    /// Cache key: sha256 of the service's tree ids and its recipe.
    pub key: String,
    pub author: String,
    pub message: String,
    pub commit_time: jiff::Timestamp,
    pub build_time: jiff::Timestamp,
    pub build_duration_ms: u64,
    /// Size of the tar.gz in bytes.
    pub size: u64,
    /// sha256 of the tar.gz, lowercase hex.
    pub sha256: String,
    /// Made at build when `artifacts.signing_key` is set; covers every other field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<super::signing::MetaSignature>,
}

impl ArtifactMeta {
    /// The tarball's file name inside the version's directory. Content-addressed, so two
    /// concurrent publishers never overwrite each other's bytes under one name.
    pub fn tarball_name(&self) -> String {
        format!("{}-{}.tar.gz", self.service, &self.sha256)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("meta serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn from_json(bytes: &[u8], location: &str) -> Result<Self, ArtifactError> {
        serde_json::from_slice(bytes).map_err(|source| ArtifactError::BadMeta {
            location: location.to_string(),
            source,
        })
    }
}

/// sha256 and size of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(String, u64), ArtifactError> {
    let mut file = std::fs::File::open(path).map_err(io("read", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(io("read", path))?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Fails with [`ArtifactError::Corrupted`] unless `path` hashes to `meta.sha256`.
pub fn verify(path: &Path, meta: &ArtifactMeta, location: &str) -> Result<(), ArtifactError> {
    let (actual, _) = hash_file(path)?;
    if actual != meta.sha256 {
        return Err(ArtifactError::Corrupted {
            location: location.to_string(),
            expected: meta.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

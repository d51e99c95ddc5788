//! An AWS environment's state in the artifact store's bucket, so any runner can continue:
//! `<prefix>/.convoy/<env>/lock.json` (a lease, written with conditional puts: `If-None-Match: *`
//! to take a free lock, `If-Match: <etag>` to renew, take over or release one, so of two runs
//! racing for it exactly one wins), `<prefix>/.convoy/<env>/releases/<number>.json`, and the
//! prewarm schedule `<prefix>/.convoy/<env>/prewarm.json` (see `prewarm`).

use async_trait::async_trait;
use aws_sdk_s3::Client;

use crate::artifacts::bucket::Bucket;
pub(super) use crate::artifacts::bucket::Condition;
use crate::execute::lease_store::{LeaseStore, Slot};
use crate::execute::{Lease, LockError, ReleaseError, ReleaseRecord, ReleaseStore};

/// Where in the bucket an environment's state lives.
#[derive(Debug, Clone)]
pub struct StateLocation {
    pub bucket: Bucket,
    /// `<prefix>/.convoy/<environment>` (no trailing slash).
    pub root: String,
    pub environment: String,
}

impl StateLocation {
    /// The state of `environment` beside the artifacts of `s3://bucket/prefix`.
    pub fn new(client: Client, bucket: &str, prefix: &str, environment: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        // Service names are DNS labels, so `.convoy` can never be an artifact's directory.
        let root = if prefix.is_empty() {
            format!(".convoy/{environment}")
        } else {
            format!("{prefix}/.convoy/{environment}")
        };
        StateLocation {
            bucket: Bucket::new(client, bucket),
            root,
            environment: environment.to_string(),
        }
    }

    pub(super) fn url(&self, key: &str) -> String {
        self.bucket.url(key)
    }

    /// The object and its ETag, or `None` when absent.
    pub(super) async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, std::io::Error> {
        self.bucket.get(key).await.map_err(std::io::Error::other)
    }

    /// Puts `bytes` under a condition; the new ETag, `None` when the condition failed.
    pub(super) async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        condition: Condition<'_>,
    ) -> Result<Option<String>, std::io::Error> {
        let put = self.bucket.put(key, bytes, condition);
        put.await.map_err(std::io::Error::other)
    }
}

/// The environment lock as a lease object in the bucket.
pub struct S3Lock {
    location: StateLocation,
}

impl S3Lock {
    pub fn new(location: StateLocation) -> Self {
        S3Lock { location }
    }

    fn key(&self) -> String {
        format!("{}/lock.json", self.location.root)
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> LockError {
        LockError::Io {
            action,
            location: self.location.url(&self.key()),
            source,
        }
    }
}

#[async_trait]
impl LeaseStore for S3Lock {
    fn environment(&self) -> &str {
        &self.location.environment
    }

    async fn read(&self) -> Result<Slot, LockError> {
        let found = self
            .location
            .get(&self.key())
            .await
            .map_err(|e| self.io("read", e))?;
        Ok(match found {
            // An unreadable lease counts as expired: it never blocks.
            Some((bytes, etag)) => Slot {
                lease: serde_json::from_slice(&bytes).ok(),
                version: Some(etag),
            },
            None => Slot::default(),
        })
    }

    async fn write(&self, lease: &Lease, expected: Option<&str>) -> Result<bool, LockError> {
        let condition = match expected {
            Some(etag) => Condition::Unchanged(etag),
            None => Condition::Absent,
        };
        let bytes = serde_json::to_vec_pretty(lease).unwrap_or_default();
        let written = self.location.put(&self.key(), bytes, condition).await;
        Ok(written.map_err(|e| self.io("write", e))?.is_some())
    }

    async fn delete(&self, version: &str) -> Result<bool, LockError> {
        let deleted = self
            .location
            .bucket
            .delete(&self.key(), Some(version))
            .await;
        deleted.map_err(|e| self.io("remove", std::io::Error::other(e)))
    }
}

/// Release records, one object each; the lock makes their writer unique.
pub struct S3Releases {
    location: StateLocation,
}

impl S3Releases {
    pub fn new(location: StateLocation) -> Self {
        S3Releases { location }
    }

    fn dir(&self) -> String {
        format!("{}/releases/", self.location.root)
    }

    fn key(&self, number: u64) -> String {
        // Zero-padded so that a listing sorts in release order.
        format!("{}{number:08}.json", self.dir())
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> ReleaseError {
        ReleaseError::Io {
            action,
            location: self.location.url(&self.dir()),
            source,
        }
    }

    async fn numbers(&self) -> Result<Vec<u64>, ReleaseError> {
        let keys = self.location.bucket.keys(&self.dir()).await;
        let keys = keys.map_err(|e| self.io("list", std::io::Error::other(e)))?;
        let mut numbers: Vec<u64> = keys
            .iter()
            .filter_map(|key| {
                let name = key.rsplit('/').next()?;
                name.strip_suffix(".json")?.parse::<u64>().ok()
            })
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }
}

#[async_trait]
impl ReleaseStore for S3Releases {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        match self.numbers().await?.last() {
            Some(number) => self.load(*number).await,
            None => Ok(None),
        }
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        let key = self.key(number);
        let Some((bytes, _)) = self
            .location
            .get(&key)
            .await
            .map_err(|e| self.io("read", e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ReleaseError::Corrupt {
                location: self.location.url(&key),
                source,
            })
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        let mut records = Vec::new();
        for number in self.numbers().await?.into_iter().rev().take(limit) {
            if let Some(record) = self.load(number).await? {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.location
            .put(&self.key(record.number), bytes, Condition::Always)
            .await
            .map_err(|e| self.io("write", e))?;
        Ok(())
    }
}

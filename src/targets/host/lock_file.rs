//! The host environment's lock: `<root>/deploy.lock` holding a JSON lease. Its version is the
//! digest of its bytes; every compare-and-swap happens under an exclusive `flock` of a guard
//! file, and a first lease is created with `O_EXCL`, so of two deploys only one gets it.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use sha2::Digest;

use crate::execute::lease_store::{LeaseStore, Slot};
use crate::execute::{Lease, LockError};
use crate::targets::host::write_atomic;

pub struct LockFile {
    path: PathBuf,
    environment: String,
}

impl LockFile {
    pub fn new(root: impl Into<PathBuf>, environment: &str) -> Self {
        LockFile {
            path: root.into().join("deploy.lock"),
            environment: environment.to_string(),
        }
    }

    /// Serializes every compare-and-swap of the lease between processes on this host: an
    /// exclusive `flock` on a separate guard file, held only for the few syscalls of one call.
    fn guard(&self) -> Result<std::fs::File, LockError> {
        let path = self.path.with_extension("lock.guard");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| self.io("create", source))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| self.io("open", source))?;
        file.lock().map_err(|source| self.io("lock", source))?;
        Ok(file) // unlocked when dropped
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> LockError {
        LockError::Io {
            action,
            location: self.path.display().to_string(),
            source,
        }
    }

    /// The stored bytes and their version, `None` when there is no lease file.
    fn stored(&self) -> Result<Option<(Vec<u8>, String)>, LockError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let version = hex::encode(sha2::Sha256::digest(&bytes));
                Ok(Some((bytes, version)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io("read", source)),
        }
    }

    /// Creates the lease file; `Ok(false)` when one exists.
    fn create(&self, bytes: &[u8]) -> Result<bool, LockError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| self.io("create", source))?;
        }
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => return Err(self.io("create", source)),
        };
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| self.io("write", source))?;
        Ok(true)
    }
}

#[async_trait]
impl LeaseStore for LockFile {
    fn environment(&self) -> &str {
        &self.environment
    }

    async fn read(&self) -> Result<Slot, LockError> {
        Ok(match self.stored()? {
            // A crash mid-write cannot leave an unreadable lease (writes are atomic); one that
            // is anyway counts as expired rather than blocking the environment forever.
            Some((bytes, version)) => Slot {
                lease: serde_json::from_slice(&bytes).ok(),
                version: Some(version),
            },
            None => Slot::default(),
        })
    }

    async fn write(&self, lease: &Lease, expected: Option<&str>) -> Result<bool, LockError> {
        let _guard = self.guard()?;
        let bytes = serde_json::to_vec_pretty(lease).unwrap_or_default();
        let Some(expected) = expected else {
            return self.create(&bytes);
        };
        if self.stored()?.map(|(_, version)| version).as_deref() != Some(expected) {
            return Ok(false);
        }
        write_atomic(&self.path, &bytes).map_err(|source| self.io("write", source))?;
        Ok(true)
    }

    async fn delete(&self, version: &str) -> Result<bool, LockError> {
        let _guard = self.guard()?;
        if self.stored()?.map(|(_, stored)| stored).as_deref() != Some(version) {
            return Ok(false);
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(self.io("remove", source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::{EnvLock, Holder};
    use jiff::Timestamp;
    use std::time::Duration;

    fn holder(user: &str) -> Holder {
        // Our own pid: a live process, so its leases are never taken for a dead one's.
        Holder {
            user: user.into(),
            host: "ci".into(),
            ci: None,
            pid: std::process::id(),
            pid_namespace: Some("pid:[4026531836]".into()),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_second_deploy_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::new(dir.path(), "production");
        lock.acquire(&holder("alice"), "a", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        let error = lock
            .acquire(&holder("bob"), "b", TTL, at("2026-11-22T10:00:30Z"))
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "locked by alice@ci (pid {}) since 2026-11-22T10:00:00Z",
                std::process::id()
            )),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_the_old_holder_loses_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::new(dir.path(), "production");
        let first = lock
            .acquire(&holder("alice"), "a", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        let second = lock
            .acquire(&holder("bob"), "b", TTL, at("2026-11-22T10:02:00Z"))
            .await
            .unwrap();
        assert_eq!(second.took_over.unwrap().holder.user, "alice");
        assert!(matches!(
            lock.renew(&first.lease, TTL, at("2026-11-22T10:02:01Z"))
                .await,
            Err(LockError::Lost { .. })
        ));
    }

    #[tokio::test]
    async fn a_lease_of_a_dead_process_on_this_host_is_stale_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::new(dir.path(), "production");
        let dead = Holder {
            pid: u32::MAX - 1,
            ..holder("alice")
        };
        lock.acquire(&dead, "a", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        let taken = lock
            .acquire(&holder("bob"), "b", TTL, at("2026-11-22T10:00:01Z"))
            .await
            .unwrap();
        assert_eq!(taken.took_over.unwrap().holder.user, "alice");
        // On another host the pid means nothing: the lease stands until it expires.
        let remote = Holder {
            host: "elsewhere".into(),
            pid: u32::MAX - 1,
            ..holder("carol")
        };
        let lock = LockFile::new(dir.path().join("other"), "production");
        lock.acquire(&remote, "c", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        assert!(
            lock.acquire(&holder("dave"), "d", TTL, at("2026-11-22T10:00:01Z"))
                .await
                .is_err()
        );
        // Same host name, another pid namespace (a container): its pids mean nothing here.
        let contained = Holder {
            pid_namespace: Some("pid:[4026532999]".into()),
            pid: u32::MAX - 1,
            ..holder("erin")
        };
        let lock = LockFile::new(dir.path().join("container"), "production");
        lock.acquire(&contained, "e", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        assert!(
            lock.acquire(&holder("frank"), "f", TTL, at("2026-11-22T10:00:01Z"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn renewing_keeps_the_lease_alive() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::new(dir.path(), "production");
        let first = lock
            .acquire(&holder("alice"), "a", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        lock.renew(&first.lease, TTL, at("2026-11-22T10:00:50Z"))
            .await
            .unwrap();
        assert!(
            lock.acquire(&holder("bob"), "b", TTL, at("2026-11-22T10:01:30Z"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn release_and_break_free_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::new(dir.path(), "production");
        let first = lock
            .acquire(&holder("alice"), "a", TTL, at("2026-11-22T10:00:00Z"))
            .await
            .unwrap();
        lock.release(&first.lease).await.unwrap();
        assert_eq!(lock.status().await.unwrap(), None);
        lock.acquire(&holder("bob"), "b", TTL, at("2026-11-22T10:00:01Z"))
            .await
            .unwrap();
        assert_eq!(lock.break_lock().await.unwrap().unwrap().holder.user, "bob");
        lock.acquire(&holder("carol"), "c", TTL, at("2026-11-22T10:00:02Z"))
            .await
            .unwrap();
    }
}

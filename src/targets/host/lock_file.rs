//! The host environment's lock: `<root>/deploy.lock` holding a JSON lease. Created with
//! `O_EXCL`, so of two deploys only one gets it; an expired lease is taken over.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::execute::lock::Acquired;
use crate::execute::{EnvLock, Holder, Lease, LockError};
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

    /// Serializes every read-check-write of the lease between processes on this host: an
    /// exclusive `flock` on a separate guard file, held only for the few syscalls of one call
    /// (the lease itself lives on across calls; the guard is only about its updates).
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

    fn read(&self) -> Result<Option<Lease>, LockError> {
        match std::fs::read(&self.path) {
            // An unreadable lease (a crash mid-write cannot cause one: writes are atomic) is
            // treated as expired rather than blocking the environment forever.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io("read", source)),
        }
    }

    fn create(&self, lease: &Lease) -> Result<bool, LockError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| self.io("create", source))?;
        }
        let bytes = serde_json::to_vec_pretty(lease).unwrap_or_default();
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => return Err(self.io("create", source)),
        };
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| self.io("write", source))?;
        Ok(true)
    }
}

#[async_trait]
impl EnvLock for LockFile {
    async fn acquire(
        &self,
        holder: &Holder,
        token: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Acquired, LockError> {
        let _guard = self.guard()?;
        let lease = Lease::new(holder, token, ttl, now);
        if self.create(&lease)? {
            return Ok(Acquired {
                lease,
                took_over: None,
            });
        }
        let current = self.read()?;
        match current {
            Some(held) if held.excludes(holder, token, now) => Err(LockError::Held {
                environment: self.environment.clone(),
                lease: Box::new(held),
            }),
            stale => {
                // Expired (or ours): under the guard nobody else is between this read and
                // this write; O_EXCL still protects against a runner without the guard.
                let _ = std::fs::remove_file(&self.path);
                if self.create(&lease)? {
                    Ok(Acquired {
                        lease,
                        took_over: stale.filter(|s| s.token != token),
                    })
                } else {
                    let held = self.read()?.unwrap_or(lease);
                    Err(LockError::Held {
                        environment: self.environment.clone(),
                        lease: Box::new(held),
                    })
                }
            }
        }
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LockError> {
        let _guard = self.guard()?;
        match self.read()? {
            Some(held) if held.token == lease.token => {
                let renewed = held.renewed(ttl, now);
                let bytes = serde_json::to_vec_pretty(&renewed).unwrap_or_default();
                write_atomic(&self.path, &bytes).map_err(|source| self.io("renew", source))?;
                Ok(renewed)
            }
            other => Err(LockError::Lost {
                environment: self.environment.clone(),
                lease: Box::new(other.unwrap_or_else(|| lease.clone())),
            }),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), LockError> {
        let _guard = self.guard()?;
        if self.read()?.is_some_and(|held| held.token == lease.token) {
            std::fs::remove_file(&self.path).map_err(|source| self.io("remove", source))?;
        }
        Ok(())
    }

    async fn status(&self) -> Result<Option<Lease>, LockError> {
        self.read()
    }

    async fn break_lock(&self) -> Result<Option<Lease>, LockError> {
        let _guard = self.guard()?;
        let held = self.read()?;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(held),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io("remove", source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

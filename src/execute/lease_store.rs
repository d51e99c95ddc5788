//! The lease algorithm, once: acquire, renew, release and break over any store that can read a
//! lease with its version and write only if that version is unchanged (compare-and-swap). The
//! stores — a file, a Kubernetes Lease, an S3 object — only read, write and delete.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::execute::lock::{Acquired, EnvLock, Holder, Lease, LockError};

/// What a store holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// The lease; `None` when nothing is stored or what is stored cannot be read (a lease
    /// nobody can read blocks nobody: it counts as expired).
    pub lease: Option<Lease>,
    /// The version a conditional write or delete must name; `None` when nothing is stored.
    pub version: Option<String>,
}

/// Where an environment's lease is kept, with compare-and-swap writes.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// The environment, for messages.
    fn environment(&self) -> &str;

    async fn read(&self) -> Result<Slot, LockError>;

    /// Stores `lease` if the stored version is still `expected` (`None`: only if nothing is
    /// stored). `Ok(false)`: someone else wrote in between.
    async fn write(&self, lease: &Lease, expected: Option<&str>) -> Result<bool, LockError>;

    /// Deletes what is stored if it is still at `version`. `Ok(false)`: it changed or is gone.
    async fn delete(&self, version: &str) -> Result<bool, LockError>;
}

fn held(store: &dyn LeaseStore, lease: Lease) -> LockError {
    LockError::Held {
        environment: store.environment().to_string(),
        lease: Box::new(lease),
    }
}

fn lost(store: &dyn LeaseStore, lease: Lease) -> LockError {
    LockError::Lost {
        environment: store.environment().to_string(),
        lease: Box::new(lease),
    }
}

#[async_trait]
impl<S: LeaseStore> EnvLock for S {
    async fn acquire(
        &self,
        holder: &Holder,
        token: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Acquired, LockError> {
        let lease = Lease::new(holder, token, ttl, now);
        // Usually no lease is stored (a run deletes its own when it ends): create it without
        // reading first, one round trip. Anything stored makes this lose, and the loop decides.
        if self.write(&lease, None).await? {
            return Ok(Acquired {
                lease,
                took_over: None,
            });
        }
        // Twice at most: a write lost to a run that released at once deserves one more try.
        for _ in 0..2 {
            let Slot {
                lease: current,
                version,
            } = self.read().await?;
            if let Some(other) = current.as_ref().filter(|c| c.excludes(holder, token, now)) {
                return Err(held(self, other.clone()));
            }
            // Free, expired, unreadable, a dead local holder's, or ours: replace exactly what was
            // read, or lose to whoever replaced it first.
            if self.write(&lease, version.as_deref()).await? {
                let took_over = current.filter(|stale| stale.token != token);
                return Ok(Acquired { lease, took_over });
            }
        }
        let winner = self.read().await?.lease.unwrap_or(lease);
        Err(held(self, winner))
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Lease, LockError> {
        let Slot {
            lease: current,
            version,
        } = self.read().await?;
        match current {
            Some(ours) if ours.token == lease.token => {
                let renewed = ours.renewed(ttl, now);
                if self.write(&renewed, version.as_deref()).await? {
                    return Ok(renewed);
                }
                let other = self.read().await?.lease;
                Err(lost(self, other.unwrap_or_else(|| lease.clone())))
            }
            other => Err(lost(self, other.unwrap_or_else(|| lease.clone()))),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), LockError> {
        let Slot {
            lease: current,
            version,
        } = self.read().await?;
        if let (Some(ours), Some(version)) = (current, version)
            && ours.token == lease.token
        {
            // Changed meanwhile: taken over, so not ours to delete any more.
            self.delete(&version).await?;
        }
        Ok(())
    }

    async fn status(&self) -> Result<Option<Lease>, LockError> {
        Ok(self.read().await?.lease)
    }

    async fn break_lock(&self) -> Result<Option<Lease>, LockError> {
        let Slot { lease, version } = self.read().await?;
        let Some(version) = version else {
            return Ok(None);
        };
        Ok(if self.delete(&version).await? {
            lease
        } else {
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A lease slot in memory that counts the calls made to it.
    #[derive(Default)]
    struct Counted {
        slot: Mutex<(Option<Lease>, u64)>,
        reads: Mutex<u32>,
        writes: Mutex<u32>,
    }

    #[async_trait]
    impl LeaseStore for Counted {
        fn environment(&self) -> &str {
            "production"
        }

        async fn read(&self) -> Result<Slot, LockError> {
            *self.reads.lock().unwrap() += 1;
            let (lease, version) = self.slot.lock().unwrap().clone();
            Ok(Slot {
                version: lease.is_some().then(|| version.to_string()),
                lease,
            })
        }

        async fn write(&self, lease: &Lease, expected: Option<&str>) -> Result<bool, LockError> {
            *self.writes.lock().unwrap() += 1;
            let mut slot = self.slot.lock().unwrap();
            let current = slot.0.is_some().then(|| slot.1.to_string());
            if current.as_deref() != expected {
                return Ok(false);
            }
            *slot = (Some(lease.clone()), slot.1 + 1);
            Ok(true)
        }

        async fn delete(&self, version: &str) -> Result<bool, LockError> {
            let mut slot = self.slot.lock().unwrap();
            let matches = slot.0.is_some() && slot.1.to_string() == version;
            if matches {
                slot.0 = None;
            }
            Ok(matches)
        }
    }

    fn holder(pid: u32) -> Holder {
        Holder {
            pid,
            ..Holder::this_process()
        }
    }

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_free_environment_is_taken_in_one_write_without_a_read() {
        let store = Counted::default();
        let now = Timestamp::now();
        let acquired = store.acquire(&holder(1), "a", TTL, now).await.unwrap();
        assert!(acquired.took_over.is_none());
        assert_eq!(*store.writes.lock().unwrap(), 1);
        assert_eq!(*store.reads.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_held_environment_is_still_refused_and_an_expired_lease_taken_over() {
        let store = Counted::default();
        let now = Timestamp::now();
        store.acquire(&holder(1), "a", TTL, now).await.unwrap();
        let refused = store.acquire(&holder(2), "b", TTL, now).await;
        assert!(
            matches!(refused, Err(LockError::Held { .. })),
            "{refused:?}"
        );
        let later = now.checked_add(Duration::from_secs(120)).unwrap();
        let taken = store.acquire(&holder(2), "b", TTL, later).await.unwrap();
        assert_eq!(taken.took_over.map(|l| l.token).as_deref(), Some("a"));
    }
}

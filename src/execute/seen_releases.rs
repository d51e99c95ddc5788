//! A [`ReleaseStore`] that answers the read a rollback makes under its lease with the records
//! `convoy rollback` read before it (to find the revisions it must make again), when no record
//! was written between the two: at a thousand services the records are tens of megabytes of
//! JSON, listed and decoded once instead of twice.
//!
//! "No record written since" is the newest record's number, unchanged, on a record that was
//! finished when it was read. A finished record's versions, revisions and outcome never change
//! (a later deploy's catch-up adds journal entries, which a rollback does not read), and every
//! new record — a deploy, a rollback, and with it the prune of the oldest — is a newer number.
//! An unfinished newest record is read again: another run may have ended it since.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::execute::{Newest, ReleaseError, ReleaseRecord, ReleaseStore};

pub struct SeenReleases {
    inner: Arc<dyn ReleaseStore>,
    /// Every record, newest first, as read before the lease; handed over once.
    seen: Mutex<Option<Vec<ReleaseRecord>>>,
}

impl SeenReleases {
    /// `inner`, remembering `seen`: every record it holds, newest first.
    pub fn wrap(inner: Arc<dyn ReleaseStore>, seen: Vec<ReleaseRecord>) -> Arc<dyn ReleaseStore> {
        Arc::new(SeenReleases {
            inner,
            seen: Mutex::new(Some(seen)),
        })
    }

    /// The records seen, if they are still every record there is (see the top of the file).
    async fn still(&self) -> Result<Option<Vec<ReleaseRecord>>, ReleaseError> {
        let seen = self.seen.lock().ok().and_then(|mut seen| seen.take());
        let Some(seen) = seen else {
            return Ok(None);
        };
        let Some(newest) = seen.first().filter(|r| !r.is_unfinished()) else {
            return Ok(None);
        };
        let unchanged = self.inner.newest_number().await? == Some(newest.number);
        Ok(unchanged.then_some(seen))
    }
}

#[async_trait]
impl ReleaseStore for SeenReleases {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        self.inner.latest().await
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        self.inner.load(number).await
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        self.inner.list(limit).await
    }

    async fn unfinished_or_list(&self, limit: usize) -> Result<Newest, ReleaseError> {
        match self.still().await? {
            Some(mut seen) => {
                seen.truncate(limit);
                Ok(Newest::Finished(seen))
            }
            None => self.inner.unfinished_or_list(limit).await,
        }
    }

    async fn newest_number(&self) -> Result<Option<u64>, ReleaseError> {
        self.inner.newest_number().await
    }

    fn complete(&self, record: &mut ReleaseRecord) {
        self.inner.complete(record);
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        self.inner.save(record).await
    }

    async fn append(
        &self,
        record: &ReleaseRecord,
        rollback: bool,
        count: usize,
    ) -> Result<(), ReleaseError> {
        self.inner.append(record, rollback, count).await
    }
}

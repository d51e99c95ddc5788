//! A [`ReleaseStore`] that keeps each release's artifact digests: it writes the digests pinned
//! for the release's versions into every record it saves, and pins the digests of every record
//! it reads back — so a resume, a rollback or a later deploy of a released version fetches
//! exactly the bytes that were released, whatever the store holds by then.

use std::sync::Arc;

use async_trait::async_trait;

use crate::artifacts::{ArtifactPins, PinSource};
use crate::execute::{Newest, ReleaseError, ReleaseRecord, ReleaseStore};

pub struct PinnedReleases {
    inner: Arc<dyn ReleaseStore>,
    pins: ArtifactPins,
}

impl PinnedReleases {
    pub fn wrap(inner: Arc<dyn ReleaseStore>, pins: ArtifactPins) -> Arc<dyn ReleaseStore> {
        Arc::new(PinnedReleases { inner, pins })
    }

    fn learn(&self, record: &ReleaseRecord) {
        for (service, digest) in &record.artifacts {
            self.pins
                .pin(service, digest, PinSource::Release(record.number));
        }
    }

    /// The digest of each of `record`'s versions that is pinned and not yet recorded.
    fn missing(&self, record: &ReleaseRecord) -> Vec<(String, crate::artifacts::ArtifactDigest)> {
        record
            .after
            .iter()
            .filter(|(service, _)| !record.artifacts.contains_key(*service))
            .filter_map(|(service, version)| {
                let artifact = crate::plan::revision::artifact_of(version);
                let (digest, _) = self.pins.get(service, artifact)?;
                Some((service.clone(), digest))
            })
            .collect()
    }

    /// `record` with the digests [`PinnedReleases::missing`] names; `None` when none is (always,
    /// for a record [`ReleaseStore::complete`] completed, unless a version was pinned since).
    fn completed(&self, record: &ReleaseRecord) -> Option<ReleaseRecord> {
        let missing = self.missing(record);
        if missing.is_empty() {
            return None;
        }
        let mut record = record.clone();
        record.artifacts.extend(missing);
        Some(record)
    }
}

#[async_trait]
impl ReleaseStore for PinnedReleases {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        let record = self.inner.latest().await?;
        record.iter().for_each(|r| self.learn(r));
        Ok(record)
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        let record = self.inner.load(number).await?;
        record.iter().for_each(|r| self.learn(r));
        Ok(record)
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        let records = self.inner.list(limit).await?;
        records.iter().for_each(|r| self.learn(r));
        Ok(records)
    }

    async fn unfinished_or_list(&self, limit: usize) -> Result<Newest, ReleaseError> {
        let newest = self.inner.unfinished_or_list(limit).await?;
        match &newest {
            Newest::Unfinished(record) => self.learn(record),
            Newest::Finished(records) => records.iter().for_each(|r| self.learn(r)),
        }
        Ok(newest)
    }

    fn complete(&self, record: &mut ReleaseRecord) {
        let missing = self.missing(record);
        record.artifacts.extend(missing);
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        match self.completed(record) {
            Some(completed) => self.inner.save(&completed).await,
            None => self.inner.save(record).await,
        }
    }

    async fn append(
        &self,
        record: &ReleaseRecord,
        rollback: bool,
        count: usize,
    ) -> Result<(), ReleaseError> {
        match self.completed(record) {
            Some(completed) => self.inner.append(&completed, rollback, count).await,
            None => self.inner.append(record, rollback, count).await,
        }
    }
}

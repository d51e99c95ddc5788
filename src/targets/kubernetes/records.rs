//! Release records in the cluster: one ConfigMap per release, labelled `convoy.dev/release`,
//! holding the gzip-compressed JSON record (plan, journal, versions, outcome — never a secret, so
//! a ConfigMap is the right kind). Any runner with access to the namespace can continue a release.
//!
//! The journal grows in chunks beside it: a journal write rewrites only the ConfigMap of its
//! newest [`CHUNK`] entries (labelled `convoy.dev/journal-of`), not the record — at a thousand
//! services the record is megabytes of JSON and a release writes its journal a thousand times.
//! Reading a record merges its chunks in; the record's own saves (start, rollback, end) carry
//! the whole journal, and a finished release's chunks are deleted.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};

use crate::execute::{Newest, ReleaseError, ReleaseRecord, ReleaseStore};

use super::retry::{Backoff, retrying};

pub const RELEASE_LABEL: &str = "convoy.dev/release";
pub const ENVIRONMENT_LABEL: &str = "convoy.dev/environment";
const RECORD_KEY: &str = "record.json.gz";
pub const FIELD_MANAGER: &str = "convoy";
/// The release number whose journal a chunk ConfigMap holds part of.
const JOURNAL_LABEL: &str = "convoy.dev/journal-of";
/// Journal entries per chunk ConfigMap: a journal write sends at most this many (tens of kB).
const CHUNK: usize = 128;
const CHUNK_KEY: &str = "entries.json";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

pub struct ReleaseConfigMaps {
    api: Api<ConfigMap>,
    namespace: String,
    environment: String,
    /// How many records to keep; older ones are deleted when a new release is recorded.
    history: usize,
    /// The journal chunks this run wrote, by release, each deleted once its release is saved
    /// finished. A catch-up's chunks of an older release are that release's only copy of its
    /// entries (its record is not saved again): they stay until the release is pruned.
    chunks: std::sync::Mutex<std::collections::BTreeSet<(u64, String)>>,
    /// The releases whose record this run saved already: the first save of each prunes.
    saved: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    /// Deletes of records beyond the cap, made once the newer record is written, beside the
    /// release's steps; awaited by the release's last save.
    pruning: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// One chunk of a record's journal, as stored: where its entries start in the journal.
#[derive(serde::Serialize, serde::Deserialize)]
struct Chunk {
    rollback: bool,
    start: usize,
    entries: Vec<crate::execute::JournalEntry>,
}

impl ReleaseConfigMaps {
    pub fn new(client: kube::Client, namespace: &str, environment: &str, history: usize) -> Self {
        ReleaseConfigMaps {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            environment: environment.to_string(),
            history: history.max(1),
            chunks: std::sync::Mutex::default(),
            saved: std::sync::Mutex::default(),
            pruning: std::sync::Mutex::default(),
        }
    }

    fn name(&self, number: u64) -> String {
        format!("convoy-release-{}-{number}", self.environment)
    }

    fn location(&self) -> String {
        format!("ConfigMaps of namespace {}", self.namespace)
    }

    fn io(&self, action: &'static str, error: kube::Error) -> ReleaseError {
        ReleaseError::Io {
            action,
            location: self.location(),
            source: std::io::Error::other(crate::diagnostic::chain(&error)),
        }
    }

    fn selector(&self) -> String {
        format!("{ENVIRONMENT_LABEL}={},{RELEASE_LABEL}", self.environment)
    }

    /// The records' ConfigMaps, newest first by their release label (nothing decoded yet).
    async fn listed(&self) -> Result<Vec<(u64, ConfigMap)>, ReleaseError> {
        let params = ListParams::default().labels(&self.selector());
        let list = retrying(Backoff::default(), || self.api.list(&params))
            .await
            .map_err(|e| self.io("list", e))?;
        let mut listed: Vec<(u64, ConfigMap)> = list
            .items
            .into_iter()
            .map(|object| (self.number_of(&object.metadata).unwrap_or(0), object))
            .collect();
        listed.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
        Ok(listed)
    }

    /// The names and labels of the ConfigMaps `selector` takes: their data stays on the server
    /// (at a thousand services each record is megabytes).
    async fn metadata(&self, selector: &str) -> Result<Vec<ObjectMeta>, ReleaseError> {
        let params = ListParams::default().labels(selector);
        let list = retrying(Backoff::default(), || self.api.list_metadata(&params))
            .await
            .map_err(|e| self.io("list", e))?;
        Ok(list.items.into_iter().map(|item| item.metadata).collect())
    }

    /// A record's number from its label, else from its name (a label edited by hand).
    fn number_of(&self, metadata: &ObjectMeta) -> Option<u64> {
        let labels = metadata.labels.as_ref();
        let label = labels.and_then(|l| l.get(RELEASE_LABEL));
        let prefix = format!("convoy-release-{}-", self.environment);
        let name = metadata.name.as_deref().unwrap_or_default();
        label
            .and_then(|n| n.parse().ok())
            .or_else(|| name.strip_prefix(&prefix)?.parse().ok())
    }

    /// The newest `limit` records, decoded; older ones are not even decompressed — at a
    /// thousand services a record is megabytes of JSON, and a deploy reads the latest one.
    async fn newest(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        let (listed, chunks) = futures::try_join!(self.listed(), self.chunks_of(None))?;
        self.decoded(&listed, &chunks, limit)
    }

    /// The first `limit` of `listed` (newest first), decoded with their journal chunks.
    fn decoded(
        &self,
        listed: &[(u64, ConfigMap)],
        chunks: &[(u64, ConfigMap)],
        limit: usize,
    ) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        let mut records = listed
            .iter()
            .take(limit)
            .map(|(_, object)| {
                let record = decode(object, &self.namespace)?;
                self.merged(record, chunks)
            })
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| std::cmp::Reverse(r.number));
        Ok(records)
    }

    /// This environment's journal chunks, all written by Convoy (the only ones a prune deletes).
    fn chunk_selector(&self, number: Option<u64>) -> String {
        let of = number.map(|n| format!("={n}")).unwrap_or_default();
        format!(
            "{ENVIRONMENT_LABEL}={},{JOURNAL_LABEL}{of},{MANAGED_BY}=convoy",
            self.environment
        )
    }

    /// The journal chunks of release `number` (of every release: `None`), with the number of
    /// the release each belongs to.
    async fn chunks_of(&self, number: Option<u64>) -> Result<Vec<(u64, ConfigMap)>, ReleaseError> {
        let params = ListParams::default().labels(&self.chunk_selector(number));
        let list = retrying(Backoff::default(), || self.api.list(&params))
            .await
            .map_err(|e| self.io("list", e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|object| Some((journal_of(&object.metadata)?, object)))
            .collect())
    }

    /// `record` with the entries its journal chunks hold beyond those it was saved with.
    fn merged(
        &self,
        mut record: ReleaseRecord,
        chunks: &[(u64, ConfigMap)],
    ) -> Result<ReleaseRecord, ReleaseError> {
        let mut parts = Vec::new();
        for (_, object) in chunks.iter().filter(|(of, _)| *of == record.number) {
            let name = object.metadata.name.clone().unwrap_or_default();
            let text = object.data.as_ref().and_then(|d| d.get(CHUNK_KEY));
            let chunk: Chunk =
                serde_json::from_str(text.map_or("", String::as_str)).map_err(|source| {
                    ReleaseError::Corrupt {
                        location: format!("ConfigMap {}/{name}", self.namespace),
                        source,
                    }
                })?;
            parts.push(chunk);
        }
        parts.sort_by_key(|c| (c.rollback, c.start));
        for chunk in parts {
            let journal = record.journal_of_mut(chunk.rollback);
            for (index, entry) in (chunk.start..).zip(chunk.entries) {
                // Entries are written in order, so a chunk never starts past the journal's end;
                // those before it the record already holds.
                if index == journal.len() {
                    journal.push(entry);
                }
            }
        }
        Ok(record)
    }

    /// The labels of a record (`key`: its release label) or of a journal chunk (the label
    /// naming the release it belongs to) of release `number`.
    fn labels(&self, key: &str, number: u64) -> BTreeMap<String, String> {
        BTreeMap::from([
            (key.to_string(), number.to_string()),
            (ENVIRONMENT_LABEL.to_string(), self.environment.clone()),
            (MANAGED_BY.to_string(), "convoy".to_string()),
        ])
    }

    fn chunk_name(&self, number: u64, rollback: bool, chunk: usize) -> String {
        let journal = if rollback { "rollback" } else { "journal" };
        format!(
            "convoy-release-{}-{number}-{journal}-{chunk}",
            self.environment
        )
    }

    /// Writes the chunk of `journal` that holds entry `chunk * CHUNK` as a whole.
    async fn write_chunk(
        &self,
        record: &ReleaseRecord,
        rollback: bool,
        chunk: usize,
    ) -> Result<(), ReleaseError> {
        let journal = record.journal_of(rollback);
        let start = chunk * CHUNK;
        let end = journal.len().min(start + CHUNK);
        let body = Chunk {
            rollback,
            start,
            entries: journal[start..end].to_vec(),
        };
        let text = serde_json::to_string(&body).map_err(|e| ReleaseError::Io {
            action: "encode",
            location: self.location(),
            source: std::io::Error::other(e),
        })?;
        let name = self.chunk_name(record.number, rollback, chunk);
        let object = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels(JOURNAL_LABEL, record.number)),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(CHUNK_KEY.to_string(), text)])),
            ..ConfigMap::default()
        };
        self.put(&name, &object).await?;
        if let Ok(mut written) = self.chunks.lock() {
            written.insert((record.number, name));
        }
        Ok(())
    }

    /// Creates or replaces ConfigMap `name` with `object`, as Convoy's field manager.
    async fn put(&self, name: &str, object: &ConfigMap) -> Result<(), ReleaseError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let (api, params) = (&self.api, &params);
        retrying(Backoff::default(), move || async move {
            api.patch(name, params, &Patch::Apply(object)).await
        })
        .await
        .map(drop)
        .map_err(|e| self.io("write", e))
    }

    /// Deletes the chunks this run wrote of release `number`: its record just saved holds
    /// their entries.
    async fn drop_chunks(&self, number: u64) {
        let mut names = Vec::new();
        if let Ok(mut written) = self.chunks.lock() {
            written.retain(|(of, name)| {
                let saved = *of == number;
                if saved {
                    names.push(name.clone());
                }
                !saved
            });
        }
        let params = DeleteParams::default();
        let deletes = names.iter().map(|name| self.api.delete(name, &params));
        futures::future::join_all(deletes).await;
    }

    /// The records (and their journal chunks) beyond the history cap once record `newest` is
    /// written: only Convoy's (`app.kubernetes.io/managed-by=convoy`) with a release number.
    /// Listed by metadata only: the new record's first save waits for this list. A failed list
    /// prunes nothing; it is left for next time.
    async fn prunable(&self, newest: u64) -> Vec<String> {
        let (records, chunks) = (self.selector(), self.chunk_selector(None));
        let Ok((records, chunks)) =
            futures::try_join!(self.metadata(&records), self.metadata(&chunks))
        else {
            return Vec::new();
        };
        let records = records
            .into_iter()
            .filter_map(|metadata| Some((self.number_of(&metadata)?, metadata)));
        // A chunk left by a killed run of a finished release goes with its record.
        let chunks = chunks
            .into_iter()
            .filter_map(|metadata| Some((journal_of(&metadata)?, metadata)));
        records
            .chain(chunks)
            .filter(|(number, _)| number + self.history as u64 <= newest)
            .filter(|(_, metadata)| {
                let labels = metadata.labels.as_ref();
                labels.and_then(|l| l.get(MANAGED_BY)).map(String::as_str) == Some("convoy")
            })
            .filter_map(|(_, metadata)| metadata.name)
            .collect()
    }

    /// Deletes `names` on a task of their own, beside whatever the run does next; failures are
    /// left for the next release's prune.
    fn delete_beside(&self, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        let api = self.api.clone();
        let deleting = tokio::spawn(async move {
            let params = DeleteParams::default();
            let deletes = names.iter().map(|name| api.delete(name, &params));
            futures::future::join_all(deletes).await;
        });
        if let Ok(mut pruning) = self.pruning.lock() {
            pruning.push(deleting);
        }
    }

    /// Waits for the deletes [`Self::delete_beside`] started.
    async fn pruned(&self) {
        futures::future::join_all(taken(&self.pruning)).await;
    }
}

/// The release whose journal a chunk holds part of, from its label.
fn journal_of(metadata: &ObjectMeta) -> Option<u64> {
    metadata.labels.as_ref()?.get(JOURNAL_LABEL)?.parse().ok()
}

/// What `kept` holds, leaving it empty.
fn taken<T: Default>(kept: &std::sync::Mutex<T>) -> T {
    kept.lock()
        .map(|mut kept| std::mem::take(&mut *kept))
        .unwrap_or_default()
}

fn decode(object: &ConfigMap, namespace: &str) -> Result<ReleaseRecord, ReleaseError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let location = format!("ConfigMap {namespace}/{name}");
    let bytes = object
        .binary_data
        .as_ref()
        .and_then(|d| d.get(RECORD_KEY))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .read_to_end(&mut json)
        .map_err(|source| ReleaseError::Io {
            action: "decompress",
            location: location.clone(),
            source,
        })?;
    serde_json::from_slice(&json).map_err(|source| ReleaseError::Corrupt { location, source })
}

fn encode(record: &ReleaseRecord) -> Result<Vec<u8>, std::io::Error> {
    let json = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json)?;
    gz.finish()
}

#[async_trait]
impl ReleaseStore for ReleaseConfigMaps {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        Ok(self.newest(1).await?.into_iter().next())
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        let name = self.name(number);
        let read = async {
            retrying(Backoff::default(), || self.api.get_opt(&name))
                .await
                .map_err(|e| self.io("read", e))
        };
        let (found, chunks) = futures::try_join!(read, self.chunks_of(Some(number)))?;
        found
            .map(|o| self.merged(decode(&o, &self.namespace)?, &chunks))
            .transpose()
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        self.newest(limit).await
    }

    /// One list of the records and one of the journal chunks serve both answers; only the
    /// newest is decoded when it is unfinished.
    async fn unfinished_or_list(&self, limit: usize) -> Result<Newest, ReleaseError> {
        let (listed, chunks) = futures::try_join!(self.listed(), self.chunks_of(None))?;
        let Some(((_, newest), older)) = listed.split_first() else {
            return Ok(Newest::Finished(Vec::new()));
        };
        let newest = self.merged(decode(newest, &self.namespace)?, &chunks)?;
        if newest.is_unfinished() {
            return Ok(Newest::Unfinished(Box::new(newest)));
        }
        let mut records = self.decoded(older, &chunks, limit.saturating_sub(1))?;
        records.push(newest);
        records.sort_by_key(|r| std::cmp::Reverse(r.number));
        records.truncate(limit);
        Ok(Newest::Finished(records))
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        let name = self.name(record.number);
        let bytes = encode(record).map_err(|source| ReleaseError::Io {
            action: "compress",
            location: self.location(),
            source,
        })?;
        let object = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.labels(RELEASE_LABEL, record.number)),
                ..ObjectMeta::default()
            },
            binary_data: Some(BTreeMap::from([(
                RECORD_KEY.to_string(),
                ByteString(bytes),
            )])),
            ..ConfigMap::default()
        };
        // A record's first save by this run (a new release's) lists the records beyond the cap
        // beside its own write, not one round trip after it: the release's first step waits for
        // this save. They are deleted only once the write has succeeded (a failed one must not
        // leave fewer records than the cap keeps), beside the release's steps.
        let first_save = self
            .saved
            .lock()
            .map(|mut saved| saved.insert(record.number))
            .unwrap_or(false);
        let prunable = async {
            if first_save {
                self.prunable(record.number).await
            } else {
                Vec::new()
            }
        };
        let (written, prunable) = futures::join!(self.put(&name, &object), prunable);
        written?;
        self.delete_beside(prunable);
        if record.outcome != crate::execute::Outcome::InProgress {
            self.drop_chunks(record.number).await;
            self.pruned().await;
        }
        Ok(())
    }

    /// Writes the chunks holding the newest `count` entries — one, or two where they straddle a
    /// chunk boundary — instead of the whole record.
    async fn append(
        &self,
        record: &ReleaseRecord,
        rollback: bool,
        count: usize,
    ) -> Result<(), ReleaseError> {
        let len = record.journal_of(rollback).len();
        if count == 0 || len == 0 {
            return Ok(());
        }
        let first = len.saturating_sub(count) / CHUNK;
        let last = (len - 1) / CHUNK;
        let writes = (first..=last).map(|chunk| self.write_chunk(record, rollback, chunk));
        futures::future::try_join_all(writes).await.map(drop)
    }
}

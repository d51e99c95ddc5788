//! An AWS environment's live flags: the SSM String parameter `/convoy/<project>/<env>/flags`
//! holds them as one flat JSON object (what the agent copies to `<root>/flags.json` on every
//! instance), its parameter version is the flags' revision, and every change is appended to
//! `<prefix>/.convoy/<env>/flags-history.jsonl` in the state bucket.
//!
//! SSM has no conditional write: PutParameter takes no expected version, and labels only name
//! versions. So the compare-and-swap happens under a short lock, `flags.lock` beside the history,
//! taken by a conditional S3 put (`If-None-Match: *`) and given back by a conditional delete; a
//! lock older than [`LOCK_TTL`] (a killed writer) is taken over by `If-Match` on its ETag. Under
//! it: read the parameter (version v), refuse unless v is the expected revision, write with
//! `Overwrite`, and check the version PutParameter answers is v+1 (anything else means a write
//! that bypassed the lock, reported rather than hidden). It is not the deploy lease.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ssm::types::ParameterType;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::execute::flags::{
    FlagAuthor, FlagChange, FlagEdit, FlagError, FlagSet, FlagStore, apply_edits,
};
use crate::targets::aws::error::describe;
use crate::targets::aws::state::{Condition, StateLocation};

/// How long a writer may hold the flags' lock before another takes it over.
pub const LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a writer waits for a live lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

pub struct SsmFlags {
    ssm: aws_sdk_ssm::Client,
    parameter: String,
    location: StateLocation,
}

#[derive(Serialize, Deserialize)]
struct FlagLock {
    who: String,
    expires: Timestamp,
}

impl SsmFlags {
    pub fn new(ssm: aws_sdk_ssm::Client, parameter: String, location: StateLocation) -> Self {
        SsmFlags {
            ssm,
            parameter,
            location,
        }
    }

    fn history_key(&self) -> String {
        format!("{}/flags-history.jsonl", self.location.root)
    }

    fn lock_key(&self) -> String {
        format!("{}/flags.lock", self.location.root)
    }

    fn remote(&self, action: &'static str, detail: String) -> FlagError {
        FlagError::Remote {
            action,
            location: self.parameter.clone(),
            detail,
        }
    }

    /// Takes the lock (waiting a little for a live one); its ETag, to give it back.
    async fn lock(&self, author: &FlagAuthor) -> Result<String, FlagError> {
        let key = self.lock_key();
        let expires = author.at + LOCK_TTL;
        let body = serde_json::to_vec(&FlagLock {
            who: author.who.clone(),
            expires,
        })
        .unwrap_or_default();
        let io = |e: std::io::Error| self.remote("lock", e.to_string());
        let started = tokio::time::Instant::now();
        loop {
            let put = self.location.put(&key, body.clone(), Condition::Absent);
            if let Some(etag) = put.await.map_err(io)? {
                return Ok(etag);
            }
            let held = self.location.get(&key).await.map_err(io)?;
            if let Some((bytes, etag)) = held {
                let lock: Option<FlagLock> = serde_json::from_slice(&bytes).ok();
                let holder = lock
                    .as_ref()
                    .map_or("someone".to_string(), |l| l.who.clone());
                // Unreadable or past its expiry: a writer that died; take it over.
                if lock.is_none_or(|l| l.expires < author.at) {
                    let take = self
                        .location
                        .put(&key, body.clone(), Condition::Unchanged(&etag));
                    if let Some(etag) = take.await.map_err(io)? {
                        return Ok(etag);
                    }
                }
                if started.elapsed() > LOCK_WAIT {
                    let detail = format!(
                        "{holder} holds {} (a write takes a second; it expires after {}s)",
                        self.location.url(&key),
                        LOCK_TTL.as_secs()
                    );
                    return Err(self.remote("lock", detail));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn unlock(&self, etag: &str) {
        // Left behind, it expires: another writer takes it over after `LOCK_TTL`.
        let _ = self
            .location
            .bucket
            .delete(&self.lock_key(), Some(etag))
            .await;
    }

    async fn history_object(&self) -> Result<(Vec<FlagChange>, Option<String>), FlagError> {
        let found = self.location.get(&self.history_key()).await;
        let found = found.map_err(|e| self.remote("read the history of", e.to_string()))?;
        let Some((bytes, etag)) = found else {
            return Ok((Vec::new(), None));
        };
        let text = String::from_utf8_lossy(&bytes);
        let changes = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        Ok((changes, Some(etag)))
    }

    async fn append_history(&self, changes: &[FlagChange]) -> Result<(), FlagError> {
        let key = self.history_key();
        let found = self.location.get(&key).await;
        let found = found.map_err(|e| self.remote("read the history of", e.to_string()))?;
        let (mut bytes, etag) = found.map_or((Vec::new(), None), |(b, e)| (b, Some(e)));
        for change in changes {
            bytes.extend(serde_json::to_vec(change).unwrap_or_default());
            bytes.push(b'\n');
        }
        let condition = match &etag {
            Some(etag) => Condition::Unchanged(etag),
            None => Condition::Absent,
        };
        let put = self.location.put(&key, bytes, condition).await;
        match put.map_err(|e| self.remote("append to the history of", e.to_string()))? {
            Some(_) => Ok(()),
            None => Err(self.remote(
                "append to the history of",
                format!("{} changed under the lock", self.location.url(&key)),
            )),
        }
    }

    /// Read, compare, write, record: under the lock.
    async fn write_locked(
        &self,
        expected: u64,
        edits: &[FlagEdit],
        author: &FlagAuthor,
    ) -> Result<FlagSet, FlagError> {
        let now = read_flags(&self.ssm, &self.parameter)
            .await
            .map_err(|detail| self.remote("read", detail))?;
        if now.revision != expected {
            let found = now.revision;
            return Err(FlagError::Stale { expected, found });
        }
        let (next, changes) = apply_edits(&now, edits, author);
        if changes.is_empty() {
            return Ok(now);
        }
        let value = serde_json::to_string(&next.flags).unwrap_or_default();
        let put = self
            .ssm
            .put_parameter()
            .name(&self.parameter)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| self.remote("write", describe(&e)))?;
        let written = u64::try_from(put.version).unwrap_or_default();
        if written != next.revision {
            return Err(self.remote(
                "write",
                format!(
                    "the parameter went from version {expected} to {written}: something besides convoy wrote it meanwhile; check its history (`aws ssm get-parameter-history`)"
                ),
            ));
        }
        self.append_history(&changes).await?;
        Ok(next)
    }
}

#[async_trait]
impl FlagStore for SsmFlags {
    async fn read(&self) -> Result<FlagSet, FlagError> {
        read_flags(&self.ssm, &self.parameter)
            .await
            .map_err(|detail| self.remote("read", detail))
    }

    async fn write(
        &self,
        expected: u64,
        edits: &[FlagEdit],
        author: &FlagAuthor,
    ) -> Result<FlagSet, FlagError> {
        let etag = self.lock(author).await?;
        let written = self.write_locked(expected, edits, author).await;
        self.unlock(&etag).await;
        written
    }

    async fn history(&self, limit: usize) -> Result<Vec<FlagChange>, FlagError> {
        let (history, _) = self.history_object().await?;
        Ok(history[history.len().saturating_sub(limit)..].to_vec())
    }
}

/// The flags in `parameter` and its version (0 and none when it does not exist yet).
pub async fn read_flags(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<FlagSet, String> {
    let got = ssm.get_parameter().name(parameter).send().await;
    let parameter_of = match got {
        Ok(output) => output.parameter,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            return Ok(FlagSet::default());
        }
        Err(error) => return Err(format!("GetParameter {parameter}: {}", describe(&error))),
    };
    let Some(found) = parameter_of else {
        return Ok(FlagSet::default());
    };
    let flags = parse_flags(found.value().unwrap_or("{}"))
        .map_err(|detail| format!("{parameter} is not a JSON object of strings: {detail}"))?;
    Ok(FlagSet {
        revision: u64::try_from(found.version).unwrap_or_default(),
        flags,
    })
}

fn parse_flags(text: &str) -> Result<BTreeMap<String, String>, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Copies the flags in `parameter` to `file` (the instance's `<root>/flags.json`), replaced
/// atomically and only when they changed; whether it changed.
pub async fn sync_to_file(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    file: &std::path::Path,
) -> Result<bool, String> {
    let flags = read_flags(ssm, parameter).await?;
    let bytes = serde_json::to_vec_pretty(&flags.flags).unwrap_or_default();
    if std::fs::read(file).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    crate::targets::host::write_atomic(file, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_parameter_holds_a_flat_object_of_strings() {
        let flags = super::parse_flags(r#"{"maintenance":"read_only"}"#).unwrap();
        assert_eq!(flags["maintenance"], "read_only");
        assert!(super::parse_flags(r#"{"a":{"b":1}}"#).is_err());
    }
}

//! Release records of a host environment: `<root>/releases/<number>.json`, written atomically,
//! plus `<number>.journal.jsonl`, the journal entries appended since (one fsynced line each), so
//! a journal write does not rewrite the whole, growing record.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::execute::{JournalEntry, ReleaseError, ReleaseRecord, ReleaseStore};
use crate::targets::host::write_atomic;

pub struct ReleaseFiles {
    dir: PathBuf,
}

/// One appended journal entry and where it goes; `index` makes replay idempotent: a line whose
/// entry the record already holds (a full save came after it) is skipped.
#[derive(Serialize, Deserialize)]
struct Appended {
    rollback: bool,
    index: usize,
    entry: JournalEntry,
}

impl ReleaseFiles {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ReleaseFiles {
            dir: root.into().join("releases"),
        }
    }

    fn path(&self, number: u64) -> PathBuf {
        // Zero-padded so that a directory listing sorts in release order.
        self.dir.join(format!("{number:08}.json"))
    }

    fn journal_path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number:08}.journal.jsonl"))
    }

    fn numbers(&self) -> Result<Vec<u64>, ReleaseError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(self.io("list", source)),
        };
        let mut numbers: Vec<u64> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> ReleaseError {
        ReleaseError::Io {
            action,
            location: self.dir.display().to_string(),
            source,
        }
    }

    fn read(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        let path = self.path(number);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io("read", source)),
        };
        let mut record: ReleaseRecord =
            serde_json::from_slice(&bytes).map_err(|source| ReleaseError::Corrupt {
                location: path.display().to_string(),
                source,
            })?;
        let appended = match std::fs::read_to_string(self.journal_path(number)) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Some(record)),
            Err(source) => return Err(self.io("read", source)),
        };
        // A line cut short by a crash is the last one and was never acknowledged: skip it.
        for line in appended
            .lines()
            .filter_map(|l| serde_json::from_str::<Appended>(l).ok())
        {
            let journal = if line.rollback {
                &mut record.rollback_journal
            } else {
                &mut record.journal
            };
            if line.index == journal.len() {
                journal.push(line.entry);
            }
        }
        Ok(Some(record))
    }
}

#[async_trait]
impl ReleaseStore for ReleaseFiles {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        match self.numbers()?.last() {
            Some(number) => self.read(*number),
            None => Ok(None),
        }
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        self.read(number)
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        let numbers = self.numbers()?;
        numbers
            .iter()
            .rev()
            .take(limit)
            .filter_map(|n| self.read(*n).transpose())
            .collect()
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        let bytes = serde_json::to_vec(record).map_err(|source| ReleaseError::Corrupt {
            location: self.path(record.number).display().to_string(),
            source,
        })?;
        write_atomic(&self.path(record.number), &bytes)
            .map_err(|source| self.io("write", source))?;
        // The record now holds every entry; the appendix is redundant (and skipped if it stays).
        match std::fs::remove_file(self.journal_path(record.number)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(self.io("remove", error))
            }
            _ => Ok(()),
        }
    }

    async fn append(
        &self,
        record: &ReleaseRecord,
        rollback: bool,
        count: usize,
    ) -> Result<(), ReleaseError> {
        let journal = record.journal_of(rollback);
        let first = journal.len().saturating_sub(count);
        if first == journal.len() {
            return Ok(());
        }
        let mut text = String::new();
        for (index, entry) in journal.iter().enumerate().skip(first) {
            let line = Appended {
                rollback,
                index,
                entry: entry.clone(),
            };
            let json = serde_json::to_string(&line).map_err(|source| ReleaseError::Corrupt {
                location: self.journal_path(record.number).display().to_string(),
                source,
            })?;
            // A leading newline too: if an earlier append was torn (power loss, disk full),
            // this line still starts on its own and parses; the torn fragment alone is skipped.
            text.push('\n');
            text.push_str(&json);
            text.push('\n');
        }
        let path = self.journal_path(record.number);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| self.io("append to", source))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|source| self.io("append to", source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::record_with_steps;

    #[tokio::test]
    async fn appended_entries_survive_a_reload_and_a_later_full_save() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReleaseFiles::new(dir.path());
        let (mut record, entries) = record_with_steps(3);
        store.save(&record).await.unwrap();
        for entry in &entries[..2] {
            record.journal.push(entry.clone());
            store.append(&record, false, 1).await.unwrap();
        }
        assert_eq!(store.load(record.number).await.unwrap().unwrap(), record);
        record.journal.push(entries[2].clone());
        store.save(&record).await.unwrap();
        assert!(!dir.path().join("releases/00000001.journal.jsonl").exists());
        assert_eq!(store.latest().await.unwrap().unwrap(), record);
    }

    #[tokio::test]
    async fn a_group_of_entries_appended_in_one_write_all_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReleaseFiles::new(dir.path());
        let (mut record, entries) = record_with_steps(5);
        store.save(&record).await.unwrap();
        record.journal.push(entries[0].clone());
        store.append(&record, false, 1).await.unwrap();
        record.journal.extend(entries[1..].iter().cloned());
        store.append(&record, false, 4).await.unwrap();
        assert_eq!(store.load(record.number).await.unwrap().unwrap(), record);
    }

    #[tokio::test]
    async fn a_torn_last_line_and_stale_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReleaseFiles::new(dir.path());
        let (mut record, entries) = record_with_steps(2);
        record.journal.push(entries[0].clone());
        store.save(&record).await.unwrap();
        // A line for an entry the record already holds (crash after the save, before the
        // removal), then a line cut short by a crash mid-write.
        let stale = serde_json::to_string(&Appended {
            rollback: false,
            index: 0,
            entry: entries[0].clone(),
        })
        .unwrap();
        let path = dir.path().join("releases/00000001.journal.jsonl");
        std::fs::write(&path, format!("{stale}\n{{\"rollback\":false,\"ind")).unwrap();
        assert_eq!(store.load(1).await.unwrap().unwrap(), record);
    }
}

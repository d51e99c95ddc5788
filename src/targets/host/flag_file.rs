//! A host environment's flags: `<root>/flags.json`, a flat JSON object that services read
//! (`CONVOY_FLAGS_FILE`), replaced atomically by a rename; every change appended to
//! `<root>/flags-history.jsonl`, whose last line's revision is the flags' revision. Each
//! compare-and-swap happens under an exclusive `flock` of a guard file, never the deploy lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::execute::flags::apply_edits;
use crate::execute::flags::{FlagAuthor, FlagChange, FlagEdit, FlagError, FlagSet, FlagStore};
use crate::targets::host::write_atomic;

pub struct FlagFile {
    root: PathBuf,
}

impl FlagFile {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FlagFile { root: root.into() }
    }

    fn flags_path(&self) -> PathBuf {
        self.root.join("flags.json")
    }

    fn history_path(&self) -> PathBuf {
        self.root.join("flags-history.jsonl")
    }

    fn io(
        &self,
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> FlagError {
        let location = path.display().to_string();
        move |source| FlagError::Io {
            action,
            location,
            source,
        }
    }

    /// Held for the few syscalls of one read-compare-write.
    fn guard(&self) -> Result<std::fs::File, FlagError> {
        let path = self.root.join("flags.lock.guard");
        std::fs::create_dir_all(&self.root).map_err(self.io("create", &self.root))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(self.io("open", &path))?;
        file.lock().map_err(self.io("lock", &path))?;
        Ok(file)
    }

    fn read_history(&self) -> Result<Vec<FlagChange>, FlagError> {
        let path = self.history_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(self.io("read", &path)(error)),
        };
        // A line cut short by a kill mid-append is not a change that happened.
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    fn read_now(&self) -> Result<FlagSet, FlagError> {
        let path = self.flags_path();
        let flags: BTreeMap<String, String> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| FlagError::Corrupt {
                location: path.display().to_string(),
                detail: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(self.io("read", &path)(error)),
        };
        let revision = self.read_history()?.last().map_or(0, |c| c.revision);
        Ok(FlagSet { revision, flags })
    }
}

#[async_trait]
impl FlagStore for FlagFile {
    async fn read(&self) -> Result<FlagSet, FlagError> {
        self.read_now()
    }

    async fn write(
        &self,
        expected: u64,
        edits: &[FlagEdit],
        author: &FlagAuthor,
    ) -> Result<FlagSet, FlagError> {
        let _guard = self.guard()?;
        let now = self.read_now()?;
        if now.revision != expected {
            let found = now.revision;
            return Err(FlagError::Stale { expected, found });
        }
        let (next, changes) = apply_edits(&now, edits, author);
        if changes.is_empty() {
            return Ok(now);
        }
        let path = self.flags_path();
        let bytes = serde_json::to_vec_pretty(&next.flags).unwrap_or_default();
        write_atomic(&path, &bytes).map_err(self.io("write", &path))?;
        let path = self.history_path();
        let mut lines = Vec::new();
        for change in &changes {
            lines.extend(serde_json::to_vec(change).unwrap_or_default());
            lines.push(b'\n');
        }
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(&lines).and_then(|()| file.sync_all()));
        appended.map_err(self.io("append to", &path))?;
        Ok(next)
    }

    async fn history(&self, limit: usize) -> Result<Vec<FlagChange>, FlagError> {
        let history = self.read_history()?;
        Ok(history[history.len().saturating_sub(limit)..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author() -> FlagAuthor {
        FlagAuthor {
            who: "alice@laptop".to_string(),
            at: "2026-12-02T10:00:00Z".parse().unwrap(),
            release: None,
        }
    }

    #[tokio::test]
    async fn flags_json_is_the_plain_object_services_read_and_history_grows() {
        let dir = tempfile::tempdir().unwrap();
        let store = FlagFile::new(dir.path());
        let set = FlagEdit::Set {
            key: "checkout".to_string(),
            value: "new".to_string(),
        };
        store.write(0, &[set], &author()).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("flags.json")).unwrap();
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, serde_json::json!({"checkout": "new"}));
        let again = FlagFile::new(dir.path()).read().await.unwrap();
        assert_eq!(again.revision, 1);
        let unset = FlagEdit::Unset {
            key: "checkout".to_string(),
        };
        let stale = store
            .write(0, std::slice::from_ref(&unset), &author())
            .await;
        assert!(matches!(
            stale,
            Err(FlagError::Stale {
                expected: 0,
                found: 1
            })
        ));
        store.write(1, &[unset], &author()).await.unwrap();
        let history = store.history(10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].old.as_deref(), Some("new"));
        assert_eq!(history[1].new, None);
    }
}

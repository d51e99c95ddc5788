//! Release records of a host environment: `<root>/releases/<number>.json`, written atomically.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::execute::{ReleaseError, ReleaseRecord, ReleaseStore};
use crate::targets::host::write_atomic;

pub struct ReleaseFiles {
    dir: PathBuf,
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
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ReleaseError::Corrupt {
                location: path.display().to_string(),
                source,
            })
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
        let bytes = serde_json::to_vec_pretty(record).map_err(|source| ReleaseError::Corrupt {
            location: self.path(record.number).display().to_string(),
            source,
        })?;
        write_atomic(&self.path(record.number), &bytes).map_err(|source| self.io("write", source))
    }
}

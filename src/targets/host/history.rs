//! `<root>/<service>/history.jsonl`: one line per switch, yodeploy-style, for people reading a host.

use std::io::Write;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub at: Timestamp,
    pub action: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub release: Option<u64>,
}

pub fn append_history(path: &Path, line: &HistoryLine) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())
}

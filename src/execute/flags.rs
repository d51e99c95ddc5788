//! Live flags of an environment (feature switches, `maintenance=read_only`): what a target keeps
//! for its services to read without a redeploy, with a history of every change. Writes never take
//! the deploy lease; they are compare-and-swap on the flags' revision, so a lost update is refused.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The flag a `maintenance: true` task turns on while it runs.
pub const MAINTENANCE: &str = "maintenance";
/// Its value then.
pub const READ_ONLY: &str = "read_only";

/// The flags as one read saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagSet {
    /// Bumped by every write; a write names the revision it was computed from.
    pub revision: u64,
    pub flags: BTreeMap<String, String>,
}

/// One change of one flag, as history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagChange {
    /// The revision the write made.
    pub revision: u64,
    pub at: Timestamp,
    pub who: String,
    /// The release whose task made the change (maintenance), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u64>,
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What a write does to one flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagEdit {
    Set { key: String, value: String },
    Unset { key: String },
}

/// Who writes, when, and for which release (none for a person's `convoy flags`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagAuthor {
    pub who: String,
    pub at: Timestamp,
    pub release: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("invalid flag `{argument}`: {reason}")]
    BadArgument {
        argument: String,
        reason: &'static str,
    },
    #[error("the flags changed since revision {expected} (now revision {found}); not overwritten")]
    Stale { expected: u64, found: u64 },
    #[error("cannot {action} the flags at {location}")]
    Io {
        action: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the flags at {location} are unreadable: {detail}")]
    Corrupt { location: String, detail: String },
    #[error("cannot {action} the flags in {location}: {detail}")]
    Remote {
        action: &'static str,
        location: String,
        detail: String,
    },
}

impl crate::diagnostic::Diagnose for FlagError {
    fn help(&self) -> Option<String> {
        match self {
            FlagError::Stale { found, .. } => Some(format!(
                "someone else changed them meanwhile: `convoy flags list` shows revision {found}; decide again and retry"
            )),
            FlagError::Corrupt { .. } => {
                Some("fix or remove the file; `convoy flags set` writes it anew".to_string())
            }
            FlagError::BadArgument { .. } => Some(
                "write `convoy flags set KEY=VALUE`, keys of letters, digits, `_`, `-` and `.`"
                    .to_string(),
            ),
            FlagError::Io { .. } | FlagError::Remote { .. } => None,
        }
    }
}

#[async_trait]
pub trait FlagStore: Send + Sync {
    /// The flags now, with their revision.
    async fn read(&self) -> Result<FlagSet, FlagError>;

    /// Applies `edits` when the flags are still at revision `expected`, recording each change
    /// that changes a value in history; [`FlagError::Stale`] when they are not.
    async fn write(
        &self,
        expected: u64,
        edits: &[FlagEdit],
        author: &FlagAuthor,
    ) -> Result<FlagSet, FlagError>;

    /// The changes, oldest first, at most the last `limit`.
    async fn history(&self, limit: usize) -> Result<Vec<FlagChange>, FlagError>;
}

/// `KEY=VALUE` (`set`) or `KEY` (`unset`) as an edit; keys are what a service can look up
/// safely in any format: letters, digits, `_`, `-` and `.`.
pub fn parse_edit(argument: &str, set: bool) -> Result<FlagEdit, FlagError> {
    let bad = |reason| FlagError::BadArgument {
        argument: argument.to_string(),
        reason,
    };
    let (key, value) = match (set, argument.split_once('=')) {
        (true, Some((key, value))) => (key, Some(value)),
        (true, None) => return Err(bad("expected KEY=VALUE")),
        (false, Some(_)) => return Err(bad("`unset` takes keys only")),
        (false, None) => (argument, None),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || !key.chars().all(valid) {
        return Err(bad("a key is letters, digits, `_`, `-` and `.`"));
    }
    let key = key.to_string();
    Ok(match value {
        Some(value) => FlagEdit::Set {
            key,
            value: value.to_string(),
        },
        None => FlagEdit::Unset { key },
    })
}

/// `flags` after `edits`, and the changes they make (edits that change nothing are no change).
pub fn apply_edits(
    flags: &FlagSet,
    edits: &[FlagEdit],
    author: &FlagAuthor,
) -> (FlagSet, Vec<FlagChange>) {
    let mut next = flags.clone();
    next.revision += 1;
    let mut changes = Vec::new();
    for edit in edits {
        let (key, new) = match edit {
            FlagEdit::Set { key, value } => (key, Some(value.clone())),
            FlagEdit::Unset { key } => (key, None),
        };
        let old = match &new {
            Some(value) => next.flags.insert(key.clone(), value.clone()),
            None => next.flags.remove(key),
        };
        if old != new {
            changes.push(FlagChange {
                revision: next.revision,
                at: author.at,
                who: author.who.clone(),
                release: author.release,
                key: key.clone(),
                old,
                new,
            });
        }
    }
    (next, changes)
}

/// Turns maintenance on for release `release`, unless it is on already (someone put the
/// environment in maintenance by hand: theirs to clear). Retries a write that lost a race.
pub async fn maintenance_on(store: &dyn FlagStore, author: &FlagAuthor) -> Result<(), FlagError> {
    loop {
        let now = store.read().await?;
        if now.flags.get(MAINTENANCE).is_some_and(|v| v == READ_ONLY) {
            return Ok(());
        }
        let edit = FlagEdit::Set {
            key: MAINTENANCE.to_string(),
            value: READ_ONLY.to_string(),
        };
        match store.write(now.revision, &[edit], author).await {
            Err(FlagError::Stale { .. }) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Clears maintenance when release `author.release` turned it on: the last change of the flag
/// is that release's. Run after a maintenance task, whatever its outcome, and when a release
/// finishes (a resumed or reverted release clears what a killed run left on).
pub async fn maintenance_off(store: &dyn FlagStore, author: &FlagAuthor) -> Result<(), FlagError> {
    loop {
        let now = store.read().await?;
        if !now.flags.contains_key(MAINTENANCE) {
            return Ok(());
        }
        let history = store.history(usize::MAX).await?;
        let last = history.iter().rev().find(|c| c.key == MAINTENANCE);
        if last.is_none_or(|c| c.release.is_none() || c.release != author.release) {
            return Ok(());
        }
        let edit = FlagEdit::Unset {
            key: MAINTENANCE.to_string(),
        };
        match store.write(now.revision, &[edit], author).await {
            Err(FlagError::Stale { .. }) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Flags in memory, for tests of everything that uses them.
#[derive(Default)]
pub struct MemoryFlags {
    state: std::sync::Mutex<(FlagSet, Vec<FlagChange>)>,
}

#[async_trait]
impl FlagStore for MemoryFlags {
    async fn read(&self) -> Result<FlagSet, FlagError> {
        Ok(self.state.lock().unwrap().0.clone())
    }

    async fn write(
        &self,
        expected: u64,
        edits: &[FlagEdit],
        author: &FlagAuthor,
    ) -> Result<FlagSet, FlagError> {
        let mut state = self.state.lock().unwrap();
        if state.0.revision != expected {
            let found = state.0.revision;
            return Err(FlagError::Stale { expected, found });
        }
        let (next, changes) = apply_edits(&state.0, edits, author);
        state.0 = next.clone();
        state.1.extend(changes);
        Ok(next)
    }

    async fn history(&self, limit: usize) -> Result<Vec<FlagChange>, FlagError> {
        let history = &self.state.lock().unwrap().1;
        Ok(history[history.len().saturating_sub(limit)..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(release: Option<u64>) -> FlagAuthor {
        FlagAuthor {
            who: "alice@laptop".to_string(),
            at: "2026-12-02T10:00:00Z".parse().unwrap(),
            release,
        }
    }

    fn set(key: &str, value: &str) -> FlagEdit {
        FlagEdit::Set {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    #[tokio::test]
    async fn a_write_from_a_stale_revision_is_refused_not_overwritten() {
        let store = MemoryFlags::default();
        let seen = store.read().await.unwrap();
        store
            .write(seen.revision, &[set("checkout", "new")], &author(None))
            .await
            .unwrap();
        let lost = store
            .write(seen.revision, &[set("checkout", "old")], &author(None))
            .await;
        assert!(
            matches!(
                lost,
                Err(FlagError::Stale {
                    expected: 0,
                    found: 1
                })
            ),
            "{lost:?}"
        );
        assert_eq!(store.read().await.unwrap().flags["checkout"], "new");
    }

    #[tokio::test]
    async fn history_keeps_who_when_old_and_new_of_each_change() {
        let store = MemoryFlags::default();
        store
            .write(0, &[set("a", "1"), set("b", "2")], &author(None))
            .await
            .unwrap();
        let unset = FlagEdit::Unset {
            key: "a".to_string(),
        };
        store
            .write(1, &[unset, set("b", "2")], &author(None))
            .await
            .unwrap();
        let history = store.history(10).await.unwrap();
        let seen: Vec<_> = history
            .iter()
            .map(|c| {
                (
                    c.revision,
                    c.key.as_str(),
                    c.old.as_deref(),
                    c.new.as_deref(),
                )
            })
            .collect();
        // Setting `b` to what it is already changes nothing and is no history.
        assert_eq!(
            seen,
            [
                (1, "a", None, Some("1")),
                (1, "b", None, Some("2")),
                (2, "a", Some("1"), None)
            ]
        );
        assert!(history.iter().all(|c| c.who == "alice@laptop"));
    }

    #[tokio::test]
    async fn maintenance_set_by_hand_is_left_on_by_a_release() {
        let store = MemoryFlags::default();
        store
            .write(0, &[set(MAINTENANCE, READ_ONLY)], &author(None))
            .await
            .unwrap();
        maintenance_on(&store, &author(Some(7))).await.unwrap();
        maintenance_off(&store, &author(Some(7))).await.unwrap();
        assert_eq!(store.read().await.unwrap().flags[MAINTENANCE], READ_ONLY);
    }

    #[tokio::test]
    async fn maintenance_a_release_set_is_cleared_by_it_alone() {
        let store = MemoryFlags::default();
        maintenance_on(&store, &author(Some(7))).await.unwrap();
        assert_eq!(store.read().await.unwrap().flags[MAINTENANCE], READ_ONLY);
        maintenance_off(&store, &author(Some(8))).await.unwrap();
        assert!(store.read().await.unwrap().flags.contains_key(MAINTENANCE));
        maintenance_off(&store, &author(Some(7))).await.unwrap();
        assert!(!store.read().await.unwrap().flags.contains_key(MAINTENANCE));
    }
}

//! A release: one deploy (or rollback) of a set of service versions to one environment, numbered,
//! with its plan, its journal and its outcome. Stored in the target so any runner can continue.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::execute::lock::Holder;
use crate::plan::revision::Revision;
use crate::plan::{Phase, Plan, StepId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReleaseKind {
    Deploy,
    /// Returning the environment to the versions of release `to`.
    Rollback {
        to: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum StepEvent {
    Started,
    Succeeded,
    Failed {
        error: String,
        /// What to do about it, when the target said (its diagnosis' `help:` line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        help: Option<String>,
    },
    /// Not run now: waits for `keep_warm`; a later deploy or `convoy gc` performs it.
    Deferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at: Timestamp,
    pub phase: Phase,
    pub step: StepId,
    pub service: String,
    #[serde(flatten)]
    pub event: StepEvent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Running, or killed while running: `deploy --resume` or `rollback` continues it.
    InProgress,
    Succeeded,
    /// Failed and rolled back cleanly.
    RolledBack {
        reason: String,
    },
    /// Failed, and the rollback did not complete either: needs a person.
    Failed {
        reason: String,
        left: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub number: u64,
    pub environment: String,
    #[serde(flatten)]
    pub kind: ReleaseKind,
    pub who: Holder,
    pub started: Timestamp,
    pub finished: Option<Timestamp>,
    /// Live version of each changed service before the release (`None`: new service).
    pub before: BTreeMap<String, Option<String>>,
    /// Desired version of every service of the release, changed or not.
    pub after: BTreeMap<String, String>,
    pub plan: Plan,
    pub journal: Vec<JournalEntry>,
    /// The plan that reverts this release, once one was needed, and its own journal.
    pub rollback: Option<Plan>,
    pub rollback_journal: Vec<JournalEntry>,
    /// Why the release is being rolled back, once it is.
    pub failure: Option<String>,
    /// Digest of each service's configuration when the release started (its revision's).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// The artifact of each service of `after` (version, sha256, signer), so the bytes a release
    /// ran do not depend on the store alone: a later fetch of the version must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, crate::artifacts::ArtifactDigest>,
    /// What each revision this release moves to is made of: its artifact, commit, values
    /// (secrets masked), secrets by keyed hash, objects and `--set` flags — so a rollback
    /// re-creates it exactly, whatever today's tree says.
    /// Shared with the session's (a thousand services' revisions held twice were megabytes).
    #[serde(default, with = "shared")]
    pub revisions: BTreeMap<String, Arc<Revision>>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ReleaseRecord {
    /// The deploy journal, or the rollback's when `rollback`.
    pub fn journal_of(&self, rollback: bool) -> &[JournalEntry] {
        if rollback {
            &self.rollback_journal
        } else {
            &self.journal
        }
    }

    /// [`ReleaseRecord::journal_of`], to add to.
    pub fn journal_of_mut(&mut self, rollback: bool) -> &mut Vec<JournalEntry> {
        if rollback {
            &mut self.rollback_journal
        } else {
            &mut self.journal
        }
    }

    /// A new, unstarted release of `plan`, which moves the environment to `desired`.
    pub fn new(
        number: u64,
        kind: ReleaseKind,
        who: Holder,
        plan: Plan,
        desired: BTreeMap<String, String>,
    ) -> Self {
        ReleaseRecord {
            number,
            environment: plan.environment.clone(),
            kind,
            who,
            started: plan.created,
            finished: None,
            before: plan
                .changes
                .iter()
                .map(|c| (c.service.clone(), c.from.clone()))
                .collect(),
            after: desired,
            plan,
            journal: Vec::new(),
            rollback: None,
            rollback_journal: Vec::new(),
            failure: None,
            values: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            revisions: BTreeMap::new(),
            outcome: Outcome::InProgress,
        }
    }

    pub fn is_unfinished(&self) -> bool {
        self.outcome == Outcome::InProgress
    }

    /// The versions the environment serves when this release is done (or rolled back).
    pub fn serving(&self) -> BTreeMap<String, Option<String>> {
        let mut serving: BTreeMap<String, Option<String>> = self
            .after
            .iter()
            .map(|(s, v)| (s.clone(), Some(v.clone())))
            .collect();
        if !matches!(self.outcome, Outcome::Succeeded) {
            for (service, before) in &self.before {
                serving.insert(service.clone(), before.clone());
            }
        }
        serving
    }

    pub fn duration(&self) -> Option<jiff::SignedDuration> {
        self.finished.map(|end| end.duration_since(self.started))
    }
}

/// A record's revisions, each shared with the session that made it, read and written as plain
/// revisions.
mod shared {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::plan::revision::Revision;

    pub fn serialize<S: Serializer>(
        revisions: &BTreeMap<String, Arc<Revision>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(revisions.iter().map(|(service, r)| (service, r.as_ref())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Arc<Revision>>, D::Error> {
        let revisions = BTreeMap::<String, Revision>::deserialize(deserializer)?;
        Ok(revisions
            .into_iter()
            .map(|(s, r)| (s, Arc::new(r)))
            .collect())
    }
}

/// A release record with an empty journal, and `n` journal entries to add to it: small records
/// for tests of release stores.
#[cfg(test)]
pub(crate) fn record_with_steps(n: usize) -> (ReleaseRecord, Vec<JournalEntry>) {
    let at: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
    let plan = Plan {
        environment: "local".into(),
        created: at,
        changes: vec![],
        unchanged: vec![],
        steps: vec![],
    };
    let who = Holder {
        user: "u".into(),
        host: "h".into(),
        ci: None,
        pid: 1,
        pid_namespace: None,
    };
    let record = ReleaseRecord::new(1, ReleaseKind::Deploy, who, plan, Default::default());
    let entries = (0..n)
        .map(|i| JournalEntry {
            at: at
                .checked_add(crate::config::Dur::secs(i as u64).0)
                .unwrap(),
            phase: Phase::Provision,
            step: StepId(i),
            service: "api".into(),
            event: StepEvent::Started,
        })
        .collect();
    (record, entries)
}

/// What a rollback reads first: the newest record when it is unfinished (the release to
/// revert), else the records kept (the releases to return by).
#[derive(Debug)]
pub enum Newest {
    Unfinished(Box<ReleaseRecord>),
    /// Newest first.
    Finished(Vec<ReleaseRecord>),
}

/// Where a target keeps its release records.
#[async_trait]
pub trait ReleaseStore: Send + Sync {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError>;
    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError>;
    /// Newest first, at most `limit`.
    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError>;

    /// The newest record if it is unfinished, else the newest `limit`. Stores that list every
    /// record in one read override this so that a rollback reads once; no store decodes more
    /// than the newest when it is unfinished (a killed release's rollback holds one record).
    /// By default [`ReleaseStore::latest`], then [`ReleaseStore::list`].
    async fn unfinished_or_list(&self, limit: usize) -> Result<Newest, ReleaseError> {
        match self.latest().await? {
            Some(latest) if latest.is_unfinished() => Ok(Newest::Unfinished(Box::new(latest))),
            _ => self.list(limit).await.map(Newest::Finished),
        }
    }

    /// Creates or replaces the record; must be durable when it returns.
    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError>;

    /// Adds to a new `record`, before its first save, what this store writes into every record
    /// beside the executor's fields (the pinned store: artifact digests), so that no later save
    /// or append has to copy a record of a thousand services to add it. Nothing by default.
    fn complete(&self, record: &mut ReleaseRecord) {
        let _ = record;
    }

    /// Makes the newest `count` entries of `record`'s journal (its rollback journal when
    /// `rollback`) durable, in one write: the executor group-commits the entries of steps that
    /// start or end together. Stores that can append override this so that a journal write costs
    /// the same at step 300 as at step 1; the default saves the whole record.
    async fn append(
        &self,
        record: &ReleaseRecord,
        rollback: bool,
        count: usize,
    ) -> Result<(), ReleaseError> {
        let _ = (rollback, count);
        self.save(record).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot {action} release records in {location}")]
    Io {
        action: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("release record {location} is unreadable")]
    Corrupt {
        location: String,
        #[source]
        source: serde_json::Error,
    },
}

//! Pre-warming through a target: the [`Prewarmer`] trait each target kind implements (Kubernetes
//! and AWS), and the operations of `convoy prewarm` over it. The decisions are the planner's
//! ([`crate::plan::prewarm`]); this module reads, writes and waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use crate::execute::Clock;
use crate::plan::prewarm::{self, Change, Level, PlannedService, PrewarmRequest, Schedule, Window};
use crate::targets::TargetsError;

/// What a target reports of one service's capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// The live version.
    pub version: String,
    /// The level the schedule moves (an HPA's min and max, or replicas).
    pub level: Level,
    /// Replicas asked for now, and how many of them are Ready (InService on AWS).
    pub desired: u32,
    pub ready: u32,
}

/// A stored schedule and the token a conditional write must present (none when nothing is
/// stored yet), so two runners never overwrite each other's changes.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub schedule: Schedule,
    pub token: Option<String>,
}

/// Who moves the capacity when a window starts, for what status says when it has not moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaisedBy {
    /// `convoy prewarm apply`, from cron (Kubernetes): Ready replicas.
    Apply,
    /// The groups' scheduled actions (AWS): InService instances.
    ScheduledActions,
}

/// One target kind's side of pre-warming.
#[async_trait]
pub trait Prewarmer: Send + Sync {
    /// Where the schedule is kept, for messages.
    fn location(&self) -> String;
    /// What moves the capacity when a window starts or ends.
    fn raised_by(&self) -> RaisedBy;
    async fn load(&self) -> Result<Stored, TargetsError>;
    /// Writes `schedule` if the stored one is still the one `token` names; returns the new token.
    async fn save(&self, schedule: &Schedule, token: Option<&str>) -> Result<String, TargetsError>;
    /// Refuses a schedule the target could not follow from `now` (AWS's rules for scheduled
    /// actions), before it is stored.
    async fn check(&self, _schedule: &Schedule, _now: Timestamp) -> Result<(), TargetsError> {
        Ok(())
    }
    /// The capacity of each of `services` that runs (others are left out).
    async fn levels(&self, services: &[String])
    -> Result<BTreeMap<String, Capacity>, TargetsError>;
    /// Makes `stored` effective at `now`: Kubernetes performs what is due (and is run again by
    /// cron); a cloud with scheduled actions replaces them with the schedule's. Returns the
    /// changes made.
    async fn enforce(&self, stored: Stored, now: Timestamp) -> Result<Vec<Change>, TargetsError>;
    /// Waits until each service has at least the given replicas Ready.
    async fn wait_ready(
        &self,
        wanted: &BTreeMap<String, u32>,
        clock: Arc<dyn Clock>,
    ) -> Result<(), TargetsError>;
}

/// A target that moves capacity itself when a window starts or ends (Kubernetes), rather than
/// leaving it to the cloud's scheduled actions.
#[async_trait]
pub trait SetsCapacity: Prewarmer {
    /// Moves one service's live version to `change.to`.
    async fn set(&self, change: &Change) -> Result<(), TargetsError>;
}

/// `enforce` for a [`SetsCapacity`] target: capture baselines first (so a crash never loses what
/// to restore), make the changes due at `now`, then store the result; returns the changes and
/// what is stored now.
pub async fn enforce_due<T: SetsCapacity + ?Sized>(
    prewarmer: &T,
    stored: Stored,
    now: Timestamp,
) -> Result<(Vec<Change>, Stored), TargetsError> {
    let services: Vec<String> = stored
        .schedule
        .windows
        .iter()
        .flat_map(|w| w.services().cloned())
        .chain(stored.schedule.baselines.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let current: BTreeMap<String, Level> = prewarmer
        .levels(&services)
        .await?
        .into_iter()
        .map(|(s, c)| (s, c.level))
        .collect();
    let due = prewarm::due(&stored.schedule, &current, now);
    let mut token = stored.token.clone();
    let mut saved = stored.schedule.clone();
    let captured = due
        .schedule
        .baselines
        .keys()
        .any(|s| !stored.schedule.baselines.contains_key(s));
    if captured {
        saved.baselines.extend(due.schedule.baselines.clone());
        token = Some(prewarmer.save(&saved, token.as_deref()).await?);
    }
    for change in &due.changes {
        prewarmer.set(change).await?;
    }
    if due.schedule != saved {
        token = Some(prewarmer.save(&due.schedule, token.as_deref()).await?);
    }
    Ok((
        due.changes,
        Stored {
            schedule: due.schedule,
            token,
        },
    ))
}

/// `convoy prewarm --at …`: the window and what it does to each service; stored unless
/// `dry_run`, then made effective at once (it may already be due).
pub struct Scheduled {
    pub window: Window,
    pub planned: Vec<PlannedService>,
    pub changes: Vec<Change>,
}

pub async fn schedule(
    prewarmer: &dyn Prewarmer,
    request: &PrewarmRequest,
    now: Timestamp,
    dry_run: bool,
) -> Result<Scheduled, TargetsError> {
    let stored = prewarmer.load().await?;
    let services: Vec<String> = request
        .services
        .iter()
        .chain(&request.paused)
        .cloned()
        .collect();
    let current = prewarmer
        .levels(&services)
        .await?
        .into_iter()
        .map(|(s, c)| (s, c.level))
        .collect();
    let (window, planned) = prewarm::plan_window(request, &stored.schedule, &current, now)?;
    let mut schedule = stored.schedule.clone();
    schedule.windows.push(window.clone());
    prewarmer.check(&schedule, now).await?;
    if dry_run {
        return Ok(Scheduled {
            window,
            planned,
            changes: Vec::new(),
        });
    }
    let token = prewarmer.save(&schedule, stored.token.as_deref()).await?;
    let changes = prewarmer
        .enforce(
            Stored {
                schedule,
                token: Some(token),
            },
            now,
        )
        .await?;
    Ok(Scheduled {
        window,
        planned,
        changes,
    })
}

/// `convoy prewarm cancel`: drops the window and gives its capacity back at once.
pub async fn cancel(
    prewarmer: &dyn Prewarmer,
    environment: &str,
    id: &str,
    now: Timestamp,
) -> Result<Vec<Change>, TargetsError> {
    let stored = prewarmer.load().await?;
    let schedule = prewarm::cancel(&stored.schedule, id, environment)?;
    let token = prewarmer.save(&schedule, stored.token.as_deref()).await?;
    prewarmer
        .enforce(
            Stored {
                schedule,
                token: Some(token),
            },
            now,
        )
        .await
}

/// `--now`: waits (within `budget`) until the services raised now are Ready at their capacity.
pub async fn wait_raised(
    prewarmer: &dyn Prewarmer,
    window: &Window,
    clock: Arc<dyn Clock>,
    budget: Duration,
) -> Result<(), TargetsError> {
    match tokio::time::timeout(budget, prewarmer.wait_ready(&window.capacity, clock)).await {
        Ok(result) => result,
        Err(_) => Err(TargetsError::NotReady {
            budget: humantime::format_duration(budget).to_string(),
        }),
    }
}

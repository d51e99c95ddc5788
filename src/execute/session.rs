//! One run against an environment: take the lease (renewed in the background), then deploy,
//! resume or roll back, recording the release. Target-agnostic: everything comes in as traits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::RolloutPolicy;
use crate::config::service_graph::ServiceGraph;
use crate::execute::abort::Abort;
use crate::execute::executor::Executor;
use crate::execute::lock::{Acquired, EnvLock, Holder, Lease, LockError};
use crate::execute::release::{Newest, ReleaseError, ReleaseKind, ReleaseRecord, ReleaseStore};
use crate::execute::reporter::{Event, Reporter};
use crate::execute::{Clock, Target, TargetError};
use crate::plan::revision::{Reason, Revision, reasons};
use crate::plan::{Action, Plan, PlanInput, ServiceState, plan};

/// How long a lease lasts without renewal; renewed every third of it while a run is alive.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Request {
    Deploy {
        desired: BTreeMap<String, String>,
    },
    /// Continue the unfinished release.
    Resume,
    /// Revert the unfinished release, or return to the versions of release `to` (default: the
    /// versions before the last successful release).
    Rollback {
        to: Option<u64>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("release {number} of `{environment}` is unfinished")]
    Unfinished { number: u64, environment: String },
    #[error("there is no unfinished release of `{environment}` to resume")]
    NothingToResume { environment: String },
    #[error("there is no earlier release of `{environment}` to roll back to")]
    NothingToRollBack { environment: String },
    #[error("interrupted before anything changed")]
    Interrupted,
    #[error("the values of {} changed since release {number} of `{environment}` started", services.join(", "))]
    ValuesChanged {
        number: u64,
        environment: String,
        services: Vec<String>,
    },
    #[error("lost the lock of `{environment}` to another run; stopped at once")]
    LockLost { environment: String },
    /// The target refused the release's objects before anything changed.
    #[error("release of `{environment}` refused before any change: {source}")]
    Preflight {
        environment: String,
        #[source]
        source: TargetError,
    },
}

impl crate::diagnostic::Diagnose for SessionError {
    fn help(&self) -> Option<String> {
        match self {
            SessionError::Lock(error) => error.help(),
            SessionError::Unfinished { environment, .. } => Some(format!(
                "`convoy deploy --env {environment} --resume` continues it; `convoy rollback --env {environment}` reverts it"
            )),
            SessionError::NothingToResume { environment } => Some(format!(
                "`convoy history --env {environment}` shows what ran"
            )),
            SessionError::NothingToRollBack { environment } => Some(format!(
                "`convoy history --env {environment}` lists the releases; pass `--to N`"
            )),
            // The target's own advice first, when it has some.
            SessionError::Preflight { source, .. } => Some(match source.help() {
                Some(help) => format!("{help}; nothing was changed and no release was recorded"),
                None => "nothing was changed and no release was recorded; fix the objects (`convoy render` shows them) and deploy again".to_string(),
            }),
            SessionError::LockLost { environment } => Some(format!(
                "someone broke or took over the lease; the journal is intact: `convoy status --env {environment}` shows the state, `convoy deploy --env {environment} --resume` or `convoy rollback --env {environment}` continues"
            )),
            SessionError::ValuesChanged { environment, .. } => Some(format!(
                "resume from the same commit with the same `--set` flags, or `convoy rollback --env {environment}` and deploy again"
            )),
            SessionError::Release(_) | SessionError::Target(_) | SessionError::Interrupted => None,
        }
    }
}

/// What a run ended with; `None` when there was nothing to do.
pub struct Finished {
    pub record: Option<ReleaseRecord>,
    pub took_over: Option<Lease>,
}

/// What a run has read already and a plan need not read again.
#[derive(Default)]
struct Known {
    /// The release records kept, newest first.
    records: Option<Vec<ReleaseRecord>>,
    /// The services as they run now.
    observed: Option<BTreeMap<String, ServiceState>>,
}

pub struct Session<'a> {
    pub environment: &'a str,
    pub policy: &'a RolloutPolicy,
    pub graph: &'a ServiceGraph,
    pub target: &'a dyn Target,
    pub releases: &'a dyn ReleaseStore,
    pub lock: Arc<dyn EnvLock>,
    pub clock: Arc<dyn Clock>,
    pub reporter: &'a dyn Reporter,
    pub holder: Holder,
    pub abort: Abort,
    /// The revision each service of this run's release would run, with what it is made of.
    pub revisions: &'a BTreeMap<String, Arc<Revision>>,
    /// Each service's release tasks by name (a deploy runs them; a rollback release does not).
    pub tasks: BTreeMap<String, BTreeMap<String, crate::config::Task>>,
    /// The environment's flags, for tasks under maintenance; `None` where the target has none.
    pub flags: Option<Arc<dyn crate::execute::FlagStore>>,
}

impl Session<'_> {
    /// The plan a deploy of `desired` would run now (for `convoy plan` and `--dry-run`).
    pub async fn plan(&self, desired: &BTreeMap<String, String>) -> Result<Plan, SessionError> {
        self.plan_with(desired, &self.tasks, Known::default()).await
    }

    /// The plan of a release of `desired` running `tasks`, from what the caller has read
    /// already (`known`) and what it has not.
    async fn plan_with(
        &self,
        desired: &BTreeMap<String, String>,
        tasks: &BTreeMap<String, BTreeMap<String, crate::config::Task>>,
        known: Known,
    ) -> Result<Plan, SessionError> {
        let services: Vec<String> = desired.keys().cloned().collect();
        let records = async {
            match known.records {
                Some(records) => Ok(records),
                None => self.releases.list(self.policy.history as usize).await,
            }
        };
        let observed = async {
            match known.observed {
                Some(observed) => Ok(observed),
                None => self.target.observe(&services).await,
            }
        };
        let (observed, records) = futures::join!(observed, records);
        let (mut observed, records) = (observed?, records?);
        most_recent_first(&mut observed, &records);
        let input = PlanInput {
            environment: self.environment,
            policy: self.policy,
            graph: self.graph,
            desired,
            observed: &observed,
            weighted_traffic: self.target.weighted_traffic(),
            tasks,
        };
        let mut plan = plan(&input, self.clock.now());
        self.explain(&mut plan, &records);
        Ok(plan)
    }

    /// Says why each service changes: its new revision against the live one's record.
    fn explain(&self, plan: &mut Plan, records: &[ReleaseRecord]) {
        for change in &mut plan.changes {
            let Some(new) = self.revisions.get(&change.service) else {
                continue;
            };
            change.reasons = match &change.from {
                None => vec![Reason::New],
                Some(live) => {
                    let old = recorded(records, &change.service, live);
                    reasons(old.map(Arc::as_ref), new, Vec::new())
                }
            };
        }
    }

    pub async fn run(&self, request: Request) -> Result<Finished, SessionError> {
        if self.abort.is_raised() {
            return Err(SessionError::Interrupted);
        }
        let token = self.holder.token(self.clock.now());
        let Acquired { lease, took_over } = self
            .lock
            .acquire(&self.holder, &token, LEASE_TTL, self.clock.now())
            .await?;
        let (lost, mut on_lost) = watch::channel(false);
        let renewal = self.spawn_renewal(lease.clone(), lost);
        // Losing the lease means another run may now write the same record: stop at once, at
        // the next await, with the journal as it is — like a second Ctrl-C, not a rollback.
        let result = tokio::select! {
            result = self.run_locked(request) => result,
            _ = on_lost.wait_for(|lost| *lost) => {
                return Err(SessionError::LockLost { environment: self.environment.to_string() });
            }
        };
        renewal.abort();
        let released = self.lock.release(&lease).await;
        let record = result?;
        released?;
        Ok(Finished { record, took_over })
    }

    fn spawn_renewal(
        &self,
        lease: Lease,
        lost: watch::Sender<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let lock = self.lock.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let mut lease = lease;
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                match lock.renew(&lease, LEASE_TTL, clock.now()).await {
                    Ok(renewed) => lease = renewed,
                    Err(_) => {
                        let _ = lost.send(true);
                        return;
                    }
                }
            }
        })
    }

    fn executor(&self) -> Executor<'_> {
        Executor {
            target: self.target,
            releases: self.releases,
            clock: self.clock.as_ref(),
            reporter: self.reporter,
            abort: self.abort.clone(),
            flags: self.flags.as_deref(),
        }
    }

    async fn run_locked(&self, request: Request) -> Result<Option<ReleaseRecord>, SessionError> {
        match request {
            Request::Deploy { desired } => self.deploy(desired).await,
            Request::Resume => self.resume().await,
            Request::Rollback { to } => self.roll_back(to).await,
        }
    }

    /// Continues the unfinished release, if the revisions it runs are still today's.
    async fn resume(&self) -> Result<Option<ReleaseRecord>, SessionError> {
        let unfinished = self.releases.latest().await?;
        let mut record = unfinished
            .filter(ReleaseRecord::is_unfinished)
            .ok_or_else(|| SessionError::NothingToResume {
                environment: self.environment.to_string(),
            })?;
        let changed: Vec<String> = record
            .revisions
            .iter()
            .filter(|(service, then)| {
                self.revisions
                    .get(*service)
                    .is_some_and(|now| now.id != then.id)
            })
            .map(|(service, _)| service.clone())
            .collect();
        if !changed.is_empty() {
            return Err(SessionError::ValuesChanged {
                number: record.number,
                environment: self.environment.to_string(),
                services: changed,
            });
        }
        let budget = self.policy.rollback_timeout.0;
        self.executor().run(&mut record, budget).await?;
        Ok(Some(record))
    }

    /// Reverts the unfinished release, or releases the versions of release `to` (by default
    /// those before the last successful release).
    async fn roll_back(&self, to: Option<u64>) -> Result<Option<ReleaseRecord>, SessionError> {
        // One read of the records: the release to revert, or every record — where to return,
        // then why each service changes (a thousand services' records are tens of megabytes of
        // JSON to decode, and only the newest is when it is unfinished).
        let records = match self.releases.unfinished_or_list(usize::MAX).await? {
            Newest::Unfinished(record) => {
                let mut record = *record;
                if to.is_some() {
                    return Err(SessionError::Unfinished {
                        number: record.number,
                        environment: self.environment.to_string(),
                    });
                }
                let budget = self.policy.rollback_timeout.0;
                self.executor()
                    .revert(&mut record, "rolled back by request", budget)
                    .await?;
                return Ok(Some(record));
            }
            Newest::Finished(records) => records,
        };
        let number = records.first().map_or(1, |r| r.number + 1);
        let (desired, to) = crate::execute::rollback_target(&records, to).ok_or_else(|| {
            SessionError::NothingToRollBack {
                environment: self.environment.to_string(),
            }
        })?;
        let known = Known {
            records: Some(records),
            observed: None,
        };
        let kind = ReleaseKind::Rollback { to };
        self.release(desired, kind, number, known).await
    }

    /// A new release to `desired`. The records kept are read once, beside the observation of
    /// the services: they say which deferred cleanups are due, the release's number, and why
    /// each service changes. The observation is read again only when a cleanup ran.
    async fn deploy(
        &self,
        desired: BTreeMap<String, String>,
    ) -> Result<Option<ReleaseRecord>, SessionError> {
        let services: Vec<String> = desired.keys().cloned().collect();
        // At least one: the newest record gives the next release its number.
        let kept = self.policy.history.max(1) as usize;
        let (observed, records) =
            futures::join!(self.target.observe(&services), self.releases.list(kept));
        let mut records = records?;
        if let Some(latest) = records.first().filter(|r| r.is_unfinished()) {
            return Err(SessionError::Unfinished {
                number: latest.number,
                environment: self.environment.to_string(),
            });
        }
        // Never fatal: old versions left around do no harm.
        let observed = match self.catch_up(&mut records).await {
            Ok(false) => Some(observed?),
            Ok(true) => None,
            Err(error) => {
                self.warn(format!("deferred cleanups were skipped: {error}"));
                None
            }
        };
        let number = records.first().map_or(1, |r| r.number + 1);
        let known = Known {
            records: Some(records),
            observed,
        };
        self.release(desired, ReleaseKind::Deploy, number, known)
            .await
    }

    fn warn(&self, message: String) {
        self.reporter.report(&Event::Warning { message });
    }

    /// Performs the cleanups `records` (newest first, none unfinished) deferred for
    /// `keep_warm`, once their time has come; whether any was due.
    async fn catch_up(&self, records: &mut [ReleaseRecord]) -> Result<bool, SessionError> {
        let mut ran = false;
        for record in records.iter_mut() {
            let (due, warnings) = self.executor().catch_up(record).await?;
            ran |= due;
            for warning in warnings {
                self.warn(format!(
                    "cleanup of release {} failed: {warning}",
                    record.number
                ));
            }
        }
        Ok(ran)
    }

    /// A new release to `desired`, planned from what is `known` already.
    async fn release(
        &self,
        desired: BTreeMap<String, String>,
        kind: ReleaseKind,
        number: u64,
        known: Known,
    ) -> Result<Option<ReleaseRecord>, SessionError> {
        // A return to earlier revisions runs no task: what a migration did stays (README), and
        // today's tasks are not those revisions' tasks.
        let no_tasks = BTreeMap::new();
        let tasks = match kind {
            ReleaseKind::Deploy => &self.tasks,
            ReleaseKind::Rollback { .. } => &no_tasks,
        };
        let plan = self.plan_with(&desired, tasks, known).await?;
        if plan.is_empty() {
            return Ok(None);
        }
        self.target
            .preflight(&preflighted(&plan, &kind), number)
            .await
            .map_err(|source| SessionError::Preflight {
                environment: self.environment.to_string(),
                source,
            })?;
        let mut record = ReleaseRecord::new(number, kind, self.holder.clone(), plan, desired);
        record.revisions = self
            .revisions
            .iter()
            .filter(|(service, r)| record.after.get(*service) == Some(&r.id))
            .map(|(s, r)| (s.clone(), r.clone()))
            .collect();
        record.values = record
            .revisions
            .iter()
            .map(|(s, r)| (s.clone(), r.digest.clone()))
            .collect();
        self.releases.complete(&mut record);
        self.executor()
            .record_and_run(&mut record, self.policy.rollback_timeout.0)
            .await?;
        Ok(Some(record))
    }
}

/// What the target checks before `plan` changes anything. A rollback's switches return to
/// revisions that served under the release it returns to — their Service and autoscaler were
/// accepted then — so only what it provisions anew (revisions made again from their records) is
/// checked: a rollback is not held up re-verifying what already ran.
fn preflighted<'p>(plan: &'p Plan, kind: &ReleaseKind) -> std::borrow::Cow<'p, Plan> {
    match kind {
        ReleaseKind::Deploy => std::borrow::Cow::Borrowed(plan),
        ReleaseKind::Rollback { .. } => {
            let mut checked = plan.clone();
            checked
                .steps
                .retain(|step| !matches!(step.action, Action::Switch { .. }));
            std::borrow::Cow::Owned(checked)
        }
    }
}

/// Orders each service's warm versions by when they were last live, most recent first, as the
/// release records (newest first) tell; versions no record names go last.
fn most_recent_first(observed: &mut BTreeMap<String, ServiceState>, records: &[ReleaseRecord]) {
    for (service, state) in observed.iter_mut() {
        let last_live = |version: &String| {
            let served = |r: &ReleaseRecord| {
                r.after.get(service) == Some(version)
                    || r.before
                        .get(service)
                        .is_some_and(|b| b.as_ref() == Some(version))
            };
            records.iter().position(served).unwrap_or(usize::MAX)
        };
        state.warm.sort_by_key(last_live);
    }
}

/// The record of `revision` of `service` in `records` (newest first), if one was kept.
pub fn recorded<'r>(
    records: &'r [ReleaseRecord],
    service: &str,
    revision: &str,
) -> Option<&'r Arc<Revision>> {
    records
        .iter()
        .filter_map(|r| r.revisions.get(service))
        .find(|r| r.id == revision)
}

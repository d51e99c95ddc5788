//! Walking a plan: every step whose dependencies succeeded starts at once (independent services
//! in parallel), each with its own time budget; every start and outcome is journaled in the
//! release record before anything else happens, so a killed run can be resumed or reverted.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::execute::abort::Abort;
use crate::execute::clock::Clock;
use crate::execute::flags::FlagStore;
use crate::execute::release::{
    JournalEntry, Outcome, ReleaseError, ReleaseRecord, ReleaseStore, StepEvent,
};
use crate::execute::reporter::{Event, Reporter};
use crate::execute::target::Target;
use crate::execute::walk_state::{Ready, WalkState, ready_steps, succeeded};
use crate::plan::{Action, Phase, Plan, Step, StepId, rollback_plan};

/// Why a walk stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: Option<StepId>,
    pub reason: String,
}

/// How one step failed: the error with its causes, and what to do about it when the target's
/// diagnosis says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub error: String,
    pub help: Option<String>,
}

impl StepFailure {
    pub(super) fn new(error: String) -> Self {
        StepFailure { error, help: None }
    }
}

enum Walk {
    Done,
    Failed(Failure),
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Deploy,
    Rollback,
}

impl Which {
    fn plan(self, record: &ReleaseRecord) -> Plan {
        match self {
            Which::Deploy => record.plan.clone(),
            Which::Rollback => record.rollback.clone().unwrap_or_else(|| Plan {
                steps: Vec::new(),
                ..record.plan.clone()
            }),
        }
    }

    fn journal(self, record: &ReleaseRecord) -> &[JournalEntry] {
        match self {
            Which::Deploy => &record.journal,
            Which::Rollback => &record.rollback_journal,
        }
    }
}

/// Whether a release's record is yet to be saved: the walk's first write saves it whole.
#[derive(Clone, Copy)]
struct Unrecorded(bool);

pub struct Executor<'a> {
    pub target: &'a dyn Target,
    pub releases: &'a dyn ReleaseStore,
    pub clock: &'a dyn Clock,
    pub reporter: &'a dyn Reporter,
    pub abort: Abort,
    /// The environment's flags, for tasks under maintenance; `None` where the target keeps none.
    pub flags: Option<&'a dyn FlagStore>,
}

impl Executor<'_> {
    /// Runs, or resumes, a release to its end: success, a clean rollback, or a failed rollback.
    /// Only a failure to write the journal is an error: then nothing else is safe to do.
    pub async fn run(
        &self,
        record: &mut ReleaseRecord,
        rollback_budget: Duration,
    ) -> Result<(), ReleaseError> {
        self.run_from(record, Unrecorded(false), rollback_budget)
            .await
    }

    /// Records a new release and runs it as [`Executor::run`] does. The record's first save is
    /// the walk's first journal write: it carries the first steps' `Started` entries, so no
    /// step waits for a save of the record and then another of its journal.
    pub async fn record_and_run(
        &self,
        record: &mut ReleaseRecord,
        rollback_budget: Duration,
    ) -> Result<(), ReleaseError> {
        self.run_from(record, Unrecorded(true), rollback_budget)
            .await
    }

    async fn run_from(
        &self,
        record: &mut ReleaseRecord,
        unrecorded: Unrecorded,
        rollback_budget: Duration,
    ) -> Result<(), ReleaseError> {
        if record.rollback.is_none() {
            match self.walk(record, Which::Deploy, None, unrecorded).await? {
                Walk::Done => return self.finish(record, Outcome::Succeeded).await,
                Walk::Failed(failure) => {
                    self.start_rollback(record, failure.reason, rollback_budget)
                        .await?
                }
            }
        }
        self.finish_rollback(record, rollback_budget).await
    }

    /// Reverts an unfinished release (`convoy rollback` after a killed deploy).
    pub async fn revert(
        &self,
        record: &mut ReleaseRecord,
        reason: &str,
        rollback_budget: Duration,
    ) -> Result<(), ReleaseError> {
        if record.rollback.is_none() {
            self.start_rollback(record, reason.to_string(), rollback_budget)
                .await?;
        }
        self.finish_rollback(record, rollback_budget).await
    }

    /// Runs the cleanup steps of a finished release that were deferred for `keep_warm` and whose
    /// time has come, journaling them into that release. A version that is live again (a
    /// rollback returned to it) is never retired. Returns whether any step ran (what the
    /// environment runs may have changed), and the steps that failed, as warnings.
    pub async fn catch_up(
        &self,
        record: &mut ReleaseRecord,
    ) -> Result<(bool, Vec<String>), ReleaseError> {
        let done = succeeded(&record.journal);
        let now = self.clock.now();
        let due: Vec<Step> = record
            .plan
            .steps
            .iter()
            .filter(|s| {
                record
                    .journal
                    .iter()
                    .any(|e| e.step == s.id && e.event == StepEvent::Deferred)
            })
            .filter(|s| !done.contains(&s.id) && s.not_before.is_none_or(|t| t <= now))
            .cloned()
            .collect();
        let mut warnings = Vec::new();
        let mut ran = false;
        // Retires first, all at once: one observation says which versions serve again (a
        // rollback returned to them) and are kept; the rest go together, their starts and their
        // ends each journaled in one write.
        let retiring: Vec<&Step> = due
            .iter()
            .filter(|s| matches!(s.action, Action::Retire { .. }))
            .collect();
        if !retiring.is_empty() {
            let services: Vec<String> = retiring.iter().map(|s| s.service.clone()).collect();
            let live = self.target.observe(&services).await.unwrap_or_default();
            let retiring: Vec<&Step> = retiring
                .into_iter()
                .filter(|step| {
                    let Action::Retire { version } = &step.action else {
                        return false;
                    };
                    let serving = live.get(&step.service).and_then(|s| s.live.as_ref());
                    serving != Some(version) // taking traffic again: a later release retires it
                })
                .collect();
            ran |= !retiring.is_empty();
            self.catch_up_steps(record, &retiring, &mut warnings)
                .await?;
        }
        for step in &due {
            if let Action::Task { .. } = &step.action {
                // An `after_cleanup` task runs once what it comes after did: a retire skipped
                // because its version serves again (a rollback) holds it back for good.
                let done = succeeded(&record.journal);
                if step.needs().all(|s| done.contains(&s)) {
                    ran = true;
                    self.catch_up_steps(record, &[step], &mut warnings).await?;
                }
            }
        }
        Ok((ran, warnings))
    }

    /// Deferred steps of a finished release, run together and journaled into it (their starts
    /// in one write before any acts, their ends in another); a failure is a warning.
    async fn catch_up_steps(
        &self,
        record: &mut ReleaseRecord,
        steps: &[&Step],
        warnings: &mut Vec<String>,
    ) -> Result<(), ReleaseError> {
        if steps.is_empty() {
            return Ok(());
        }
        for step in steps {
            self.push(record, Which::Deploy, step, StepEvent::Started);
        }
        self.releases.append(record, false, steps.len()).await?;
        let author = self.author(record);
        let results =
            futures::future::join_all(steps.iter().map(|step| self.perform_as(step, &author)))
                .await;
        for (step, result) in steps.iter().zip(results) {
            let event = match result {
                Ok(()) => StepEvent::Succeeded,
                Err(StepFailure { error, help }) => {
                    warnings.push(format!("{}: {error}", step.service));
                    StepEvent::Failed { error, help }
                }
            };
            self.push(record, Which::Deploy, step, event);
        }
        self.releases.append(record, false, steps.len()).await
    }

    async fn start_rollback(
        &self,
        record: &mut ReleaseRecord,
        reason: String,
        budget: Duration,
    ) -> Result<(), ReleaseError> {
        let started: BTreeSet<StepId> = record
            .journal
            .iter()
            .filter(|e| e.event == StepEvent::Started)
            .map(|e| e.step)
            .collect();
        let step_budget = crate::config::Dur(budget);
        record.rollback = Some(rollback_plan(
            &record.plan,
            &started,
            step_budget,
            self.clock.now(),
        ));
        record.failure = Some(reason.clone());
        self.releases.save(record).await?;
        self.reporter.report(&Event::RollbackStarted { reason });
        Ok(())
    }

    async fn finish_rollback(
        &self,
        record: &mut ReleaseRecord,
        budget: Duration,
    ) -> Result<(), ReleaseError> {
        let reason = record
            .failure
            .clone()
            .unwrap_or_else(|| "rolled back".to_string());
        let outcome = match self
            .walk(record, Which::Rollback, Some(budget), Unrecorded(false))
            .await?
        {
            Walk::Done => Outcome::RolledBack { reason },
            Walk::Failed(failure) => {
                let done = succeeded(&record.rollback_journal);
                let left = record
                    .rollback
                    .iter()
                    .flat_map(|plan| plan.steps.iter())
                    .filter(|step| !done.contains(&step.id))
                    .map(|step| format!("{}: {}", step.service, step.action))
                    .collect();
                Outcome::Failed {
                    reason: format!("{reason}; then the rollback failed: {}", failure.reason),
                    left,
                }
            }
        };
        self.finish(record, outcome).await
    }

    async fn finish(
        &self,
        record: &mut ReleaseRecord,
        outcome: Outcome,
    ) -> Result<(), ReleaseError> {
        self.end_maintenance(record).await;
        record.outcome = outcome;
        record.finished = Some(self.clock.now());
        self.releases.save(record).await?;
        let outcome = match &record.outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::RolledBack { .. } => "rolled back",
            Outcome::Failed { .. } => "failed",
            Outcome::InProgress => "in progress",
        };
        self.reporter.report(&Event::Finished {
            outcome: outcome.to_string(),
        });
        Ok(())
    }

    /// Adds an entry to the journal in memory; [`Executor::commit`] makes it durable.
    fn push(&self, record: &mut ReleaseRecord, which: Which, step: &Step, event: StepEvent) {
        let entry = JournalEntry {
            at: self.clock.now(),
            phase: step.phase,
            step: step.id,
            service: step.service.clone(),
            event,
        };
        match which {
            Which::Deploy => record.journal.push(entry),
            Which::Rollback => record.rollback_journal.push(entry),
        }
    }

    /// Makes the `unsaved` newest journal entries durable in one write (none: no write) and
    /// then reports their events: group commit for steps that start or end together.
    async fn commit(
        &self,
        record: &ReleaseRecord,
        which: Which,
        unsaved: &mut Vec<Event>,
        count: &mut usize,
        unrecorded: &mut Unrecorded,
    ) -> Result<(), ReleaseError> {
        if unrecorded.0 {
            self.releases.save(record).await?;
            *unrecorded = Unrecorded(false);
            *count = 0;
        } else if *count > 0 {
            self.releases
                .append(record, which == Which::Rollback, *count)
                .await?;
            *count = 0;
        }
        for event in unsaved.drain(..) {
            self.reporter.report(&event);
        }
        Ok(())
    }

    /// Performs what the plan's scheduling returns (journal, report, spawn) until every launched
    /// step has finished, a step fails, the budget runs out or Ctrl-C stops the deploy.
    async fn walk(
        &self,
        record: &mut ReleaseRecord,
        which: Which,
        budget: Option<Duration>,
        mut unrecorded: Unrecorded,
    ) -> Result<Walk, ReleaseError> {
        let plan = which.plan(record);
        let author = self.author(record);
        let author = &author;
        let mut state = WalkState::from_journal(which.journal(record));
        let mut abort = self.abort.receiver();
        let mut aborted = which == Which::Rollback; // a rollback is never interrupted by Ctrl-C
        let deadline = budget.map(|b| tokio::time::Instant::now() + b);
        let mut running = FuturesUnordered::new();
        let mut failure: Option<Failure> = None;
        // Entries journaled in memory and not yet durable, and their events to report once
        // they are: every step that finished meanwhile and every step that became ready share
        // one write, and a step starts only after its `Started` entry is durable.
        let mut unsaved = 0usize;
        let mut events = Vec::new();

        loop {
            let mut starting = Vec::new();
            if failure.is_none() {
                for ready in ready_steps(&plan, &state, self.clock.now()) {
                    state.launch(ready);
                    events.push(self.announce(record, which, ready));
                    unsaved += 1;
                    if let Ready::Start(step) = ready {
                        starting.push(step);
                    }
                }
            }
            self.commit(record, which, &mut events, &mut unsaved, &mut unrecorded)
                .await?;
            for step in starting {
                running.push(async move { (step, self.perform_as(step, author).await) });
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                Some((step, result)) = running.next() => {
                    let mut finished = vec![(step, result)];
                    // Others that finished meanwhile go into the same write.
                    while let Some(Some(done)) = running.next().now_or_never() {
                        finished.push(done);
                    }
                    for (step, result) in finished {
                        let (event, failed) = self.settle(record, which, &mut state, step, result);
                        events.push(event);
                        unsaved += 1;
                        if let Some(failed) = failed {
                            failure.get_or_insert(failed);
                        }
                    }
                }
                changed = abort.changed(), if !aborted => {
                    aborted = true;
                    // Once every switch is done the release has succeeded: only cleanup is left,
                    // and rolling back a healthy release for it would do harm.
                    let switched = plan.phase(Phase::Switch).all(|s| state.done.contains(&s.id));
                    if changed.is_ok() && *abort.borrow() && !switched {
                        failure.get_or_insert(Failure { step: None, reason: "interrupted (Ctrl-C)".to_string() });
                    }
                }
                () = sleep_until(deadline) => {
                    let budget = budget.map(|b| format!("{}", humantime::format_duration(b))).unwrap_or_default();
                    failure.get_or_insert(Failure { step: None, reason: format!("time budget of {budget} exhausted") });
                    break;
                }
            }
        }
        self.commit(record, which, &mut events, &mut unsaved, &mut unrecorded)
            .await?;
        Ok(match failure {
            Some(failure) => Walk::Failed(failure),
            None => Walk::Done,
        })
    }

    /// Journals (in memory) a step the walk starts or defers; returns the event to report.
    fn announce(&self, record: &mut ReleaseRecord, which: Which, ready: Ready<'_>) -> Event {
        let step = ready.step();
        let (event, report) = match ready {
            Ready::Start(_) => (
                StepEvent::Started,
                Event::StepStarted {
                    step: step.id,
                    phase: step.phase,
                    service: step.service.clone(),
                    action: step.action.to_string(),
                },
            ),
            Ready::Defer(_) => (
                StepEvent::Deferred,
                Event::StepDeferred {
                    step: step.id,
                    service: step.service.clone(),
                    until: step.not_before.map(|t| t.to_string()).unwrap_or_default(),
                },
            ),
        };
        self.push(record, which, step, event);
        report
    }

    /// Journals (in memory) a finished step; returns the event to report and, for a failure,
    /// the walk's failure — except in cleanup: a failed cleanup leaves an old version around,
    /// which is no reason to take a healthy release back; journaled and reported, not fatal.
    fn settle(
        &self,
        record: &mut ReleaseRecord,
        which: Which,
        state: &mut WalkState,
        step: &Step,
        result: Result<(), StepFailure>,
    ) -> (Event, Option<Failure>) {
        let (step_id, phase, service) = (step.id, step.phase, step.service.clone());
        let (event, report, failure) = match result {
            Ok(()) => {
                state.succeed(step.id);
                let report = Event::StepSucceeded {
                    step: step_id,
                    phase,
                    service,
                };
                (StepEvent::Succeeded, report, None)
            }
            Err(StepFailure { error, help }) => {
                let failure = (phase != Phase::Cleanup).then(|| Failure {
                    step: Some(step_id),
                    reason: format!("{service}: {error}"),
                });
                let report = Event::StepFailed {
                    step: step_id,
                    phase,
                    service,
                    error: error.clone(),
                    help: help.clone(),
                };
                (StepEvent::Failed { error, help }, report, failure)
            }
        };
        self.push(record, which, step, event);
        (report, failure)
    }

    /// One step: the target's action and health gate, then the bake and a re-check, in budget.
    pub(super) async fn perform(&self, step: &Step) -> Result<(), StepFailure> {
        let work = async {
            self.target.apply(step).await?;
            if let Action::Switch { to, bake, .. } = &step.action
                && !bake.0.is_zero()
            {
                tokio::time::sleep(bake.0).await;
                self.target.verify(&step.service, to).await?;
            }
            Ok::<(), crate::execute::TargetError>(())
        };
        match tokio::time::timeout(step.timeout.0, work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(StepFailure {
                error: crate::diagnostic::chain(&error),
                help: crate::diagnostic::Diagnose::help(&error),
            }),
            Err(_) => Err(StepFailure::new(format!(
                "{} timed out after {}",
                step.action, step.timeout
            ))),
        }
    }
}

/// Never, without a deadline.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

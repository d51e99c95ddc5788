//! The executor against the in-memory target and release store, in tokio's paused time:
//! parallel provisioning, gates, timeouts, Ctrl-C, deferred cleanup, and a kill at every step
//! boundary followed by a resume or a revert.

use std::collections::BTreeMap;
use std::time::Duration;

use convoy::config::service_graph::ServiceGraph;
use convoy::config::{Dur, Percent, RolloutPolicy, Strategy};
use convoy::execute::{
    Abort, Clock, Executor, Holder, Outcome, RecordingReporter, ReleaseKind, ReleaseRecord,
    ReleaseStore, StepEvent, Target, TokioClock,
};
use convoy::plan::{Action, Phase, PlanInput, plan};
use convoy_test_support::memory::{Fault, FaultOn, MemoryReleases, MemoryTarget};

const ROLLBACK_BUDGET: Duration = Duration::from_secs(300);

fn graph() -> ServiceGraph {
    let edges: Vec<(String, Vec<String>)> = vec![
        ("payments".into(), vec![]),
        ("api".into(), vec!["payments".into()]),
        ("web".into(), vec!["api".into()]),
        ("worker".into(), vec!["api".into()]),
    ];
    ServiceGraph::new(edges.iter().map(|(s, d)| (s.as_str(), d.as_slice())))
}

fn policy(keep_warm: u64) -> RolloutPolicy {
    RolloutPolicy {
        strategy: Strategy::Canary,
        steps: vec![Percent(50), Percent(100)],
        bake: Dur::secs(30),
        keep_warm: Dur::secs(keep_warm),
        ..RolloutPolicy::default()
    }
}

const OLD: &[(&str, &str)] = &[
    ("payments", "p1"),
    ("api", "a1"),
    ("web", "w1"),
    ("worker", "k1"),
];
const NEW: &[(&str, &str)] = &[
    ("payments", "p2"),
    ("api", "a2"),
    ("web", "w2"),
    ("worker", "k2"),
];

struct Fixture {
    target: MemoryTarget,
    releases: MemoryReleases,
    reporter: RecordingReporter,
    clock: TokioClock,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            target: MemoryTarget::serving(OLD, Duration::from_secs(2)),
            releases: MemoryReleases::default(),
            reporter: RecordingReporter::default(),
            clock: TokioClock::starting_at("2026-11-22T10:00:00Z".parse().unwrap()),
        }
    }

    fn executor(&self, abort: Abort) -> Executor<'_> {
        Executor {
            target: &self.target,
            releases: &self.releases,
            clock: &self.clock,
            reporter: &self.reporter,
            abort,
            flags: None,
        }
    }

    async fn record(&self, keep_warm: u64) -> ReleaseRecord {
        let services: Vec<String> = NEW.iter().map(|(s, _)| s.to_string()).collect();
        let observed = self.target.observe(&services).await.unwrap();
        let desired: BTreeMap<String, String> = NEW
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect();
        let graph = graph();
        let policy = policy(keep_warm);
        let input = PlanInput {
            environment: "production",
            policy: &policy,
            graph: &graph,
            desired: &desired,
            observed: &observed,
            weighted_traffic: true,
            tasks: &BTreeMap::new(),
        };
        let plan = plan(&input, self.clock.now());
        let who = Holder {
            user: "test".into(),
            host: "here".into(),
            ci: None,
            pid: 1,
            pid_namespace: None,
        };
        ReleaseRecord::new(1, ReleaseKind::Deploy, who, plan, desired)
    }

    fn serving(&self) -> BTreeMap<String, String> {
        self.target
            .snapshot()
            .into_iter()
            .map(|(s, f)| (s, f.serving().unwrap_or("(split)").to_string()))
            .collect()
    }

    /// Every service serves exactly one version, and nothing else runs beside it except `extra`.
    fn assert_clean(&self, expected: &[(&str, &str)], extra_running: usize) {
        let want: BTreeMap<String, String> = expected
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect();
        assert_eq!(self.serving(), want);
        let running: usize = self
            .target
            .snapshot()
            .values()
            .map(|s| s.running.len())
            .sum();
        assert_eq!(
            running,
            expected.len() + extra_running,
            "{:?}",
            self.target.snapshot()
        );
    }
}

fn fault(service: &str, version: &str, on: FaultOn) -> Fault {
    Fault {
        service: service.into(),
        version: version.into(),
        on,
        hang: false,
        help: None,
    }
}

#[tokio::test(start_paused = true)]
async fn success_switches_everything_and_retires_the_old_versions() {
    let f = Fixture::new();
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    f.assert_clean(NEW, 0);
    // Every step journaled as started and then succeeded.
    for step in &record.plan.steps {
        let events: Vec<&StepEvent> = record
            .journal
            .iter()
            .filter(|e| e.step == step.id)
            .map(|e| &e.event)
            .collect();
        assert_eq!(
            events,
            vec![&StepEvent::Started, &StepEvent::Succeeded],
            "step {}",
            step.id
        );
    }
    let stored = f.releases.load(1).await.unwrap().unwrap();
    assert_eq!(stored, record);
}

#[tokio::test(start_paused = true)]
async fn independent_services_provision_in_parallel() {
    let f = Fixture::new();
    let mut record = f.record(0).await;
    let start = tokio::time::Instant::now();
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    // `provision: parallel` (the default): every new revision at once, one 2 s provision, not
    // 4 × 2 s. Switch chain: payments → api → {web, worker} with two 30 s bakes each: 3 × 60 s.
    assert_eq!(start.elapsed(), Duration::from_secs(2 + 3 * 60));
}

#[tokio::test(start_paused = true)]
async fn steps_that_start_or_end_together_share_one_journal_write() {
    let f = Fixture::new();
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    let lengths = f.releases.journal_lengths.lock().unwrap().clone();
    // The four provisions start together: one write of their four `Started` entries.
    assert_eq!(lengths[0], 4, "{lengths:?}");
    // They end together, which makes payments' first switch step ready: one write of the four
    // `Succeeded` entries and its `Started` entry, made before that step acts.
    assert_eq!(lengths[1], 9, "{lengths:?}");
    assert_eq!(
        record.journal[8].event,
        StepEvent::Started,
        "{:?}",
        record.journal[8]
    );
    // Every entry is durable, in fewer writes than entries, and no write repeats the last one
    // except the record's final save with its outcome.
    assert_eq!(lengths.last(), Some(&record.journal.len()));
    assert!(lengths.len() < record.journal.len(), "{lengths:?}");
    let growing = &lengths[..lengths.len() - 1];
    assert!(growing.windows(2).all(|w| w[1] > w[0]), "{lengths:?}");
}

#[tokio::test(start_paused = true)]
async fn gate_failure_mid_switch_reverts_only_switched_services_in_reverse_order() {
    let f = Fixture::new();
    f.target
        .fault(fault("web", "w2", FaultOn::Switch(Some(100))));
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    assert!(
        matches!(&record.outcome, Outcome::RolledBack { reason } if reason.contains("web")),
        "{:?}",
        record.outcome
    );
    f.assert_clean(OLD, 0);
    let rollback: Vec<String> = record
        .rollback
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Switch { .. }))
        .map(|s| s.service.clone())
        .collect();
    // worker may have switched in parallel with web; whatever switched goes back clients first.
    let api = rollback.iter().position(|s| s == "api").unwrap();
    let payments = rollback.iter().position(|s| s == "payments").unwrap();
    let web = rollback.iter().position(|s| s == "web").unwrap();
    assert!(web < api && api < payments, "{rollback:?}");
}

#[tokio::test(start_paused = true)]
async fn provision_failure_moves_no_traffic_and_leaves_no_debris() {
    let f = Fixture::new();
    f.target.fault(fault("api", "a2", FaultOn::Provision));
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    assert!(matches!(record.outcome, Outcome::RolledBack { .. }));
    assert!(
        f.target.actions().iter().all(|a| !a.contains("switch")),
        "{:?}",
        f.target.actions()
    );
    f.assert_clean(OLD, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_step_times_out_and_rolls_back() {
    let f = Fixture::new();
    f.target.fault(Fault {
        hang: true,
        ..fault("payments", "p2", FaultOn::Provision)
    });
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    let failed = record.journal.iter().find_map(|e| match &e.event {
        StepEvent::Failed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert!(failed.unwrap().contains("timed out after 10m"));
    f.assert_clean(OLD, 0);
}

#[tokio::test(start_paused = true)]
async fn failure_during_rollback_is_reported_with_what_is_left() {
    let f = Fixture::new();
    f.target.fault(fault("web", "w2", FaultOn::Verify));
    f.target.fault(fault("api", "a1", FaultOn::Switch(None)));
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    match &record.outcome {
        Outcome::Failed { reason, left } => {
            assert!(reason.contains("rollback failed"), "{reason}");
            assert!(
                left.iter()
                    .any(|l| l.starts_with("api: switch 100% a2 → a1")),
                "{left:?}"
            );
        }
        other => panic!("expected a failed rollback, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_aborts_into_a_rollback() {
    let f = Fixture::new();
    let mut record = f.record(0).await;
    let (interrupt, abort) = Abort::new();
    let executor = f.executor(abort);
    let run = executor.run(&mut record, ROLLBACK_BUDGET);
    let press = async {
        tokio::time::sleep(Duration::from_secs(70)).await; // during payments' canary bake
        interrupt.send(true).unwrap();
        std::future::pending::<()>().await
    };
    tokio::select! { result = run => result.unwrap(), () = press => unreachable!() }
    assert!(matches!(&record.outcome, Outcome::RolledBack { reason } if reason.contains("Ctrl-C")));
    f.assert_clean(OLD, 0);
}

#[tokio::test(start_paused = true)]
async fn cleanup_is_deferred_until_keep_warm_has_passed() {
    let f = Fixture::new();
    let mut record = f.record(900).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    let deferred = record
        .journal
        .iter()
        .filter(|e| e.event == StepEvent::Deferred)
        .count();
    assert_eq!(deferred, record.plan.phase(Phase::Cleanup).count());
    // New versions serve; old ones stay warm for an instant rollback.
    f.assert_clean(NEW, 4);
}

/// Kills the run at the n-th journal write, for every n, then resumes it (or reverts it) with a
/// fresh executor from the stored record. Each ends with every service on one healthy version.
#[tokio::test(start_paused = true)]
async fn a_kill_at_every_step_boundary_can_be_resumed_or_reverted() {
    let total_saves = {
        let f = Fixture::new();
        let mut record = f.record(0).await;
        f.executor(Abort::never())
            .run(&mut record, ROLLBACK_BUDGET)
            .await
            .unwrap();
        *f.releases.saves.lock().unwrap()
    };
    for kill_at in 0..total_saves {
        for revert in [false, true] {
            let f = Fixture::new();
            let mut record = f.record(0).await;
            f.releases.save(&record).await.unwrap();
            f.releases.kill_after(kill_at);
            let executor = f.executor(Abort::never());
            let killed = tokio::time::timeout(
                Duration::from_secs(3600),
                executor.run(&mut record, ROLLBACK_BUDGET),
            )
            .await;
            assert!(
                killed.is_err(),
                "kill at save {kill_at} did not stop the run"
            );
            drop(executor);
            f.releases.revive();

            let mut stored = f.releases.latest().await.unwrap().unwrap();
            assert!(
                stored.is_unfinished(),
                "kill at {kill_at}: {:?}",
                stored.outcome
            );
            let executor = f.executor(Abort::never());
            if revert {
                executor
                    .revert(&mut stored, "reverted after a kill", ROLLBACK_BUDGET)
                    .await
                    .unwrap();
                assert!(
                    matches!(stored.outcome, Outcome::RolledBack { .. }),
                    "kill at {kill_at}"
                );
                f.assert_clean(OLD, 0);
            } else {
                executor.run(&mut stored, ROLLBACK_BUDGET).await.unwrap();
                assert_eq!(stored.outcome, Outcome::Succeeded, "kill at {kill_at}");
                f.assert_clean(NEW, 0);
            }
            assert_eq!(
                f.releases.latest().await.unwrap().unwrap(),
                stored,
                "record intact after kill at {kill_at}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn deferred_cleanups_run_once_their_time_has_come_but_never_on_a_live_version() {
    let f = Fixture::new();
    let mut record = f.record(900).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    f.assert_clean(NEW, 4);

    // Too early: nothing is due, nothing happens.
    let (ran, warnings) = f
        .executor(Abort::never())
        .catch_up(&mut record)
        .await
        .unwrap();
    assert!(!ran && warnings.is_empty());
    f.assert_clean(NEW, 4);

    // Meanwhile api was rolled back by hand to a1: its old version takes traffic again.
    {
        let mut services = f.target.services.lock().unwrap();
        let api = services.get_mut("api").unwrap();
        api.traffic = [("a1".to_string(), 100)].into();
    }
    tokio::time::advance(Duration::from_secs(901)).await;
    let saves_before = f.releases.journal_lengths.lock().unwrap().len();
    let (ran, _) = f
        .executor(Abort::never())
        .catch_up(&mut record)
        .await
        .unwrap();
    assert!(ran, "the due retires ran");
    // The three due retires go together: their starts in one write before any acts, their
    // ends in another.
    let lengths = f.releases.journal_lengths.lock().unwrap()[saves_before..].to_vec();
    let journal = record.journal.len();
    assert_eq!(lengths, vec![journal - 3, journal], "{lengths:?}");
    let running: BTreeMap<String, usize> = f
        .target
        .snapshot()
        .into_iter()
        .map(|(s, v)| (s, v.running.len()))
        .collect();
    assert_eq!(running["payments"], 1, "p1 retired");
    assert_eq!(running["api"], 2, "a1 is live again and must stay");
    // Journaled into the old release, so the catch-up happens once.
    let retired = record
        .journal
        .iter()
        .filter(|e| e.event == StepEvent::Succeeded && e.phase == Phase::Cleanup)
        .count();
    assert_eq!(retired, 3);
    let before = f.target.actions().len();
    let (ran, _) = f
        .executor(Abort::never())
        .catch_up(&mut record)
        .await
        .unwrap();
    assert!(!ran, "nothing left to run: a1 serves, the rest are done");
    assert_eq!(f.target.actions().len(), before);
}

#[tokio::test(start_paused = true)]
async fn a_failed_cleanup_is_a_warning_not_a_rollback() {
    let f = Fixture::new();
    f.target.fault(fault("payments", "p1", FaultOn::Remove));
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert!(
        record
            .journal
            .iter()
            .any(|e| e.phase == Phase::Cleanup && matches!(e.event, StepEvent::Failed { .. }))
    );
    assert_eq!(
        f.serving()["payments"],
        "p2",
        "the new version keeps serving"
    );
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_during_cleanup_does_not_take_a_healthy_release_back() {
    let f = Fixture::new();
    f.target.fault(Fault {
        hang: true,
        ..fault("payments", "p1", FaultOn::Remove)
    });
    let mut record = f.record(0).await;
    let (interrupt, abort) = Abort::new();
    let executor = f.executor(abort);
    let run = executor.run(&mut record, ROLLBACK_BUDGET);
    let press = async {
        // Past every switch (3 × 2 s provisions + 3 × 60 s of bakes), during the hanging cleanup.
        tokio::time::sleep(Duration::from_secs(200)).await;
        interrupt.send(true).unwrap();
        std::future::pending::<()>().await
    };
    tokio::select! { result = run => result.unwrap(), () = press => unreachable!() }
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert_eq!(f.serving()["api"], "a2");
}

/// Regression (issue 17): the executor flattened a target's structured error into a string, so
/// its `help:` line never reached the user.
#[tokio::test(start_paused = true)]
async fn a_targets_help_line_survives_into_the_journal_and_the_report() {
    let f = Fixture::new();
    f.target.fault(Fault {
        help: Some("apply manifests/rbac.yaml".into()),
        ..fault("api", "a2", FaultOn::Provision)
    });
    let mut record = f.record(0).await;
    f.executor(Abort::never())
        .run(&mut record, ROLLBACK_BUDGET)
        .await
        .unwrap();
    let journaled = record.journal.iter().find_map(|e| match &e.event {
        StepEvent::Failed { help, .. } => help.clone(),
        _ => None,
    });
    assert_eq!(journaled.as_deref(), Some("apply manifests/rbac.yaml"));
    let reported = f.reporter.events().into_iter().find_map(|e| match e {
        convoy::execute::Event::StepFailed { help, .. } => help,
        _ => None,
    });
    assert_eq!(reported.as_deref(), Some("apply manifests/rbac.yaml"));
}

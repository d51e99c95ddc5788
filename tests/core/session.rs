//! A session (lease, journal, Ctrl-C) against the in-memory target, release store and lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use convoy::config::RolloutPolicy;
use convoy::config::service_graph::ServiceGraph;
use convoy::execute::{
    Abort, EnvLock, Holder, RecordingReporter, ReleaseStore, Request, Session, SessionError,
    TokioClock,
};
use convoy_test_support::memory::{MemoryLock, MemoryReleases, MemoryTarget};

struct World {
    target: MemoryTarget,
    releases: MemoryReleases,
    lock: Arc<MemoryLock>,
    reporter: RecordingReporter,
    graph: ServiceGraph,
    policy: RolloutPolicy,
    /// The session's revisions: none (what the release records is not under test here).
    revisions: BTreeMap<String, Arc<convoy::plan::revision::Revision>>,
}

fn world() -> World {
    let edges: Vec<(String, Vec<String>)> = vec![("api".into(), vec![])];
    World {
        target: MemoryTarget::serving(&[("api", "a1")], Duration::from_secs(90)),
        releases: MemoryReleases::default(),
        lock: Arc::new(MemoryLock::default()),
        reporter: RecordingReporter::default(),
        graph: ServiceGraph::new(edges.iter().map(|(s, d)| (s.as_str(), d.as_slice()))),
        policy: RolloutPolicy::default(),
        revisions: BTreeMap::new(),
    }
}

fn session(w: &World, abort: Abort) -> Session<'_> {
    Session {
        environment: "production",
        policy: &w.policy,
        graph: &w.graph,
        target: &w.target,
        releases: &w.releases,
        lock: w.lock.clone(),
        clock: Arc::new(TokioClock::starting_at(
            "2026-11-22T10:00:00Z".parse().unwrap(),
        )),
        reporter: &w.reporter,
        holder: Holder {
            user: "me".into(),
            host: "here".into(),
            ci: None,
            pid: 1,
            pid_namespace: None,
        },
        abort,
        revisions: &w.revisions,
        tasks: BTreeMap::new(),
        flags: None,
    }
}

fn deploy_a2() -> Request {
    Request::Deploy {
        desired: [("api".to_string(), "a2".to_string())].into(),
    }
}

fn deploy_a3() -> Request {
    Request::Deploy {
        desired: [("api".to_string(), "a3".to_string())].into(),
    }
}

/// A session twenty minutes after [`session`]'s: past a `keep_warm` of ten.
fn later(w: &World) -> Session<'_> {
    Session {
        clock: Arc::new(TokioClock::starting_at(
            "2026-11-22T10:20:00Z".parse().unwrap(),
        )),
        ..session(w, Abort::never())
    }
}

#[tokio::test(start_paused = true)]
async fn losing_the_lease_stops_at_once_with_the_journal_intact() {
    let w = world();
    let breaker = async {
        // The provision takes 90 s; the lease is renewed every 20 s. Break it at 30 s.
        tokio::time::sleep(Duration::from_secs(30)).await;
        w.lock.break_lock().await.unwrap();
        std::future::pending::<()>().await
    };
    let session = session(&w, Abort::never());
    let error = tokio::select! { r = session.run(deploy_a2()) => r.err().unwrap(), () = breaker => unreachable!() };
    assert!(matches!(error, SessionError::LockLost { .. }), "{error}");
    let record = w.releases.latest().await.unwrap().unwrap();
    assert!(
        record.is_unfinished(),
        "left for --resume or rollback, not rolled back without the lock"
    );
    assert!(w.target.actions().iter().all(|a| !a.contains("remove")));
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_before_the_run_changes_nothing() {
    let w = world();
    let (interrupt, abort) = Abort::new();
    interrupt.send(true).unwrap();
    let error = session(&w, abort).run(deploy_a2()).await.err().unwrap();
    assert!(matches!(error, SessionError::Interrupted));
    assert_eq!(w.lock.status().await.unwrap(), None);
    assert!(w.target.actions().is_empty());
    assert!(w.releases.latest().await.unwrap().is_none());
}

/// Regression (issue 17): a deferred cleanup that failed was printed with `eprintln!`, past the
/// reporter, so `--output json` consumers never saw it.
#[tokio::test(start_paused = true)]
async fn a_failed_deferred_cleanup_is_a_warning_through_the_reporter() {
    use convoy::config::Dur;
    use convoy::execute::Event;
    use convoy_test_support::memory::{Fault, FaultOn};

    let mut w = world();
    w.policy.keep_warm = Dur::secs(600);
    session(&w, Abort::never()).run(deploy_a2()).await.unwrap();
    w.target.fault(Fault {
        service: "api".into(),
        version: "a1".into(),
        on: FaultOn::Remove,
        hang: false,
        help: None,
    });
    // Past keep_warm: the next deploy catches up on the deferred retire of a1, which fails.
    let later = later(&w);
    later.run(deploy_a3()).await.unwrap();
    let warned = w.reporter.events().into_iter().any(|event| {
        matches!(event, Event::Warning { message } if message.contains("cleanup of release 1 failed"))
    });
    assert!(warned, "{:?}", w.reporter.events());
}

/// A deploy reads the kept records once (deferred cleanups, its number, why each service
/// changes) — each read is a round trip to the cluster before the first step.
#[tokio::test(start_paused = true)]
async fn a_deploy_reads_the_release_records_once() {
    let w = world();
    session(&w, Abort::never()).run(deploy_a2()).await.unwrap();
    let before = *w.releases.reads.lock().unwrap();
    let record = session(&w, Abort::never()).run(deploy_a3()).await.unwrap();
    assert_eq!(record.record.unwrap().number, 2);
    assert_eq!(*w.releases.reads.lock().unwrap() - before, 1);
}

/// A rollback reads the records once — the newest alone when it is unfinished (the release to
/// revert), else every record (where to return) — not the newest and then all of them: each
/// read is a round trip to the cluster before its first step.
#[tokio::test(start_paused = true)]
async fn a_rollback_reads_the_release_records_once() {
    use convoy::config::Dur;
    use convoy::execute::Outcome;

    let mut w = world();
    w.policy.keep_warm = Dur::secs(600);
    session(&w, Abort::never()).run(deploy_a2()).await.unwrap();
    let reads = || *w.releases.reads.lock().unwrap();
    let before = reads();
    let back = session(&w, Abort::never())
        .run(Request::Rollback { to: None })
        .await
        .unwrap();
    assert_eq!(back.record.unwrap().number, 2, "a1 is warm: switched back");
    assert_eq!(reads() - before, 1, "a rollback to a warm revision");

    // Killed at its second save (the first step's end), release 3 is left unfinished.
    w.releases.kill_after(1);
    let killed = tokio::time::timeout(
        Duration::from_secs(60),
        session(&w, Abort::never()).run(deploy_a3()),
    )
    .await;
    assert!(killed.is_err(), "hangs at its second save");
    w.releases.revive();
    let before = reads();
    let back = session(&w, Abort::never())
        .run(Request::Rollback { to: None })
        .await
        .unwrap();
    let record = back.record.unwrap();
    assert_eq!(record.number, 3, "the unfinished release is reverted");
    assert!(
        matches!(record.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        record.outcome
    );
    assert_eq!(reads() - before, 1, "a killed release's rollback");
}

/// A new release's record is first saved with its first steps' `Started` entries, and before
/// any step acts: the first step waits for one write, not a save of the record and then one of
/// its journal. Killed at that save, nothing was done.
#[tokio::test(start_paused = true)]
async fn a_new_release_is_recorded_with_its_first_steps_started_before_they_act() {
    let w = world();
    w.releases.kill_after(0);
    let killed = tokio::time::timeout(
        Duration::from_secs(5),
        session(&w, Abort::never()).run(deploy_a2()),
    )
    .await;
    assert!(killed.is_err(), "hangs at its first save");
    assert!(w.target.actions().is_empty(), "{:?}", w.target.actions());
    w.releases.revive();

    let w = world();
    session(&w, Abort::never()).run(deploy_a2()).await.unwrap();
    let lengths = w.releases.journal_lengths.lock().unwrap().clone();
    assert_eq!(
        lengths.first(),
        Some(&1),
        "saved with provision a2 started: {lengths:?}"
    );
}

/// The observation a deploy plans from is read beside the records, before the deferred
/// cleanups run; when one ran, the plan is made from what it left, not from before it.
#[tokio::test(start_paused = true)]
async fn a_deploy_after_a_deferred_cleanup_plans_from_what_the_cleanup_left() {
    use convoy::config::Dur;
    use convoy::plan::Action;

    let mut w = world();
    w.policy.keep_warm = Dur::secs(600);
    session(&w, Abort::never()).run(deploy_a2()).await.unwrap();
    assert!(
        w.target.snapshot()["api"].running.contains("a1"),
        "a1 kept warm"
    );
    let later = later(&w);
    let record = later.run(deploy_a3()).await.unwrap().record.unwrap();
    let touches_a1 = record.plan.steps.iter().any(|step| match &step.action {
        Action::Retire { version } => version == "a1",
        _ => false,
    });
    assert!(
        !touches_a1,
        "a1 was retired by the catch-up: {:?}",
        record.plan.steps
    );
    assert!(!w.target.snapshot()["api"].running.contains("a1"));
}

#[tokio::test(start_paused = true)]
async fn a_rollback_checks_before_it_acts_only_what_it_provisions_not_its_switch_backs() {
    use convoy::config::Dur;

    let mut w = world();
    w.policy.keep_warm = Dur::secs(600);
    session(&w, Abort::never()).run(deploy_a2()).await.unwrap();
    let back = session(&w, Abort::never())
        .run(Request::Rollback { to: None })
        .await
        .unwrap();
    assert!(
        back.record.is_some(),
        "a1 is warm: the rollback switches back to it"
    );
    let preflights = w.target.preflights.lock().unwrap().clone();
    let [deploy, rollback] = preflights.as_slice() else {
        panic!("one check per release: {preflights:?}");
    };
    assert!(
        deploy.iter().any(|s| s.starts_with("api switch")),
        "{deploy:?}"
    );
    assert!(
        rollback.iter().all(|s| !s.contains("switch")),
        "{rollback:?}"
    );
    let switched_back = w
        .target
        .actions()
        .iter()
        .any(|a| a.starts_with("api switch") && a.contains("a1"));
    assert!(switched_back, "{:?}", w.target.actions());
}

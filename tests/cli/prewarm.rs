//! Pre-warming on Kubernetes against a real cluster (or the test API server): `apply` before,
//! during and after a window with the clock as an input, background work paused and restored,
//! `--now` waiting for Ready capacity, and a deploy during a window keeping the capacity; then
//! the binary end to end (plan, store, list, status, deploy during a window, cancel).

use std::sync::Arc;
use std::time::Duration;

use convoy::config::Strategy;
use convoy::execute::{Clock, SystemClock, Target};
use convoy::ops::prewarm_at::parse_at;
use convoy::plan::prewarm::{CapacityRule, PrewarmRequest, Reason, Schedule};
use convoy::plan::{Action, Phase, Step, StepId};
use convoy::targets::kubernetes::prewarm::KubePrewarm;
use convoy::targets::kubernetes::{Applier, Connection, KubeTarget, Renderer};
use convoy::targets::prewarm::{self, Prewarmer};
use convoy_test_support::cluster::Cluster;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::kubernetes::project;
use crate::kubernetes_e2e::{edit, repo, world};

/// A clock stopped at one moment.
struct At(Timestamp);

impl Clock for At {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// The spike every library test plans for; `now` is always given relative to it.
const SPIKE: &str = "2030-06-01T10:00:00+02:00[Europe/Berlin]";

fn spike() -> Timestamp {
    parse_at(SPIKE).unwrap().timestamp()
}

fn minutes(m: i64) -> Timestamp {
    spike() + SignedDuration::from_mins(m)
}

struct Fixture {
    cluster: Cluster,
    project: convoy::config::Project,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::on(Cluster::start().await)
    }

    fn on(cluster: Cluster) -> Fixture {
        let (dir, project) = project();
        Fixture {
            cluster,
            project,
            _dir: dir,
        }
    }

    fn target(&self, prewarm: Schedule) -> KubeTarget {
        self.target_at(prewarm, Arc::new(SystemClock))
    }

    /// A target whose clock reads what the test says (prewarm windows are in 2030).
    fn target_at(&self, prewarm: Schedule, clock: Arc<dyn Clock>) -> KubeTarget {
        KubeTarget::new(
            Applier {
                client: self.cluster.client.clone(),
                namespace: self.cluster.namespace.clone(),
            },
            Renderer::new(
                Arc::new(self.project.clone()),
                "staging",
                &[],
                &self.cluster.namespace,
            ),
            None,
            clock,
            Strategy::Bluegreen,
            vec![100],
        )
        .with_prewarm(prewarm)
    }

    fn prewarmer(&self) -> KubePrewarm {
        KubePrewarm::new(
            Connection {
                client: self.cluster.client.clone(),
                namespace: self.cluster.namespace.clone(),
            },
            "staging",
        )
    }

    /// Provisions `version` of `service` and gives it all traffic.
    async fn deploy(&self, target: &KubeTarget, service: &str, from: Option<&str>, version: &str) {
        let step = |action| Step {
            id: StepId(0),
            phase: Phase::Provision,
            service: service.to_string(),
            action,
            after: Vec::new(),
            after_all_below: None,
            timeout: convoy::config::Dur(Duration::from_secs(60)),
            not_before: None,
        };
        let provision = Action::Provision {
            version: version.to_string(),
        };
        let switch = Action::Switch {
            from: from.map(str::to_string),
            to: version.to_string(),
            percent: 100,
            bake: convoy::config::Dur(Duration::ZERO),
        };
        for action in [provision, switch] {
            tokio::time::timeout(Duration::from_secs(60), target.apply(&step(action)))
                .await
                .expect("a step finished within 60 s")
                .unwrap();
        }
    }

    /// Gives all traffic back to `to`, as a rollback does.
    async fn switch(&self, target: &KubeTarget, service: &str, from: &str, to: &str) {
        let step = Step {
            id: StepId(0),
            phase: Phase::Switch,
            service: service.to_string(),
            action: Action::Switch {
                from: Some(from.to_string()),
                to: to.to_string(),
                percent: 100,
                bake: convoy::config::Dur(Duration::ZERO),
            },
            after: Vec::new(),
            after_all_below: None,
            timeout: convoy::config::Dur(Duration::from_secs(60)),
            not_before: None,
        };
        tokio::time::timeout(Duration::from_secs(60), target.apply(&step))
            .await
            .expect("a step finished within 60 s")
            .unwrap();
    }

    async fn hpa(&self, name: &str) -> (i32, i32) {
        let api: Api<HorizontalPodAutoscaler> =
            Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let spec = api.get(name).await.unwrap().spec.unwrap();
        (spec.min_replicas.unwrap_or(1), spec.max_replicas)
    }

    async fn replicas(&self, name: &str) -> i32 {
        let api: Api<Deployment> =
            Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        api.get(name).await.unwrap().spec.unwrap().replicas.unwrap()
    }
}

fn request(rule: CapacityRule, services: &[&str], paused: &[&str]) -> PrewarmRequest {
    PrewarmRequest {
        environment: "staging".into(),
        at: parse_at(SPIKE).unwrap(),
        lead: Duration::from_secs(30 * 60),
        hold: Duration::from_secs(2 * 3600),
        rule,
        services: services.iter().map(ToString::to_string).collect(),
        paused: paused.iter().map(ToString::to_string).collect(),
        max_capacity: None,
        starts_now: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_before_during_and_after_a_window_raises_pauses_and_restores() {
    let f = Fixture::start().await;
    let target = f.target(Schedule::default());
    f.deploy(&target, "api", None, "a1").await;
    f.deploy(&target, "worker", None, "w1").await;
    f.deploy(&target, "payments", None, "p1").await;
    assert_eq!(f.hpa("api-a1").await, (2, 4), "the template's autoscaler");
    // A worker has no autoscaler; it was scaled by hand to 3.
    let deployments: Api<Deployment> =
        Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let scale = serde_json::json!({"spec": {"replicas": 3}});
    deployments
        .patch(
            "worker-w1",
            &Default::default(),
            &kube::api::Patch::Merge(&scale),
        )
        .await
        .unwrap();
    let p = f.prewarmer();

    let scheduled = prewarm::schedule(
        &p,
        &request(CapacityRule::Factor(3.0), &["api"], &["worker", "payments"]),
        minutes(-120),
        false,
    )
    .await
    .unwrap();
    assert!(scheduled.changes.is_empty(), "nothing due two hours before");
    let configmaps: Api<ConfigMap> =
        Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let stored = configmaps.get("convoy-prewarm-staging").await.unwrap();
    assert!(stored.data.unwrap()["schedule.json"].contains("\"api\": 6"));

    // Before the window: nothing.
    let changes = p
        .enforce(p.load().await.unwrap(), minutes(-31))
        .await
        .unwrap();
    assert!(changes.is_empty());
    assert_eq!(f.hpa("api-a1").await, (2, 4));

    // During: the autoscaler's minimum raised (and the Deployment with it); background paused.
    let changes = p
        .enforce(p.load().await.unwrap(), minutes(-30))
        .await
        .unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(f.hpa("api-a1").await, (6, 6));
    assert_eq!(f.replicas("api-a1").await, 6);
    assert_eq!(f.replicas("worker-w1").await, 1, "background work yields");
    assert_eq!(
        f.hpa("payments-p1").await,
        (2, 2),
        "--pause pins the autoscaler to its minimum"
    );
    let again = p
        .enforce(p.load().await.unwrap(), minutes(5))
        .await
        .unwrap();
    assert!(again.is_empty(), "idempotent: {again:?}");

    // After: each service back to its baseline, and the schedule forgets the window.
    let changes = p
        .enforce(p.load().await.unwrap(), minutes(120))
        .await
        .unwrap();
    assert!(changes.iter().all(|c| c.reason == Reason::Restore));
    assert_eq!(f.hpa("api-a1").await, (2, 4));
    assert_eq!(f.replicas("worker-w1").await, 3, "background work resumes");
    assert_eq!(f.hpa("payments-p1").await, (2, 4));
    let left = p.load().await.unwrap().schedule;
    assert!(
        left.windows.is_empty() && left.baselines.is_empty(),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_during_a_window_provisions_the_new_version_at_the_prewarmed_capacity() {
    let f = Fixture::start().await;
    f.deploy(&f.target(Schedule::default()), "api", None, "a1")
        .await;
    let p = f.prewarmer();
    prewarm::schedule(
        &p,
        &request(CapacityRule::Replicas(7), &["api"], &[]),
        minutes(-60),
        false,
    )
    .await
    .unwrap();
    p.enforce(p.load().await.unwrap(), minutes(-10))
        .await
        .unwrap();
    assert_eq!(f.hpa("api-a1").await, (7, 7));

    // What opening the target for a deploy at that moment computes.
    let schedule = p.load().await.unwrap().schedule;
    let target = f.target_at(schedule.clone(), Arc::new(At(minutes(-10))));
    f.deploy(&target, "api", Some("a1"), "a2").await;
    assert_eq!(
        f.replicas("api-a2").await,
        7,
        "the new version starts prewarmed"
    );
    assert_eq!(f.hpa("api-a2").await, (7, 7));

    // The window's end restores the version that is live then, and the one kept warm.
    p.enforce(p.load().await.unwrap(), minutes(120))
        .await
        .unwrap();
    assert_eq!(f.hpa("api-a2").await, (2, 4));
    assert_eq!(f.hpa("api-a1").await, (2, 4), "the warm version too");
    // So a rollback afterwards re-applies a1's autoscaler without a field conflict.
    f.switch(&f.target(Schedule::default()), "api", "a2", "a1")
        .await;
    assert_eq!(f.hpa("api-a1").await, (2, 4));

    // A target opened during the window but stepping after it ends uses the usual capacity.
    let late = f.target_at(schedule, Arc::new(At(minutes(121))));
    f.deploy(&late, "api", Some("a1"), "a3").await;
    assert_eq!(f.replicas("api-a3").await, 2);
    assert_eq!(f.hpa("api-a3").await, (2, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn now_raises_at_once_and_waits_until_the_capacity_is_ready() {
    // The raised capacity takes a moment to become Ready.
    let f = Fixture::on(Cluster::with_ready_delay(Duration::from_millis(300)).await);
    f.deploy(&f.target(Schedule::default()), "web", None, "v1")
        .await;
    let p = f.prewarmer();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let mut req = request(CapacityRule::Replicas(5), &["web"], &[]);
    req.at = now.to_zoned(jiff::tz::TimeZone::UTC);
    req.starts_now = true;
    let scheduled = prewarm::schedule(&p, &req, now, false).await.unwrap();
    assert_eq!(scheduled.changes.len(), 1, "raised at once");
    prewarm::wait_raised(&p, &scheduled.window, clock, Duration::from_secs(60))
        .await
        .unwrap();
    let levels = p.levels(&["web".to_string()]).await.unwrap();
    assert!(levels["web"].ready >= 5, "{:?}", levels["web"]);
}

#[test]
fn the_binary_plans_stores_lists_reports_in_status_keeps_capacity_across_a_deploy_and_cancels() {
    let w = world();
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 0);
    let first_api = w.live("api").unwrap();

    let ran = w.convoy(
        ran.dir,
        &[
            "prewarm",
            "--env",
            "staging",
            "--at",
            "2030-06-01 10:00 Europe/Berlin",
            "--factor",
            "3",
            "--dry-run",
        ],
        0,
    );
    assert!(
        ran.stdout.contains("prewarm 1 of staging: ×3"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("raise at 2030-06-01 09:30 +02:00"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("paused (background work)"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("dry run: nothing stored"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["prewarm", "list", "--env", "staging"], 0);
    assert!(ran.stdout.contains("no prewarm windows"), "{}", ran.stdout);

    let ran = w.convoy(
        ran.dir,
        &[
            "prewarm",
            "--env",
            "staging",
            "--at",
            "2030-06-01 10:00 Europe/Berlin",
            "--factor",
            "3",
        ],
        0,
    );
    assert!(
        ran.stdout.contains("convoy prewarm apply --env staging"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["prewarm", "list", "--env", "staging"], 0);
    assert!(ran.stdout.contains("upcoming"), "{}", ran.stdout);
    let ran = w.convoy(ran.dir, &["status", "--env", "staging"], 0);
    assert!(
        ran.stdout.contains("prewarm 1 upcoming: ×3"),
        "{}",
        ran.stdout
    );

    let ran = w.convoy(
        ran.dir,
        &[
            "prewarm",
            "--env",
            "staging",
            "--now",
            "--hold",
            "1h",
            "--capacity",
            "5",
            "api",
        ],
        0,
    );
    assert!(
        ran.stdout
            .contains("api: 2..4 → 5..5 (raised for prewarm 2)"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("prewarmed capacity is Ready"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["status", "--env", "staging"], 0);
    assert!(ran.stdout.contains("prewarm 2 ACTIVE"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("api: 5 of 5 replicas Ready ✓"),
        "{}",
        ran.stdout
    );

    edit(
        ran.dir.path(),
        "services/api/src/README",
        "api service, now faster.\n",
    );
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 0);
    let second_api = w.live("api").unwrap();
    assert_ne!(first_api, second_api);
    let deployments: Api<Deployment> =
        Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    let new = w
        .runtime
        .block_on(deployments.get(&format!("api-{second_api}")))
        .unwrap();
    assert_eq!(
        new.spec.unwrap().replicas,
        Some(5),
        "deployed at the prewarmed capacity"
    );

    let ran = w.convoy(ran.dir, &["prewarm", "cancel", "--env", "staging", "2"], 0);
    assert!(
        ran.stdout.contains("api: 5..5 → 2..4 (restored)"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["prewarm", "cancel", "--env", "staging", "9"], 2);
    assert!(
        ran.stderr.contains("no prewarm window `9`"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("help: `convoy prewarm list --env staging`"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_back_to_a_version_prewarm_raised_takes_its_autoscaler_back_and_apply_raises_again()
 {
    let f = Fixture::start().await;
    let plain = f.target(Schedule::default());
    f.deploy(&plain, "api", None, "a1").await;
    let p = f.prewarmer();
    let req = request(CapacityRule::Replicas(7), &["api"], &[]);
    prewarm::schedule(&p, &req, minutes(-60), false)
        .await
        .unwrap();
    p.enforce(p.load().await.unwrap(), minutes(-10))
        .await
        .unwrap();
    // A release opened before the window started knows no floor.
    f.deploy(&plain, "api", Some("a1"), "a2").await;
    f.switch(&plain, "api", "a2", "a1").await;
    assert_eq!(
        f.hpa("api-a1").await,
        (2, 4),
        "the template's bounds, taken back from prewarm's field manager without a conflict"
    );
    let changes = p
        .enforce(p.load().await.unwrap(), minutes(-9))
        .await
        .unwrap();
    assert_eq!(
        changes.len(),
        1,
        "the next apply raises the live version again"
    );
    assert_eq!(f.hpa("api-a1").await, (7, 7));
}

#[test]
fn a_host_environment_cannot_prewarm_and_says_where_it_can() {
    convoy_test_support::cli::Test::example()
        .args(["prewarm", "list", "--env", "local"])
        .status(2)
        .stderr_has("the host target of environment `local` cannot prewarm")
        .stderr_has("help: prewarm works on kubernetes and aws environments")
        .run();
}

#[test]
fn a_bad_time_is_refused_before_anything_is_contacted() {
    convoy_test_support::cli::Test::example()
        .args([
            "prewarm",
            "--env",
            "production",
            "--at",
            "2026-12-01T10:00",
            "--factor",
            "3",
        ])
        .status(2)
        .stderr_has("--at `2026-12-01T10:00` is not a time")
        .stderr_has("help: write RFC 3339")
        .run();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_window_a_canary_keeps_the_floor_across_the_two_revisions_in_play() {
    let f = Fixture::start().await;
    f.deploy(&f.target(Schedule::default()), "api", None, "a1")
        .await;
    let p = f.prewarmer();
    let rule = request(CapacityRule::Replicas(7), &["api"], &[]);
    prewarm::schedule(&p, &rule, minutes(-60), false)
        .await
        .unwrap();
    p.enforce(p.load().await.unwrap(), minutes(-10))
        .await
        .unwrap();
    let schedule = p.load().await.unwrap().schedule;
    let canary = KubeTarget::new(
        Applier {
            client: f.cluster.client.clone(),
            namespace: f.cluster.namespace.clone(),
        },
        Renderer::new(
            Arc::new(f.project.clone()),
            "staging",
            &[],
            &f.cluster.namespace,
        ),
        None,
        Arc::new(At(minutes(-10))),
        Strategy::Canary,
        vec![25, 50, 100],
    )
    .with_prewarm(schedule);
    let step = |percent: u8| Step {
        id: StepId(0),
        phase: Phase::Switch,
        service: "api".to_string(),
        action: Action::Switch {
            from: Some("a1".to_string()),
            to: "a2".to_string(),
            percent,
            bake: convoy::config::Dur(Duration::ZERO),
        },
        after: Vec::new(),
        after_all_below: None,
        timeout: convoy::config::Dur(Duration::from_secs(60)),
        not_before: None,
    };
    let provision = Step {
        phase: Phase::Provision,
        action: Action::Provision {
            version: "a2".to_string(),
        },
        ..step(100)
    };
    canary.apply(&provision).await.unwrap();
    for percent in [25, 50] {
        canary.apply(&step(percent)).await.unwrap();
        let (new, old) = (f.replicas("api-a2").await, f.replicas("api-a1").await);
        assert!(new > 0 && new < 7, "at {percent} %: {new}");
        assert_eq!(new + old, 7, "the floor holds across both at {percent} %");
        assert_eq!(
            f.hpa("api-a1").await,
            (old, old),
            "the outgoing HPA is pinned"
        );
    }
    canary.apply(&step(100)).await.unwrap();
    assert_eq!(f.replicas("api-a2").await, 7);
    assert_eq!(f.hpa("api-a2").await, (7, 7));
    assert_eq!(
        f.hpa("api-a1").await,
        (7, 7),
        "the outgoing HPA has its prewarmed bounds back"
    );
}

//! The Kubernetes target through the library, against a real cluster (`CONVOY_TEST_KUBECONFIG`,
//! as CI runs them) or the in-process test API server: provision beside the old version,
//! blue/green and canary switches, fail-fast on crash loops, cleanup, the Lease lock, release
//! records. Three tests need faults a real server cannot be made to show — a forbidden watch,
//! transient 429/503 answers, dropped watches and 410 Expired — and inject them with a fault
//! proxy in front of the server ([`Cluster::with_faults`]), so they too run on the real one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use convoy::config::{Project, Strategy};
use convoy::execute::{EnvLock, Holder, ReleaseStore, SystemClock, Target, TargetError};
use convoy::plan::{Action, Phase, Step, StepId};
use convoy::targets::kubernetes::{Applier, KubeTarget, LeaseLock, ReleaseConfigMaps, Renderer};
use convoy_test_support::cli::example_dir;
use convoy_test_support::cluster::{Cluster, use_test_image};
use convoy_test_support::kube_api::Fault;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;

/// A copy of the example project whose secrets come from files, so no test sets an environment
/// variable another test reads.
pub(crate) fn project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    convoy_test_support::cli::copy_dir(&example_dir(), dir.path());
    for entry in std::fs::read_dir(dir.path().join("values")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{ env: ") {
            let end = start + rest[start..].find('}').unwrap();
            let name = rest[start + 7..end].trim();
            std::fs::write(dir.path().join(name), format!("test-{name}")).unwrap();
            out.push_str(&rest[..start]);
            out.push_str(&format!("{{ file: {name} }}"));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        std::fs::write(&path, out).unwrap();
    }
    use_test_image(dir.path());
    let project = Project::load(&dir.path().join("convoy.yaml")).unwrap();
    (dir, project)
}

pub(crate) struct Fixture {
    pub(crate) cluster: Cluster,
    pub(crate) target: KubeTarget,
    _project_dir: tempfile::TempDir,
}

pub(crate) async fn fixture(strategy: Strategy, steps: &[u8], sets: &[&str]) -> Fixture {
    fixture_on(Cluster::start().await, strategy, steps, sets)
}

/// A blue/green fixture behind the fault proxy, whose request log the test reads.
async fn faulted(sets: &[&str]) -> Fixture {
    fixture_on(
        Cluster::with_faults(None).await,
        Strategy::Bluegreen,
        &[100],
        sets,
    )
}

fn fixture_on(cluster: Cluster, strategy: Strategy, steps: &[u8], sets: &[&str]) -> Fixture {
    let (dir, project) = project();
    let target = target_on(&cluster, project, strategy, steps, sets);
    Fixture {
        cluster,
        target,
        _project_dir: dir,
    }
}

/// A target of `project` on `cluster`, as a run of the binary makes one: nothing watched yet.
/// A target of a later run on `f`'s cluster (its own project copy, nothing tracked yet), as a
/// rollback or the next deploy would open it; the directory must outlive it.
fn later_run(
    f: &Fixture,
    strategy: Strategy,
    steps: &[u8],
    sets: &[&str],
) -> (tempfile::TempDir, KubeTarget) {
    let (dir, project) = project();
    (dir, target_on(&f.cluster, project, strategy, steps, sets))
}

fn target_on(
    cluster: &Cluster,
    project: Project,
    strategy: Strategy,
    steps: &[u8],
    sets: &[&str],
) -> KubeTarget {
    let sets: Vec<String> = sets.iter().map(ToString::to_string).collect();
    KubeTarget::new(
        Applier {
            client: cluster.client.clone(),
            namespace: cluster.namespace.clone(),
        },
        Renderer::new(
            Arc::new(project.clone()),
            "staging",
            &sets,
            &cluster.namespace,
        ),
        None,
        Arc::new(SystemClock),
        strategy,
        steps.to_vec(),
    )
}

fn step(service: &str, action: Action) -> Step {
    Step {
        id: StepId(0),
        phase: Phase::Provision,
        service: service.to_string(),
        action,
        after: Vec::new(),
        after_all_below: None,
        timeout: convoy::config::Dur(Duration::from_secs(60)),
        not_before: None,
    }
}

fn provision(version: &str) -> Action {
    Action::Provision {
        version: version.to_string(),
    }
}

fn switch(from: Option<&str>, to: &str, percent: u8) -> Action {
    Action::Switch {
        from: from.map(str::to_string),
        to: to.to_string(),
        percent,
        bake: convoy::config::Dur(Duration::ZERO),
    }
}

/// Every step must finish well within this; a hang fails the test instead of blocking CI.
pub(crate) async fn apply(
    target: &KubeTarget,
    service: &str,
    action: Action,
) -> Result<(), TargetError> {
    tokio::time::timeout(
        Duration::from_secs(60),
        target.apply(&step(service, action)),
    )
    .await
    .expect("a step finished within 60 s")
}

async fn deployment(cluster: &Cluster, name: &str) -> Option<Deployment> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.get_opt(name).await.unwrap()
}

async fn selector(cluster: &Cluster, service: &str) -> BTreeMap<String, String> {
    let api: Api<Service> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.get(service)
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap()
}

fn replicas(deployment: &Deployment) -> i32 {
    deployment.spec.as_ref().unwrap().replicas.unwrap()
}

/// The replica count Deployment `name` asks for; it must exist.
async fn replicas_of(cluster: &Cluster, name: &str) -> i32 {
    let found = deployment(cluster, name).await;
    replicas(&found.unwrap_or_else(|| panic!("Deployment {name} exists")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_provisions_beside_switches_the_selector_and_retires_the_old() {
    let f = fixture(Strategy::Bluegreen, &[100], &["replicas=3"]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    let p1 = deployment(&f.cluster, "payments-p1")
        .await
        .expect("p1 applied");
    assert_eq!(replicas(&p1), 3);
    assert_eq!(
        p1.status.unwrap().available_replicas,
        Some(3),
        "ready before the step ends"
    );
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    assert_eq!(
        selector(&f.cluster, "payments")
            .await
            .get("app.kubernetes.io/version"),
        Some(&"p1".to_string())
    );

    apply(&f.target, "payments", provision("p2")).await.unwrap();
    // Provisioned beside, and no traffic moved yet.
    assert!(deployment(&f.cluster, "payments-p1").await.is_some());
    assert_eq!(
        selector(&f.cluster, "payments").await["app.kubernetes.io/version"],
        "p1"
    );
    apply(&f.target, "payments", switch(Some("p1"), "p2", 100))
        .await
        .unwrap();
    assert_eq!(
        replicas_of(&f.cluster, "payments-p1").await,
        3,
        "kept warm at full size"
    );
    assert_eq!(
        selector(&f.cluster, "payments").await["app.kubernetes.io/version"],
        "p2"
    );
    let observed = f.target.observe(&["payments".to_string()]).await.unwrap();
    assert_eq!(observed["payments"].live.as_deref(), Some("p2"));
    assert_eq!(
        observed["payments"].warm,
        vec!["p1", "p2"],
        "the old version stays warm"
    );

    apply(
        &f.target,
        "payments",
        Action::Retire {
            version: "p1".into(),
        },
    )
    .await
    .unwrap();
    assert!(deployment(&f.cluster, "payments-p1").await.is_none());
    // The two versions share their (content-hashed) ConfigMap: retiring one keeps it.
    let configmaps: Api<ConfigMap> =
        Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let p2 = deployment(&f.cluster, "payments-p2").await.unwrap();
    let used = p2.spec.unwrap().template.spec.unwrap().containers[0]
        .env_from
        .clone()
        .unwrap()[0]
        .config_map_ref
        .clone()
        .unwrap()
        .name;
    assert!(configmaps.get_opt(&used).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_steps_move_traffic_by_replica_share_then_pin_the_selector() {
    // The outgoing version's autoscaler allows the shares below (see the next test).
    let f = fixture(
        Strategy::Canary,
        &[25, 50, 100],
        &["replicas=4", "autoscaling.min=2"],
    )
    .await;
    apply(&f.target, "api", provision("a1")).await.unwrap();
    apply(&f.target, "api", switch(None, "a1", 100))
        .await
        .unwrap();
    assert_eq!(replicas_of(&f.cluster, "api-a1").await, 4);

    apply(&f.target, "api", provision("a2")).await.unwrap();
    let a2 = deployment(&f.cluster, "api-a2").await.unwrap();
    assert_eq!(
        replicas(&a2),
        1,
        "a canary starts at the first step's share"
    );

    apply(&f.target, "api", switch(Some("a1"), "a2", 25))
        .await
        .unwrap();
    let both = selector(&f.cluster, "api").await;
    assert!(!both.contains_key("app.kubernetes.io/version"), "{both:?}");
    assert_eq!(replicas_of(&f.cluster, "api-a2").await, 1);
    assert_eq!(replicas_of(&f.cluster, "api-a1").await, 3);

    apply(&f.target, "api", switch(Some("a1"), "a2", 50))
        .await
        .unwrap();
    assert_eq!(replicas_of(&f.cluster, "api-a2").await, 2);
    assert_eq!(replicas_of(&f.cluster, "api-a1").await, 2);

    apply(&f.target, "api", switch(Some("a1"), "a2", 100))
        .await
        .unwrap();
    assert_eq!(
        selector(&f.cluster, "api").await["app.kubernetes.io/version"],
        "a2"
    );
    assert_eq!(replicas_of(&f.cluster, "api-a2").await, 4);
    f.target.verify("api", "a2").await.unwrap();
}

async fn hpa_bounds(cluster: &Cluster, name: &str) -> (i32, i32, bool) {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let api: Api<HorizontalPodAutoscaler> =
        Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let hpa = api.get(name).await.unwrap();
    let pinned = hpa
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("convoy.dev/canary-pinned-from");
    let spec = hpa.spec.unwrap();
    (spec.min_replicas.unwrap_or(1), spec.max_replicas, pinned)
}

/// The versions of the pods the stable Service of `service` selects that can serve (not
/// terminating).
async fn selected_versions(cluster: &Cluster, service: &str) -> BTreeSet<String> {
    use k8s_openapi::api::core::v1::Pod;
    let selector = selector(cluster, service).await;
    let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let params = kube::api::ListParams::default().labels(&labels.join(","));
    let pods = api.list(&params).await.unwrap().items;
    pods.into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.labels?.get("app.kubernetes.io/version").cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_steps_pin_the_outgoing_autoscaler_at_the_steps_count_and_the_last_step_frees_it() {
    // On a real cluster the outgoing version's HPA resized it within its 15 s sync period after
    // a step shrank it, so the shares drifted. Now its min and max are the step's count while
    // the canary runs, and its own bounds come back at the end.
    let f = fixture(Strategy::Canary, &[25, 50, 100], &["replicas=4"]).await;
    apply(&f.target, "api", provision("a1")).await.unwrap();
    apply(&f.target, "api", switch(None, "a1", 100))
        .await
        .unwrap();
    let (min, max, _) = hpa_bounds(&f.cluster, "api-a1").await;
    apply(&f.target, "api", provision("a2")).await.unwrap();
    for (percent, canary) in [(25, 1), (50, 2)] {
        apply(&f.target, "api", switch(Some("a1"), "a2", percent))
            .await
            .unwrap();
        let a2 = replicas_of(&f.cluster, "api-a2").await;
        let a1 = replicas_of(&f.cluster, "api-a1").await;
        assert_eq!((a2, a1), (canary, 4 - canary), "at {percent} %");
        assert_eq!(hpa_bounds(&f.cluster, "api-a1").await, (a1, a1, true));
    }
    apply(&f.target, "api", switch(Some("a1"), "a2", 100))
        .await
        .unwrap();
    assert_eq!(replicas_of(&f.cluster, "api-a2").await, 4);
    assert_eq!(hpa_bounds(&f.cluster, "api-a1").await, (min, max, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_feeds_only_the_two_revisions_in_play_and_a_rollback_returns_all_to_the_outgoing()
{
    let f = fixture(Strategy::Canary, &[25, 50, 100], &["replicas=4"]).await;
    for (from, to) in [(None, "a1"), (Some("a1"), "a2")] {
        apply(&f.target, "api", provision(to)).await.unwrap();
        apply(&f.target, "api", switch(from, to, 100))
            .await
            .unwrap();
    }
    // a1 is still warm at full size; a3 is the canary.
    assert_eq!(replicas_of(&f.cluster, "api-a1").await, 4);
    let (min, max, _) = hpa_bounds(&f.cluster, "api-a2").await;
    apply(&f.target, "api", provision("a3")).await.unwrap();
    for percent in [25, 50] {
        apply(&f.target, "api", switch(Some("a2"), "a3", percent))
            .await
            .unwrap();
        let selected = selected_versions(&f.cluster, "api").await;
        let in_play = BTreeSet::from(["a2".to_string(), "a3".to_string()]);
        assert_eq!(selected, in_play, "at {percent} %");
        assert_eq!(replicas_of(&f.cluster, "api-a1").await, 0);
    }
    // Rolled back mid-canary: everything to a2, its autoscaler free again.
    apply(&f.target, "api", switch(Some("a3"), "a2", 100))
        .await
        .unwrap();
    assert_eq!(
        selected_versions(&f.cluster, "api").await,
        BTreeSet::from(["a2".to_string()])
    );
    assert_eq!(hpa_bounds(&f.cluster, "api-a2").await, (min, max, false));
    // a1 stays warm (its objects), so a switch back to it scales it up first.
    apply(&f.target, "api", switch(Some("a2"), "a1", 100))
        .await
        .unwrap();
    assert_eq!(replicas_of(&f.cluster, "api-a1").await, 4);
    assert_eq!(
        selected_versions(&f.cluster, "api").await,
        BTreeSet::from(["a1".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_version_fails_fast_naming_the_pod_and_reason() {
    let f = fixture(Strategy::Bluegreen, &[100], &[]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    // Its image (`…/payments:crash2`) asks both servers' kubelets to crash-loop it.
    let error = apply(&f.target, "payments", provision("crash2"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("CrashLoopBackOff") && text.contains("payments-crash2-"),
        "{text}"
    );
    // The old version kept serving throughout.
    assert_eq!(
        selector(&f.cluster, "payments").await["app.kubernetes.io/version"],
        "p1"
    );
    apply(
        &f.target,
        "payments",
        Action::Remove {
            version: "crash2".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        deployment(&f.cluster, "payments-crash2").await.is_none(),
        "no debris"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_command_after_a_bake_fails_the_verify_with_its_output() {
    let mut f = fixture(Strategy::Bluegreen, &[100], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let checks = BTreeMap::from([(
        "payments".to_string(),
        (
            "echo \"$CONVOY_VERSION in $CONVOY_NAMESPACE: 5xx rate 12%\"; exit 1".to_string(),
            Duration::from_secs(10),
        ),
    )]);
    f.target = f.target.with_checks(dir.path(), checks);
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    let error = f
        .target
        .verify("payments", "p1")
        .await
        .unwrap_err()
        .to_string();
    let expected = format!("p1 in {}: 5xx rate 12%", f.cluster.namespace);
    assert!(error.contains(&expected), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_managers_field_is_a_conflict_naming_it() {
    let f = fixture(Strategy::Bluegreen, &[100], &[]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    // Someone takes over a field Convoy sets, with kubectl's server-side apply.
    let services: Api<Service> = Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "payments", "labels": {"app.kubernetes.io/managed-by": "helm"}},
    });
    services
        .patch(
            "payments",
            &kube::api::PatchParams::apply("kubectl").force(),
            &kube::api::Patch::Apply(&patch),
        )
        .await
        .unwrap();
    apply(&f.target, "payments", provision("p2")).await.unwrap();
    let error = apply(&f.target, "payments", switch(Some("p1"), "p2", 100))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("`kubectl`"), "{error}");
    assert_eq!(
        selector(&f.cluster, "payments").await["app.kubernetes.io/version"],
        "p1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_selector_changed_by_another_manager_is_set_exactly_by_the_next_switch() {
    // `Service.spec.selector` is an atomic map on a real server: a hand edit of one key takes the
    // whole selector from Convoy's field manager, and the next switch's apply was refused as a
    // conflict (the in-process server tracked its keys one by one and kept a stray key).
    let f = fixture(Strategy::Bluegreen, &[100], &[]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let by = |manager: &str| kube::api::PatchParams {
        field_manager: Some(manager.to_string()),
        ..Default::default()
    };
    // `kubectl edit`: a key of someone's own in the selector.
    let edit = serde_json::json!({"spec": {"selector": {"tier": "hotfix"}}});
    services
        .patch(
            "payments",
            &by("kubectl-edit"),
            &kube::api::Patch::Merge(&edit),
        )
        .await
        .unwrap();
    let exactly = |version: &str| {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "payments".to_string()),
            ("app.kubernetes.io/version".to_string(), version.to_string()),
        ])
    };
    apply(&f.target, "payments", provision("p2")).await.unwrap();
    apply(&f.target, "payments", switch(Some("p1"), "p2", 100))
        .await
        .unwrap();
    assert_eq!(selector(&f.cluster, "payments").await, exactly("p2"));

    // `kubectl apply --server-side --force-conflicts`: traffic pinned back to p1 by hand.
    let pin = serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "payments"},
        "spec": {"selector": exactly("p1")},
    });
    services
        .patch(
            "payments",
            &kube::api::PatchParams::apply("ops").force(),
            &kube::api::Patch::Apply(&pin),
        )
        .await
        .unwrap();
    apply(&f.target, "payments", switch(Some("p1"), "p2", 100))
        .await
        .unwrap();
    assert_eq!(selector(&f.cluster, "payments").await, exactly("p2"));
    let fields = services
        .get("payments")
        .await
        .unwrap()
        .metadata
        .managed_fields;
    let owner = fields
        .unwrap_or_default()
        .into_iter()
        .find(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0["f:spec"].get("f:selector").is_some())
        })
        .and_then(|m| m.manager);
    assert_eq!(
        owner.as_deref(),
        Some("convoy"),
        "the switch owns the selector"
    );
}

/// Puts a finalizer on `name` and deletes it, as a controller that guards Deployments would
/// leave it: Terminating until the finalizer is removed.
pub(crate) async fn hold_and_delete(cluster: &Cluster, name: &str) {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let hold = serde_json::json!({"metadata": {"finalizers": ["example.com/hold"]}});
    api.patch(name, &Default::default(), &kube::api::Patch::Merge(&hold))
        .await
        .unwrap();
    api.delete(name, &Default::default()).await.unwrap();
}

pub(crate) async fn release(cluster: &Cluster, name: &str) {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    api.patch(
        name,
        &Default::default(),
        &kube::api::Patch::Merge(&release),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_deployment_being_deleted_is_not_warm_and_retire_and_provision_cope() {
    // A real server keeps a Deployment with a finalizer, Ready and unscaled by its controller,
    // until the finalizer goes: it was counted warm, and provisioning that version again
    // applied to the dying object.
    let f = fixture(Strategy::Bluegreen, &[100], &[]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    apply(&f.target, "payments", provision("p2")).await.unwrap();
    apply(&f.target, "payments", switch(Some("p1"), "p2", 100))
        .await
        .unwrap();
    hold_and_delete(&f.cluster, "payments-p1").await;
    let terminating = deployment(&f.cluster, "payments-p1").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());

    let observed = f.target.observe(&["payments".to_string()]).await.unwrap();
    assert_eq!(observed["payments"].warm, vec!["p2"], "p1 is going away");
    assert_eq!(observed["payments"].live.as_deref(), Some("p2"));
    // Cleanup finds it deleting already: nothing to scale, and deleting again succeeds.
    apply(
        &f.target,
        "payments",
        Action::Retire {
            version: "p1".into(),
        },
    )
    .await
    .unwrap();

    // Provisioning p1 again (a rollback) waits for the old object to go, then creates it anew.
    let old_uid = terminating.metadata.uid.clone();
    let (provisioned, ()) = tokio::join!(apply(&f.target, "payments", provision("p1")), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        release(&f.cluster, "payments-p1").await;
    });
    provisioned.unwrap();
    let again = deployment(&f.cluster, "payments-p1").await.unwrap();
    assert_ne!(again.metadata.uid, old_uid, "a new Deployment");
    assert!(again.metadata.deletion_timestamp.is_none());
    assert_eq!(again.status.unwrap().available_replicas, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_watch_fails_the_step_at_once_pointing_at_the_rbac() {
    // Pods take long enough that the refusal, not the rollout, ends the step.
    let cluster = Cluster::with_faults(Some(Duration::from_secs(30))).await;
    let f = fixture_on(cluster, Strategy::Bluegreen, &[100], &[]);
    // The identity may write Deployments but neither list nor watch pods.
    for verb in ["list", "watch"] {
        f.cluster.faults().fault(
            Fault::status(403)
                .verb(verb)
                .resource("pods")
                .message("pods is forbidden: User \"ci\" cannot list resource \"pods\""),
        );
    }
    let error = apply(&f.target, "payments", provision("p1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("forbidden") && error.contains("rbac.yaml"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_errors_are_retried() {
    let f = faulted(&[]).await;
    let faults = f.cluster.faults();
    faults.fault(
        Fault::status(503)
            .verb("apply")
            .resource("deployments")
            .times(2),
    );
    faults.fault(
        Fault::too_many_requests()
            .verb("apply")
            .resource("configmaps")
            .times(1),
    );
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    let refused = faults
        .requests()
        .iter()
        .filter(|r| r.status == 503 || r.status == 429)
        .count();
    assert_eq!(refused, 3);
    assert!(deployment(&f.cluster, "payments-p1").await.is_some());
}

/// The writes (resource, name) a switch of `payments` from `from` to `to` made, in the order
/// they ended, with the first patch of the incoming Deployment held back 2 s by the fault proxy.
async fn switched_with_the_incoming_patch_held(
    f: &Fixture,
    target: &KubeTarget,
    from: &str,
    to: &str,
) -> Writes {
    let faults = f.cluster.faults();
    faults.fault(
        Fault::delay(Duration::from_secs(2))
            .verb("patch")
            .resource("deployments")
            .name(&format!("payments-{to}"))
            .times(1),
    );
    let before = faults.requests().len();
    apply(target, "payments", switch(Some(from), to, 100))
        .await
        .unwrap();
    Writes(
        faults.requests()[before..]
            .iter()
            .filter(|r| !matches!(r.verb.as_str(), "get" | "list" | "watch"))
            .map(|r| (r.resource.clone(), r.name.clone().unwrap_or_default()))
            .collect(),
    )
}

/// Writes as (resource, name), in the order they ended.
#[derive(Debug)]
struct Writes(Vec<(String, String)>);

impl Writes {
    /// Whether the write of `first` ended before that of `then`; both must have been made.
    fn before(&self, first: (&str, &str), then: (&str, &str)) -> bool {
        let position = |(resource, name): (&str, &str)| {
            self.0
                .iter()
                .position(|(r, n)| r == resource && n == name)
                .unwrap_or_else(|| panic!("no write of {resource}/{name}: {:?}", self.0))
        };
        position(first) < position(then)
    }
}

/// A switch to a revision this release provisioned (its watches see it serving its count)
/// moves the selector without a patch of the incoming Deployment before it: that patch, held
/// back by the fault proxy, ends after the selector's write. The share label it writes is there
/// when the switch ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_to_a_revision_seen_serving_moves_the_selector_before_labelling_it() {
    let f = faulted(&["replicas=2"]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    apply(&f.target, "payments", provision("p2")).await.unwrap();
    let written = switched_with_the_incoming_patch_held(&f, &f.target, "p1", "p2").await;
    assert!(
        written.before(("services", "payments"), ("deployments", "payments-p2")),
        "the selector waited on the incoming patch: {written:?}"
    );
    assert_eq!(
        selector(&f.cluster, "payments").await["app.kubernetes.io/version"],
        "p2"
    );
    let p2 = deployment(&f.cluster, "payments-p2").await.unwrap();
    let labels = p2.metadata.labels.unwrap();
    assert_eq!(labels["convoy.dev/traffic"], "100");
    let observed = f.target.observe(&["payments".to_string()]).await.unwrap();
    assert_eq!(observed["payments"].live.as_deref(), Some("p2"));
}

/// A rollback's switch back to a warm revision its observation lists serving its count (a
/// later run: no watch started) moves the selector without patching that revision first: the
/// patch, held back by the fault proxy, ends after the selector's write. Both share labels are
/// written by the time the switch ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_back_to_a_warm_revision_observed_serving_moves_the_selector_first() {
    let f = faulted(&["replicas=2"]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    apply(&f.target, "payments", switch(None, "p1", 100))
        .await
        .unwrap();
    apply(&f.target, "payments", provision("p2")).await.unwrap();
    apply(&f.target, "payments", switch(Some("p1"), "p2", 100))
        .await
        .unwrap();
    let (_dir, later) = later_run(&f, Strategy::Bluegreen, &[100], &["replicas=2"]);
    let observed = later.observe(&["payments".to_string()]).await.unwrap();
    assert_eq!(
        observed["payments"].warm.len(),
        2,
        "p1 is warm: {observed:?}"
    );
    let written = switched_with_the_incoming_patch_held(&f, &later, "p2", "p1").await;
    assert!(
        written.before(("services", "payments"), ("deployments", "payments-p1")),
        "the selector waited on the incoming patch: {written:?}"
    );
    assert_eq!(
        selector(&f.cluster, "payments").await["app.kubernetes.io/version"],
        "p1"
    );
    let share = |d: Deployment| d.metadata.labels.unwrap()["convoy.dev/traffic"].clone();
    let p1 = deployment(&f.cluster, "payments-p1").await.unwrap();
    assert_eq!(share(p1), "100");
    let p2 = deployment(&f.cluster, "payments-p2").await.unwrap();
    assert_eq!(share(p2), "0");
}

/// A canary step to a warm revision scales the live one down without waiting (its count only
/// falls), so no watch starts; the release's rollback then switches back to it at 100 %. The
/// observation from before the step still lists it serving its full count, and it must not be
/// believed: the switch back scales it up again before the selector moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_back_to_a_revision_this_run_scaled_down_scales_it_up_again() {
    let f = fixture(Strategy::Canary, &[25, 50, 100], &["replicas=4"]).await;
    for (from, to) in [(None, "a1"), (Some("a1"), "a2")] {
        apply(&f.target, "api", provision(to)).await.unwrap();
        apply(&f.target, "api", switch(from, to, 100))
            .await
            .unwrap();
    }
    let (_dir, later) = later_run(&f, Strategy::Canary, &[25, 50, 100], &["replicas=4"]);
    let observed = later.observe(&["api".to_string()]).await.unwrap();
    assert_eq!(observed["api"].live.as_deref(), Some("a2"));
    apply(&later, "api", switch(Some("a2"), "a1", 50))
        .await
        .unwrap();
    assert_eq!(replicas_of(&f.cluster, "api-a2").await, 2);
    apply(&later, "api", switch(Some("a1"), "a2", 100))
        .await
        .unwrap();
    assert_eq!(
        replicas_of(&f.cluster, "api-a2").await,
        4,
        "the switch back left the live revision at the canary step's count"
    );
    assert_eq!(
        selected_versions(&f.cluster, "api").await,
        BTreeSet::from(["a2".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_survives_dropped_watches_and_410_expired() {
    // Pods take 3 s, so the rollout is followed by watch. The first Deployment watch is told its
    // resourceVersion expired (so the watcher lists again), the next two end at once.
    let cluster = Cluster::with_faults(Some(Duration::from_secs(3))).await;
    let f = fixture_on(cluster, Strategy::Bluegreen, &[100], &["replicas=2"]);
    let faults = f.cluster.faults();
    let deployments = |rule: Fault| rule.verb("watch").resource("deployments");
    faults.fault(deployments(Fault::expired()).times(1));
    faults.fault(deployments(Fault::drop_watch()).times(3));
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    let seen: Vec<(String, u16)> = faults
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments" && matches!(r.verb.as_str(), "list" | "watch"))
        .map(|r| (r.verb, r.status))
        .collect();
    let watches = seen.iter().filter(|(verb, _)| verb == "watch").count();
    assert!(
        watches >= 4,
        "every ended watch was re-established: {seen:?}"
    );
    let first_watch = seen.iter().position(|(verb, _)| verb == "watch").unwrap();
    assert!(
        seen[first_watch..].iter().any(|(verb, _)| verb == "list"),
        "listed again after 410 Expired: {seen:?}"
    );
    let p1 = deployment(&f.cluster, "payments-p1").await.unwrap();
    assert_eq!(p1.status.unwrap().available_replicas, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_deployment_is_created_at_its_count_and_a_resumed_provision_keeps_it() {
    let f = fixture(Strategy::Bluegreen, &[100], &["replicas=3"]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    let created = deployment(&f.cluster, "payments-p1").await.unwrap();
    // One spec for the controller to act on: created at 3, not at 1 and then scaled.
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.spec.unwrap().replicas, Some(3));
    // Provisioned again (a resumed release): applied at the count it has, nothing changes.
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    let again = deployment(&f.cluster, "payments-p1").await.unwrap();
    assert_eq!(again.metadata.generation, Some(1));
    assert_eq!(again.spec.unwrap().replicas, Some(3));
    assert_eq!(again.status.unwrap().available_replicas, Some(3));
}

/// A new revision's Deployment is read once (it is not there) and written once, by the apply
/// that creates it at its count: no patch of its count or share follows before the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_revision_s_deployment_is_written_once_by_the_apply_that_creates_it() {
    let f = faulted(&["replicas=2"]).await;
    apply(&f.target, "payments", provision("p1")).await.unwrap();
    let calls: Vec<(String, u16)> = f
        .cluster
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments" && r.name.as_deref() == Some("payments-p1"))
        .map(|r| (r.verb, r.status))
        .collect();
    assert_eq!(
        calls,
        [("get".to_string(), 404), ("apply".to_string(), 201)],
        "{calls:?}"
    );
    let p1 = deployment(&f.cluster, "payments-p1").await.unwrap();
    assert_eq!(p1.status.unwrap().available_replicas, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_provisions_share_one_watch_per_kind() {
    // Pods take 2 s, so every provision is followed by watch, all at the same time.
    let cluster = Cluster::with_faults(Some(Duration::from_secs(2))).await;
    let f = fixture_on(cluster, Strategy::Bluegreen, &[100], &["replicas=2"]);
    let versions = ["p1", "p2", "p3", "p4"];
    let provisions = versions
        .iter()
        .map(|v| apply(&f.target, "payments", provision(v)));
    for result in futures::future::join_all(provisions).await {
        result.unwrap();
    }
    for version in versions {
        let deployment = deployment(&f.cluster, &format!("payments-{version}"))
            .await
            .unwrap();
        assert_eq!(deployment.status.unwrap().available_replicas, Some(2));
    }
    let requests = f.cluster.faults().requests();
    for kind in ["deployments", "replicasets", "pods"] {
        let count = |verb: &str| {
            requests
                .iter()
                .filter(|r| r.resource == kind && r.verb == verb)
                .count()
        };
        // One list to start each watch; a watch request ends after 55 s, far beyond this test.
        assert_eq!(count("watch"), 1, "{kind}: one watch for four rollouts");
        assert!(
            count("list") <= 2,
            "{kind}: listed once to start the watch (plus a Deployment observe): {}",
            count("list")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_lock_excludes_names_the_holder_and_can_be_taken_over_when_expired() {
    let cluster = Cluster::start().await;
    let lock = |_: ()| LeaseLock::new(cluster.client.clone(), &cluster.namespace, "staging");
    let holder = |user: &str| Holder {
        user: user.into(),
        host: "ci".into(),
        ci: None,
        pid: 1,
        pid_namespace: None,
    };
    let ttl = Duration::from_secs(60);
    let now = jiff::Timestamp::now();
    let first = lock(())
        .acquire(&holder("alice"), "t1", ttl, now)
        .await
        .unwrap();
    assert!(first.took_over.is_none());
    let error = lock(())
        .acquire(&holder("bob"), "t2", ttl, now)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("alice@ci"), "{error}");
    // Renewing keeps it; after expiry someone else takes it over and the first run has lost it.
    let renewed = lock(()).renew(&first.lease, ttl, now).await.unwrap();
    let later = now + Duration::from_secs(120);
    let second = lock(())
        .acquire(&holder("bob"), "t2", ttl, later)
        .await
        .unwrap();
    assert_eq!(second.took_over.unwrap().holder.user, "alice");
    assert!(lock(()).renew(&renewed, ttl, later).await.is_err());
    assert_eq!(lock(()).status().await.unwrap().unwrap().holder.user, "bob");
    assert_eq!(
        lock(()).break_lock().await.unwrap().unwrap().holder.user,
        "bob"
    );
    assert!(lock(()).status().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_records_round_trip_compressed_and_keep_the_history_cap() {
    let cluster = Cluster::start().await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 3);
    // Saved as a release saves its record: at its start, and finished (the last save waits for
    // the prune the first one started).
    for number in 1..=5 {
        store.save(&record(number)).await.unwrap();
        store.save(&finished_record(number)).await.unwrap();
    }
    let kept = numbers(&store, 10).await;
    assert_eq!(kept, vec![5, 4, 3]);
    assert_eq!(store.latest().await.unwrap().unwrap(), finished_record(5));
    assert!(store.load(1).await.unwrap().is_none());
    // Another environment in the same namespace has its own records.
    let other = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "prod", 3);
    assert!(other.latest().await.unwrap().is_none());
}

/// A new record's save (which the release's first step waits for) lists the records beyond the
/// cap beside its own write, not one round trip after it, and by their metadata alone (each
/// record is megabytes at a thousand services): with the record's write held back by the fault
/// proxy, the lists end first. The deletes follow the write, and the release's last save waits
/// for them: the cap is kept all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_record_is_written_beside_the_prune_not_before_it() {
    let cluster = Cluster::with_faults(None).await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 2);
    for number in 1..=2 {
        store.save(&record(number)).await.unwrap();
    }
    let faults = cluster.faults();
    faults.fault(
        Fault::delay(Duration::from_secs(2))
            .verb("apply")
            .resource("configmaps")
            .name("convoy-release-staging-3")
            .times(1),
    );
    let before = faults.requests().len();
    store.save(&record(3)).await.unwrap();
    store.save(&finished_record(3)).await.unwrap();
    let ended: Vec<String> = faults.requests()[before..]
        .iter()
        .filter(|r| r.resource == "configmaps")
        .map(|r| format!("{} {}", r.verb, r.name.clone().unwrap_or_default()))
        .collect();
    let position = |what: &str| ended.iter().position(|e| e.starts_with(what));
    let written = position("apply convoy-release-staging-3")
        .unwrap_or_else(|| panic!("the record was written: {ended:?}"));
    assert!(position("list").is_some_and(|l| l < written), "{ended:?}");
    let lists: Vec<bool> = faults.requests()[before..]
        .iter()
        .filter(|r| r.verb == "list")
        .map(|r| r.metadata_only)
        .collect();
    assert_eq!(lists, [true, true], "records and chunks, metadata only");
    let deleted = position("delete convoy-release-staging-1");
    assert!(deleted.is_some_and(|d| d > written), "{ended:?}");
    let kept = numbers(&store, 10).await;
    assert_eq!(kept, vec![3, 2]);
}

/// The records beyond the cap go only once the newer record is written: a write the server
/// refuses leaves every record there was, so the environment never has fewer than it keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_write_that_fails_prunes_nothing() {
    let cluster = Cluster::with_faults(None).await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 1);
    store.save(&record(1)).await.unwrap();
    cluster.faults().fault(
        Fault::status(403)
            .verb("apply")
            .resource("configmaps")
            .name("convoy-release-staging-2"),
    );
    assert!(store.save(&record(2)).await.is_err());
    assert_eq!(numbers(&store, 10).await, vec![1]);
}

/// A prune deletes only Convoy's records: a ConfigMap that carries the environment and release
/// labels but not `app.kubernetes.io/managed-by: convoy`, or a release label that is no number,
/// is never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_deletes_only_records_convoy_wrote() {
    let cluster = Cluster::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    for (name, release, managed) in [("theirs", "1", false), ("odd", "old", true)] {
        let mut labels = BTreeMap::from([
            ("convoy.dev/environment".to_string(), "staging".to_string()),
            ("convoy.dev/release".to_string(), release.to_string()),
        ]);
        if managed {
            labels.insert(
                "app.kubernetes.io/managed-by".to_string(),
                "convoy".to_string(),
            );
        }
        let object = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        };
        maps.create(&kube::api::PostParams::default(), &object)
            .await
            .unwrap();
    }
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 1);
    for number in 1..=3 {
        store.save(&finished_record(number)).await.unwrap();
    }
    assert!(maps.get_opt("theirs").await.unwrap().is_some());
    assert!(maps.get_opt("odd").await.unwrap().is_some());
    assert!(
        maps.get_opt("convoy-release-staging-2")
            .await
            .unwrap()
            .is_none(),
        "Convoy's own record beyond the cap is pruned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_records_asked_for_are_decoded_so_an_unreadable_old_one_does_not_stop_a_deploy() {
    let cluster = Cluster::start().await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 10);
    for number in 1..=3 {
        store.save(&record(number)).await.unwrap();
    }
    unreadable(&cluster, "convoy-release-staging-1").await;
    assert_eq!(store.latest().await.unwrap().unwrap(), record(3));
    let newest = numbers(&store, 2).await;
    assert_eq!(newest, vec![3, 2]);
    let all = store.list(10).await;
    assert!(
        all.as_ref()
            .is_err_and(|e| e.to_string().contains("convoy-release-staging-1")),
        "{all:?}"
    );
}

/// What a rollback reads first, in one list of the records and one of the journal chunks: the
/// newest record when it is unfinished, decoding nothing older (an unreadable old record does
/// not stop it); else every record, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_s_first_read_is_one_list_and_decodes_only_an_unfinished_newest() {
    use convoy::execute::Newest;
    let cluster = Cluster::with_faults(None).await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 10);
    for number in 1..=3 {
        store.save(&finished_record(number)).await.unwrap();
    }
    let faults = cluster.faults();
    let before = faults.requests().len();
    let Newest::Finished(records) = store.unfinished_or_list(usize::MAX).await.unwrap() else {
        panic!("release 3 is finished");
    };
    let kept: Vec<u64> = records.iter().map(|r| r.number).collect();
    assert_eq!(kept, vec![3, 2, 1]);
    assert_eq!(records[0], finished_record(3));
    let lists: Vec<String> = faults.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.verb, r.resource))
        .collect();
    assert_eq!(
        lists,
        ["list configmaps", "list configmaps"],
        "records, chunks"
    );

    store.save(&record(4)).await.unwrap();
    unreadable(&cluster, "convoy-release-staging-2").await;
    match store.unfinished_or_list(usize::MAX).await.unwrap() {
        Newest::Unfinished(newest) => assert_eq!(*newest, record(4)),
        other => panic!("release 4 is unfinished: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_write_rewrites_only_its_chunk_and_a_reload_sees_every_entry() {
    use convoy::execute::{Outcome, StepEvent};
    let cluster = Cluster::start().await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 10);
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut record = record(1);
    store.save(&record).await.unwrap();
    let saved = maps.get("convoy-release-staging-1").await.unwrap();
    // 300 entries appended in groups of 1 to 7, as the executor's group commit does.
    let mut appended = 0;
    while appended < 300 {
        let count = (appended % 7 + 1).min(300 - appended);
        for index in appended..appended + count {
            record.journal.push(entry(
                "10:00",
                Phase::Provision,
                index,
                &format!("svc-{index}"),
                StepEvent::Started,
            ));
        }
        store.append(&record, false, count).await.unwrap();
        appended += count;
    }
    record.rollback_journal = record.journal[..3].to_vec();
    store.append(&record, true, 3).await.unwrap();
    // The record itself was not rewritten; its chunks hold the entries, and a reload (or a
    // resume from another runner) sees all of them in order.
    let unchanged = maps.get("convoy-release-staging-1").await.unwrap();
    assert_eq!(
        unchanged.metadata.resource_version,
        saved.metadata.resource_version
    );
    assert_eq!(store.load(1).await.unwrap().unwrap(), record);
    assert_eq!(store.latest().await.unwrap().unwrap(), record);
    let chunks = kube::api::ListParams::default().labels("convoy.dev/journal-of=1");
    assert_eq!(maps.list(&chunks).await.unwrap().items.len(), 4);
    // Finished and saved whole, the release needs its chunks no more.
    record.outcome = Outcome::Succeeded;
    store.save(&record).await.unwrap();
    assert!(maps.list(&chunks).await.unwrap().items.is_empty());
    assert_eq!(store.load(1).await.unwrap().unwrap(), record);
}

/// A catch-up journals an older, finished release's deferred cleanups into chunks of that
/// release, whose record is not saved again: those chunks are its only copy of the entries, so
/// finishing the run's own release deletes its own chunks and keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_a_release_keeps_the_chunks_a_catch_up_wrote_into_an_older_one() {
    use convoy::execute::StepEvent;
    let cluster = Cluster::start().await;
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 10);
    let mut older = finished_record(1);
    store.save(&older).await.unwrap();
    // The next run: its catch-up journals release 1's deferred step as done, then it releases.
    let store = ReleaseConfigMaps::new(cluster.client.clone(), &cluster.namespace, "staging", 10);
    older.journal.push(entry(
        "10:30",
        Phase::Cleanup,
        0,
        "api",
        StepEvent::Succeeded,
    ));
    store.append(&older, false, 1).await.unwrap();
    let mut newer = record(2);
    newer.journal.push(entry(
        "10:31",
        Phase::Provision,
        0,
        "api",
        StepEvent::Started,
    ));
    store.save(&record(2)).await.unwrap();
    store.append(&newer, false, 1).await.unwrap();
    newer.outcome = convoy::execute::Outcome::Succeeded;
    store.save(&newer).await.unwrap();
    assert_eq!(store.load(1).await.unwrap().unwrap(), older);
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let chunks_of =
        |n: u64| kube::api::ListParams::default().labels(&format!("convoy.dev/journal-of={n}"));
    assert!(maps.list(&chunks_of(2)).await.unwrap().items.is_empty());
    assert_eq!(store.load(2).await.unwrap().unwrap(), newer);
}

/// The numbers of the newest `limit` records `store` keeps, newest first.
async fn numbers(store: &ReleaseConfigMaps, limit: usize) -> Vec<u64> {
    let records = store.list(limit).await.unwrap();
    records.iter().map(|r| r.number).collect()
}

/// Makes the record ConfigMap `name` unreadable: its data is not gzip.
async fn unreadable(cluster: &Cluster, name: &str) {
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let garbage = serde_json::json!({"binaryData": {"record.json.gz": "bm90IGd6aXA="}});
    maps.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&garbage),
    )
    .await
    .unwrap();
}

/// A journal entry of step `step` of `service` at `hh_mm` on the records' day.
fn entry(
    hh_mm: &str,
    phase: Phase,
    step: usize,
    service: &str,
    event: convoy::execute::StepEvent,
) -> convoy::execute::JournalEntry {
    convoy::execute::JournalEntry {
        at: format!("2026-11-24T{hh_mm}:00Z").parse().unwrap(),
        phase,
        step: StepId(step),
        service: service.to_string(),
        event,
    }
}

/// [`record`] `number`, succeeded.
fn finished_record(number: u64) -> convoy::execute::ReleaseRecord {
    let mut finished = record(number);
    finished.outcome = convoy::execute::Outcome::Succeeded;
    finished
}

fn record(number: u64) -> convoy::execute::ReleaseRecord {
    let plan = convoy::plan::Plan {
        environment: "staging".into(),
        created: "2026-11-24T10:00:00Z".parse().unwrap(),
        changes: Vec::new(),
        unchanged: Vec::new(),
        steps: Vec::new(),
    };
    convoy::execute::ReleaseRecord::new(
        number,
        convoy::execute::ReleaseKind::Deploy,
        Holder {
            user: "ci".into(),
            host: "runner".into(),
            ci: None,
            pid: 7,
            pid_namespace: None,
        },
        plan,
        BTreeMap::from([("api".to_string(), format!("a{number}"))]),
    )
}

//! `convoy` deploying `examples/ticketshop`'s `staging` environment to a cluster, end to end: the
//! binary talks to a real cluster (`CONVOY_TEST_KUBECONFIG`, as CI runs them) or over HTTP to the
//! in-process test API server, through a kubeconfig, exactly as it would in CI.

use std::path::Path;
use std::time::Duration;

use convoy::execute::{EnvLock, Holder};
use convoy::targets::kubernetes::LeaseLock;
use convoy_test_support::cli::{Ran, Test, commit_all, example_repo};
use convoy_test_support::cluster::{Cluster, use_test_image};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;

/// A cluster served by a runtime of its own, so the binary can be run synchronously meanwhile.
pub(crate) struct World {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) cluster: Cluster,
}

pub(crate) fn world() -> World {
    world_with(Cluster::start())
}

/// A world on the cluster `start` gives.
pub(crate) fn world_with(start: impl std::future::Future<Output = Cluster>) -> World {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = runtime.block_on(start);
    World { runtime, cluster }
}

/// The example project in a git repository, its staging policy made quick (no bake) for tests
/// (and its images `CONVOY_TEST_IMAGE`, when set).
pub(crate) fn repo() -> tempfile::TempDir {
    let dir = example_repo();
    let file = dir.path().join("convoy.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("steps: [50, 100], bake: 30s", "steps: [50, 100], bake: 0s");
    std::fs::write(&file, text).unwrap();
    use_test_image(dir.path());
    commit_all(dir.path(), "staging: no bake in tests");
    dir
}

impl World {
    pub(crate) fn convoy(&self, dir: tempfile::TempDir, args: &[&str], status: i32) -> Ran {
        self.convoy_with(dir, args, status, &[])
    }

    /// As [`World::convoy`], with `env` set besides (e.g. a rotated secret).
    pub(crate) fn convoy_with(
        &self,
        dir: tempfile::TempDir,
        args: &[&str],
        status: i32,
        env: &[(&str, &str)],
    ) -> Ran {
        let mut all: Vec<String> = args.iter().map(ToString::to_string).collect();
        all.extend(self.cluster.context_args());
        let mut test = Test::in_dir(dir)
            .env("KUBECONFIG", self.cluster.kubeconfig.to_str().unwrap())
            .env("TICKETSHOP_DB_PASSWORD", "test-password")
            .env("PAYMENTS_API_KEY", "test-key");
        for (key, value) in env {
            test = test.env(key, value);
        }
        test.args(all).status(status).run()
    }

    pub(crate) fn live(&self, service: &str) -> Option<String> {
        let api: Api<Service> =
            Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let found = self.runtime.block_on(api.get_opt(service)).unwrap()?;
        found
            .spec?
            .selector?
            .get("app.kubernetes.io/version")
            .cloned()
    }

    /// Every object Convoy labels as its own in the namespace, as `Kind/name`.
    pub(crate) fn managed_objects(&self) -> Vec<String> {
        use kube::api::{ApiResource, DynamicObject, ListParams};
        let kinds = [
            ("apps/v1", "Deployment", "deployments"),
            ("v1", "Service", "services"),
            ("v1", "ConfigMap", "configmaps"),
            ("v1", "Secret", "secrets"),
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
            ),
            ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        ];
        let params = ListParams::default().labels("app.kubernetes.io/managed-by=convoy");
        let mut found = Vec::new();
        for (api_version, kind, plural) in kinds {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
            let api: Api<DynamicObject> = Api::namespaced_with(
                self.cluster.client.clone(),
                &self.cluster.namespace,
                &resource,
            );
            let list = self.runtime.block_on(api.list(&params)).unwrap();
            // The environment's digest key is state, like the lock: not a release's object.
            let names = list.items.into_iter().filter_map(|o| o.metadata.name);
            let released = names.filter(|name| !name.starts_with("convoy-digest-key-"));
            found.extend(released.map(|name| format!("{kind}/{name}")));
        }
        found
    }

    pub(crate) fn deployments(&self) -> Vec<String> {
        let api: Api<Deployment> =
            Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let list = self
            .runtime
            .block_on(api.list(&Default::default()))
            .unwrap();
        list.items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect()
    }

    /// The Deployments not being deleted (a retired one lingers while its pods terminate).
    pub(crate) fn staying_deployments(&self) -> Vec<String> {
        let api: Api<Deployment> =
            Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let list = self
            .runtime
            .block_on(api.list(&Default::default()))
            .unwrap();
        let staying = list
            .items
            .into_iter()
            .filter(|d| d.metadata.deletion_timestamp.is_none());
        staying.filter_map(|d| d.metadata.name).collect()
    }
}

pub(crate) fn edit(dir: &Path, file: &str, contents: &str) {
    std::fs::write(dir.join(file), contents).unwrap();
    commit_all(dir, &format!("edit {file}"));
}

#[test]
fn deploy_then_a_canary_change_then_diff_and_rollback_while_warm() {
    let w = world();
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 0);
    assert!(
        ran.stderr.contains("release 1 of staging succeeded")
            || ran.stdout.contains("release 1 of staging succeeded"),
        "{}{}",
        ran.stdout,
        ran.stderr
    );
    let first_api = w.live("api").expect("api is served");
    for service in ["payments", "web"] {
        assert!(w.live(service).is_some(), "{service} is served");
    }
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 0);
    assert!(ran.stdout.contains("matches"), "{}", ran.stdout);

    edit(
        ran.dir.path(),
        "services/api/src/README",
        "api service, now faster.\n",
    );
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 1);
    assert!(ran.stdout.contains("+ Deployment/api-"), "{}", ran.stdout);

    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 0);
    let second_api = w.live("api").unwrap();
    assert_ne!(first_api, second_api);
    let names = w.deployments();
    assert!(
        names.contains(&format!("api-{first_api}")),
        "the old version is kept warm: {names:?}"
    );
    let ran = w.convoy(ran.dir, &["status", "--env", "staging"], 0);
    assert!(
        ran.stdout.contains(&first_api),
        "warm version shown:\n{}",
        ran.stdout
    );
    // With its age and its size in pods.
    let api = ran.stdout.lines().find(|l| l.starts_with("api")).unwrap();
    assert!(api.contains(" ago, ") && api.contains(" pods)"), "{api}");

    let ran = w.convoy(ran.dir, &["rollback", "--env", "staging"], 0);
    assert_eq!(w.live("api").unwrap(), first_api);
    let ran = w.convoy(ran.dir, &["history", "--env", "staging"], 0);
    assert_eq!(ran.stdout.matches("succeeded").count(), 3, "{}", ran.stdout);
}

#[test]
fn a_crash_looping_version_fails_fast_is_rolled_back_and_the_old_one_serves_throughout() {
    let w = world();
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 0);
    let old = w.live("api").unwrap();
    // A new version whose image asks both servers' kubelets to crash-loop it.
    let config = ran.dir.path().join("convoy.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "image: registry.example.com/ticketshop/api\n",
        "image: registry.example.com/ticketshop/api-crash\n",
    );
    std::fs::write(&config, text).unwrap();
    edit(
        ran.dir.path(),
        "services/api/src/README",
        "api service, broken.\n",
    );
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 1);
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(output.contains("CrashLoopBackOff"), "{output}");
    assert!(output.contains("rolled back"), "{output}");
    assert_eq!(w.live("api").unwrap(), old);
    let api: Vec<String> = w
        .deployments()
        .into_iter()
        .filter(|d| d.starts_with("api-"))
        .collect();
    assert_eq!(
        api,
        vec![format!("api-{old}")],
        "the broken version left no debris"
    );
}

/// Every request `convoy` sends names it, so the API server's audit log tells Convoy's
/// requests from kubectl's and a controller's. Read from the in-process server's request log (a
/// real server logs it only at `--v=3`, which CI does not run with).
#[test]
fn every_request_names_convoy_and_its_version_as_its_user_agent() {
    let w = world_with(Cluster::fake_only());
    let fake = w.cluster.fake().expect("the in-process server");
    fake.clear_requests();
    w.convoy(repo(), &["deploy", "--env", "staging", "--dry-run"], 0);
    let agents: std::collections::BTreeSet<Option<String>> = fake
        .requests()
        .into_iter()
        .filter(|r| !r.resource.is_empty())
        .map(|r| r.user_agent)
        .collect();
    let convoy = format!("convoy/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(agents, [Some(convoy)].into(), "{agents:?}");
}

#[test]
fn a_deploy_while_someone_holds_the_lease_exits_4_naming_them() {
    let w = world();
    let lock = LeaseLock::new(w.cluster.client.clone(), &w.cluster.namespace, "staging");
    let alice = Holder {
        user: "alice".into(),
        host: "laptop".into(),
        ci: None,
        pid: 42,
        pid_namespace: None,
    };
    w.runtime
        .block_on(lock.acquire(
            &alice,
            "t",
            Duration::from_secs(300),
            jiff::Timestamp::now(),
        ))
        .unwrap();
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 4);
    assert!(ran.stderr.contains("alice@laptop"), "{}", ran.stderr);
    assert!(w.deployments().is_empty(), "nothing was changed");
}

#[test]
fn objects_the_api_server_refuses_stop_the_release_before_any_change() {
    let w = world();
    // An admission policy refuses the HPAs, dry runs included (a ValidatingAdmissionPolicy on a
    // real server).
    w.runtime
        .block_on(w.cluster.refuse_autoscalers("no HPAs here"));
    if let Some(fake) = w.cluster.fake() {
        fake.clear_requests();
    }
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 2);
    assert!(
        ran.stderr.contains("refused before any change"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("denied request: no HPAs here"),
        "{}",
        ran.stderr
    );
    assert!(w.managed_objects().is_empty(), "nothing was applied");
    if let Some(fake) = w.cluster.fake() {
        let writes: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| {
                !r.dry_run
                    && matches!(
                        r.verb.as_str(),
                        "apply" | "create" | "update" | "patch" | "delete"
                    )
                    && r.resource != "leases"
                    // The environment's digest key is made on first use: state, like the lock.
                    && !(r.resource == "secrets" && r.verb == "create")
            })
            .collect();
        assert!(writes.is_empty(), "no write but the lock's: {writes:?}");
    }
    let records = convoy::targets::kubernetes::ReleaseConfigMaps::new(
        w.cluster.client.clone(),
        &w.cluster.namespace,
        "staging",
        10,
    );
    use convoy::execute::ReleaseStore;
    let latest = w.runtime.block_on(records.latest()).unwrap();
    assert!(latest.is_none(), "no release was recorded: {latest:?}");
    drop(ran);
}

#[test]
fn a_killed_deploy_is_resumed_from_its_journal() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    // Pods take 2 s, so the kill lands mid-provision.
    let w = world_with(Cluster::with_ready_delay(Duration::from_secs(2)));
    let dir = repo();
    let mut child = std::process::Command::new(convoy_test_support::cli::bin())
        .args(["deploy", "--env", "staging"])
        .args(w.cluster.context_args())
        .current_dir(dir.path())
        .env("KUBECONFIG", &w.cluster.kubeconfig)
        .env("TICKETSHOP_DB_PASSWORD", "test-password")
        .env("PAYMENTS_API_KEY", "test-key")
        .env_remove("CONVOY_PROJECT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the first version's Deployment exists: mid-provision.
    let api: Api<Deployment> = Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    let appeared = w.runtime.block_on(async {
        let mut applied = watcher(api, watcher::Config::default())
            .applied_objects()
            .boxed();
        tokio::time::timeout(Duration::from_secs(60), applied.next()).await
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        matches!(appeared, Ok(Some(Ok(_)))),
        "a Deployment was applied before the kill"
    );

    let ran = w.convoy(dir, &["status", "--env", "staging"], 0);
    assert!(ran.stdout.contains("unfinished"), "{}", ran.stdout);
    // The killed run's lease names a process of this host that is gone: no waiting it out.
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging", "--resume"], 0);
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        output.contains("release 1 of staging succeeded"),
        "{output}"
    );
    for service in ["payments", "api", "web"] {
        assert!(w.live(service).is_some(), "{service} is served");
    }
}

#[test]
fn regression_status_and_diff_see_a_deployment_being_deleted_as_gone() {
    use crate::kubernetes::{hold_and_delete, release};
    let w = world();
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 0);
    let api = format!("api-{}", w.live("api").unwrap());
    // Someone deletes the live version, and a finalizer holds it Terminating (Ready meanwhile).
    w.runtime.block_on(hold_and_delete(&w.cluster, &api));
    let ran = w.convoy(ran.dir, &["status", "--env", "staging"], 0);
    let api_line: Vec<&str> = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("api "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        api_line,
        ["api", "-"],
        "neither live nor warm:\n{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 1);
    assert!(
        ran.stdout.contains(&format!(
            "+ Deployment/{api} (being deleted; a deploy creates it again"
        )),
        "{}",
        ran.stdout
    );
    w.runtime.block_on(release(&w.cluster, &api));
    drop(ran);
}

#[test]
fn regression_a_namespace_being_deleted_is_named_not_taken_for_missing_permissions() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    let w = world();
    // Something in the namespace has a finalizer, so deleting it leaves it Terminating.
    let held: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
    }))
    .unwrap();
    let configmaps: Api<ConfigMap> =
        Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    let namespaces: Api<Namespace> = Api::all(w.cluster.client.clone());
    w.runtime.block_on(async {
        configmaps.create(&Default::default(), &held).await.unwrap();
        namespaces
            .delete(&w.cluster.namespace, &Default::default())
            .await
            .unwrap();
    });
    let namespace = &w.cluster.namespace;
    let ran = w.convoy(repo(), &["diff", "--env", "staging"], 1);
    assert!(
        ran.stderr
            .contains(&format!("namespace `{namespace}` is being deleted")),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("help: wait until the namespace is gone"),
        "{}",
        ran.stderr
    );
    // Refused before the lock is taken: making the environment's digest key meets it first.
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 1);
    assert!(
        ran.stderr
            .contains(&format!("namespace `{namespace}` is being deleted")),
        "{}",
        ran.stderr
    );
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    w.runtime
        .block_on(configmaps.patch(
            "held",
            &Default::default(),
            &kube::api::Patch::Merge(&release),
        ))
        .unwrap();
}

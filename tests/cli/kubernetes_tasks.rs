//! Release tasks and live flags on the example's `staging` Kubernetes environment, end to end
//! through the binary: a migration as a Job built from the revision's pod template before the
//! switch, a failing one rolled back, flags in the `ticketshop-flags` ConfigMap, and `convoy task
//! run` on the live revision under the lease.
//!
//! Jobs need a Job controller: these run against the real control plane
//! (`tests/support/k8s/with-cluster.sh`, `CONVOY_TEST_KUBECONFIG`); the in-process test API
//! server serves no `batch/v1`, so there the Job tests stop after saying so (the flags test runs
//! on both).

use std::time::Duration;

use convoy::execute::{EnvLock, Holder};
use convoy::targets::kubernetes::LeaseLock;
use convoy_test_support::cli::commit_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use crate::kubernetes_e2e::{World, edit, repo, world};

/// Whether the cluster runs Jobs (the real control plane); says so when not.
fn runs_jobs(w: &World) -> bool {
    if !w.cluster.is_real() {
        eprintln!("Jobs need the real control plane: run under tests/support/k8s/with-cluster.sh");
    }
    w.cluster.is_real()
}

/// The example with a `migrate` task for api (`command`, before the switch, 2 minutes, under
/// maintenance) and every pod running as its service's ServiceAccount (made here), committed.
fn with_migrate(w: &World, dir: &std::path::Path, command: &str) {
    let file = dir.join("convoy.yaml");
    let anchor = "    image: registry.example.com/ticketshop/api\n";
    let text = convoy_test_support::cli::without_tasks(&std::fs::read_to_string(&file).unwrap())
        .replace(
        anchor,
        &format!(
            "{anchor}    tasks:\n      migrate: {{ command: {}, when: before_switch, timeout: 2m, maintenance: true }}\n",
            serde_json::to_string(command).unwrap()
        ),
    );
    std::fs::write(&file, text).unwrap();
    let template = dir.join("templates/kubernetes/deployment.yaml");
    let built_in =
        convoy_test_support::repository_root().join("templates/kubernetes/deployment.yaml");
    let source = std::fs::read_to_string(if template.exists() {
        &template
    } else {
        &built_in
    });
    let text = source.unwrap().replacen(
        "      volumes:\n",
        "      serviceAccountName: {{ service | json }}\n      volumes:\n",
        1,
    );
    std::fs::create_dir_all(template.parent().unwrap()).unwrap();
    std::fs::write(&template, text).unwrap();
    commit_all(dir, "api migrate task, service accounts");
    let accounts: Api<ServiceAccount> =
        Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    for service in ["payments", "api", "web", "worker"] {
        let account: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": service}})).unwrap();
        w.runtime
            .block_on(accounts.create(&PostParams::default(), &account))
            .unwrap();
    }
}

fn job(w: &World, name: &str) -> Option<Job> {
    let api: Api<Job> = Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    w.runtime.block_on(api.get_opt(name)).unwrap()
}

fn deployment(w: &World, name: &str) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    w.runtime.block_on(api.get(name)).unwrap()
}

fn flags_map(w: &World) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(w.cluster.client.clone(), &w.cluster.namespace);
    w.runtime.block_on(api.get_opt("ticketshop-flags")).unwrap()
}

fn flags_json(w: &World) -> serde_json::Value {
    let map = flags_map(w);
    let text = map
        .and_then(|m| m.data?.get("flags.json").cloned())
        .unwrap_or_else(|| "{}".to_string());
    serde_json::from_str(&text).unwrap()
}

/// The JSON events of a run, in order.
fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_before_switch_migration_runs_as_a_job_of_the_revisions_template_before_the_switch() {
    let w = world();
    if !runs_jobs(&w) {
        return;
    }
    let dir = repo();
    with_migrate(&w, dir.path(), "bin/migrate");
    let ran = w.convoy(dir, &["deploy", "--env", "staging"], 0);
    let old = w.live("api").unwrap();
    edit(
        ran.dir.path(),
        "services/api/src/README",
        "api, release 2\n",
    );
    let ran = w.convoy(
        ran.dir,
        &["--output", "json", "deploy", "--env", "staging"],
        0,
    );
    let new = w.live("api").unwrap();
    assert_ne!(old, new);

    let job = job(&w, &format!("api-{new}-migrate")).expect("the task's Job");
    let labels = job.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "convoy");
    assert_eq!(labels["convoy.dev/task"], "migrate");
    assert_eq!(labels["convoy.dev/revision"], new);
    assert_eq!(labels["convoy.dev/release"], "2");
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(120));
    assert_eq!(spec.ttl_seconds_after_finished, Some(86_400));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.service_account_name.as_deref(), Some("api"));
    let served = deployment(&w, &format!("api-{new}"));
    let served_pod = served.spec.unwrap().template.spec.unwrap();
    let (task, server) = (&pod.containers[0], &served_pod.containers[0]);
    assert_eq!(task.image, server.image, "the revision's image");
    assert_eq!(task.env_from, server.env_from, "the revision's envFrom");
    assert_eq!(task.resources, server.resources);
    assert_eq!(
        task.command.clone().unwrap(),
        ["sh", "-c", "bin/migrate"],
        "the task's command in a shell"
    );
    let status = job.status.unwrap();
    assert_eq!(status.succeeded, Some(1), "it ran to completion");

    // Before the switch: the task step ended before api's first switch started.
    let events = events(&ran.stdout);
    let position = |wanted: &dyn Fn(&serde_json::Value) -> bool| {
        events.iter().position(wanted).expect("the event")
    };
    let task_step = events
        .iter()
        .find(|e| {
            e["event"] == "step_started"
                && e["action"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("task migrate")
        })
        .expect("a task step")["step"]
        .clone();
    let task_done = position(&|e| e["event"] == "step_succeeded" && e["step"] == task_step);
    let switch = position(&|e| {
        e["event"] == "step_started"
            && e["service"] == "api"
            && e["action"].as_str().unwrap_or("").starts_with("switch")
    });
    assert!(
        task_done < switch,
        "the task ended before api's first switch"
    );

    // Maintenance was on around it (history) and is off now.
    assert_eq!(flags_json(&w), serde_json::json!({}));
    let ran = w.convoy(ran.dir, &["flags", "history", "--env", "staging"], 0);
    assert!(ran.stdout.contains("maintenance"), "{}", ran.stdout);
    assert!(ran.stdout.contains("read_only → (unset)"), "{}", ran.stdout);

    // The built-in Deployment mounts the flags read-only, refreshable (no subPath).
    let volume = served_pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "convoy-flags");
    let config_map = volume.expect("the flags volume").config_map.unwrap();
    assert_eq!(config_map.name, "ticketshop-flags");
    assert_eq!(config_map.optional, Some(true));
    let mount = server.volume_mounts.clone().unwrap();
    let mount = mount.iter().find(|m| m.name == "convoy-flags").unwrap();
    assert_eq!(mount.mount_path, "/etc/convoy/flags");
    assert_eq!(mount.read_only, Some(true));
    assert_eq!(mount.sub_path, None, "a subPath mount never refreshes");
    let env = server.env.clone().unwrap();
    let file = env.iter().find(|e| e.name == "CONVOY_FLAGS_FILE").unwrap();
    assert_eq!(file.value.as_deref(), Some("/etc/convoy/flags/flags.json"));
}

#[test]
fn a_failing_migration_job_fails_the_release_naming_the_exit_code_and_rolls_back() {
    let w = world();
    if !runs_jobs(&w) {
        return;
    }
    let dir = repo();
    with_migrate(&w, dir.path(), "bin/migrate");
    let ran = w.convoy(dir, &["deploy", "--env", "staging"], 0);
    let old = w.live("api").unwrap();
    // The stand-in kubelet exits the task's container 1; the service's pods stay healthy.
    let file = ran.dir.path().join("convoy.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "command: \"bin/migrate\"",
        "command: \"bin/migrate # convoy-test-exit=1\"",
    );
    std::fs::write(&file, text).unwrap();
    edit(
        ran.dir.path(),
        "services/api/src/README",
        "api, broken migration\n",
    );
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 1);
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(output.contains("exit code 1"), "{output}");
    assert!(output.contains("logs unavailable"), "{output}");
    assert!(output.contains("rolled back"), "{output}");
    assert_eq!(
        w.live("api").unwrap(),
        old,
        "the old revision still selected"
    );
    assert_eq!(flags_json(&w), serde_json::json!({}), "maintenance is off");
}

#[test]
fn flags_on_kubernetes_live_in_a_configmap_and_a_stale_write_is_refused() {
    let w = world();
    let ran = w.convoy(
        repo(),
        &["flags", "set", "checkout=new", "--env", "staging"],
        0,
    );
    assert!(ran.stdout.contains("flags at revision 1"), "{}", ran.stdout);
    let map = flags_map(&w).expect("the flags ConfigMap");
    let data = map.data.unwrap();
    assert_eq!(data["checkout"], "new", "one key per flag");
    let whole: serde_json::Value = serde_json::from_str(&data["flags.json"]).unwrap();
    assert_eq!(whole, serde_json::json!({"checkout": "new"}));
    assert_eq!(
        map.metadata.annotations.unwrap()["convoy.dev/flags-revision"],
        "1"
    );
    // Decided on revision 0, but someone changed them since: refused, not overwritten.
    let ran = w.convoy(
        ran.dir,
        &[
            "flags",
            "set",
            "checkout=old",
            "--expect",
            "0",
            "--env",
            "staging",
        ],
        4,
    );
    assert!(
        ran.stderr.contains("changed since revision 0"),
        "{}",
        ran.stderr
    );
    assert_eq!(flags_json(&w), serde_json::json!({"checkout": "new"}));
    let ran = w.convoy(
        ran.dir,
        &["flags", "unset", "checkout", "--env", "staging"],
        0,
    );
    let ran = w.convoy(ran.dir, &["flags", "list", "--env", "staging"], 0);
    assert!(
        ran.stdout.contains("flags at revision 2\n  (none)"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["flags", "history", "--env", "staging"], 0);
    assert!(ran.stdout.contains("(unset) → new"), "{}", ran.stdout);
    assert!(ran.stdout.contains("new → (unset)"), "{}", ran.stdout);
}

#[test]
fn task_run_runs_on_the_live_revision_again_each_time_and_waits_for_no_one_holding_the_lease() {
    let w = world();
    if !runs_jobs(&w) {
        return;
    }
    let dir = repo();
    with_migrate(&w, dir.path(), "bin/migrate");
    let ran = w.convoy(dir, &["deploy", "--env", "staging"], 0);
    let live = w.live("api").unwrap();
    let name = format!("api-{live}-migrate");
    let released = job(&w, &name).expect("the release's Job").metadata.uid;
    let args = [
        "task",
        "run",
        "migrate",
        "--env",
        "staging",
        "--service",
        "api",
    ];
    let ran = w.convoy(ran.dir, &args, 0);
    assert!(
        ran.stdout.contains(&format!("ran on revision {live}")),
        "{}",
        ran.stdout
    );
    let by_hand = job(&w, &name).expect("the by-hand Job");
    assert_ne!(
        by_hand.metadata.uid, released,
        "run again, not taken as done"
    );
    assert_eq!(
        by_hand.metadata.labels.unwrap()["convoy.dev/release"],
        "by-hand"
    );
    assert_eq!(by_hand.status.unwrap().succeeded, Some(1));
    assert_eq!(
        flags_json(&w),
        serde_json::json!({}),
        "maintenance is off after"
    );

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
    let ran = w.convoy(ran.dir, &args, 4);
    assert!(ran.stderr.contains("alice@laptop"), "{}", ran.stderr);
    let after = job(&w, &name).unwrap();
    assert_eq!(after.metadata.uid, by_hand.metadata.uid, "nothing ran");

    let ran = w.convoy(
        ran.dir,
        &[
            "task",
            "run",
            "seed",
            "--env",
            "staging",
            "--service",
            "api",
        ],
        2,
    );
    assert!(ran.stderr.contains("has no task `seed`"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("help: tasks of `api`: migrate"),
        "{}",
        ran.stderr
    );
}

fn migrate(version: &str) -> convoy::plan::Action {
    convoy::plan::Action::Task {
        task: "migrate".to_string(),
        version: version.to_string(),
        command: "bin/migrate".to_string(),
        when: convoy::config::TaskWhen::BeforeSwitch,
        maintenance: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_the_tasks_name_that_convoy_did_not_make_is_an_error_and_left_alone() {
    use crate::kubernetes::{apply, fixture};
    let f = fixture(convoy::config::Strategy::Bluegreen, &[100], &[]).await;
    if !f.cluster.is_real() {
        eprintln!("Jobs need the real control plane: run under tests/support/k8s/with-cluster.sh");
        return;
    }
    let api: Api<Job> = Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let foreign: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "api-a2-migrate"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "x", "image": "someone/else:1"}]}}},
    }))
    .unwrap();
    let made = api.create(&PostParams::default(), &foreign).await.unwrap();
    let error = apply(&f.target, "api", migrate("a2")).await.unwrap_err();
    let text = convoy::diagnostic::chain(&error);
    assert!(text.contains("is not this task's"), "{text}");
    let help = convoy::diagnostic::Diagnose::help(&error).unwrap();
    assert!(
        help.contains("never deletes what it did not make"),
        "{help}"
    );
    let kept = api.get("api-a2-migrate").await.unwrap();
    assert_eq!(kept.metadata.uid, made.metadata.uid, "left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_release_counts_its_completed_job_as_done_and_does_not_run_it_again() {
    use crate::kubernetes::{apply, fixture};
    let f = fixture(convoy::config::Strategy::Bluegreen, &[100], &[]).await;
    if !f.cluster.is_real() {
        eprintln!("Jobs need the real control plane: run under tests/support/k8s/with-cluster.sh");
        return;
    }
    apply(&f.target, "api", migrate("a2")).await.unwrap();
    let api: Api<Job> = Api::namespaced(f.cluster.client.clone(), &f.cluster.namespace);
    let first = api.get("api-a2-migrate").await.unwrap();
    assert_eq!(first.status.unwrap().succeeded, Some(1));
    // A resume is the same revision's step again: the finished Job is the task done.
    apply(&f.target, "api", migrate("a2")).await.unwrap();
    let again = api.get("api-a2-migrate").await.unwrap();
    assert_eq!(
        again.metadata.uid, first.metadata.uid,
        "not run a second time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_task_names_oomkilled_and_exit_137() {
    use crate::kubernetes::{apply, fixture};
    let f = fixture(convoy::config::Strategy::Bluegreen, &[100], &[]).await;
    if !f.cluster.is_real() {
        eprintln!("Jobs need the real control plane: run under tests/support/k8s/with-cluster.sh");
        return;
    }
    let mut action = migrate("a2");
    if let convoy::plan::Action::Task { command, .. } = &mut action {
        *command = "bin/migrate # convoy-test-oom".to_string();
    }
    let error = apply(&f.target, "api", action).await.unwrap_err();
    let text = convoy::diagnostic::chain(&error);
    assert!(text.contains("OOMKilled (exit code 137)"), "{text}");
    assert!(text.contains("logs unavailable"), "{text}");
}

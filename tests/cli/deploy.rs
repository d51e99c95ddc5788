//! Deploys of the example project to its `local` host environment, end to end, on temporary git
//! repositories: the rollout, a one-service change, a failing health check, rollback, the lock.

use std::path::Path;

use convoy_test_support::cli::{Test, commit_all, example_repo};

fn live(dir: &Path, service: &str) -> Option<String> {
    let target = std::fs::read_link(dir.join(".convoy/srv").join(service).join("live")).ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

fn deploy(dir: tempfile::TempDir, status: i32) -> (tempfile::TempDir, String) {
    let ran = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(status)
        .run();
    (ran.dir, format!("{}{}", ran.stdout, ran.stderr))
}

fn edit(dir: &Path, file: &str, contents: &str) {
    std::fs::write(dir.join(file), contents).unwrap();
    commit_all(dir, &format!("edit {file}"));
}

#[test]
fn deploy_then_a_one_service_change_then_rollback() {
    let (dir, output) = deploy(example_repo(), 0);
    assert!(output.contains("release 1 of local succeeded"), "{output}");
    let first: Vec<Option<String>> = ["payments", "api", "web", "worker"]
        .iter()
        .map(|s| live(dir.path(), s))
        .collect();
    assert!(first.iter().all(Option::is_some), "{first:?}");
    // The prepare hook ran in the version directory before it went live.
    assert!(dir.path().join(".convoy/srv/api/live/.prepared").exists());

    edit(
        dir.path(),
        "services/api/src/README",
        "api service, now faster.\n",
    );
    let plan = Test::in_dir(dir)
        .args(["--output", "json", "plan", "--env", "local"])
        .run();
    let event: serde_json::Value =
        serde_json::from_str(plan.stdout.lines().next().unwrap()).unwrap();
    let changed: Vec<&str> = event["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["service"].as_str().unwrap())
        .collect();
    assert_eq!(changed, vec!["api"], "only api changed");

    let (dir, output) = deploy(plan.dir, 0);
    assert!(output.contains("release 2 of local succeeded"), "{output}");
    let api_before = first[1].clone().unwrap();
    let api_after = live(dir.path(), "api").unwrap();
    assert_ne!(api_before, api_after);
    assert_eq!(
        live(dir.path(), "payments"),
        first[0],
        "unchanged services are not touched"
    );

    // The previous version is still on disk: rollback is one symlink swing, no provision.
    let back = Test::in_dir(dir).args(["rollback", "--env", "local"]).run();
    assert!(!back.stderr.contains("provision"), "{}", back.stderr);
    assert_eq!(live(back.dir.path(), "api"), Some(api_before));
    let history = Test::in_dir(back.dir)
        .args(["history", "--env", "local"])
        .run();
    assert_eq!(
        history
            .stdout
            .lines()
            .filter(|l| l.contains("succeeded"))
            .count(),
        3,
        "{}",
        history.stdout
    );
}

#[test]
fn a_failing_health_check_swings_back_and_exits_1() {
    let (dir, _) = deploy(example_repo(), 0);
    let good = live(dir.path(), "api").unwrap();
    edit(
        dir.path(),
        "services/api/tools/health",
        "#!/bin/sh\necho 'database unreachable' >&2\nexit 1\n",
    );
    let (dir, output) = deploy(dir, 1);
    assert!(output.contains("rolled back"), "{output}");
    assert!(
        output.contains("database unreachable"),
        "the health command's words reach the user: {output}"
    );
    assert_eq!(
        live(dir.path(), "api"),
        Some(good.clone()),
        "the old version serves again"
    );
    // No debris: the version that never became healthy is gone from disk.
    let versions: Vec<String> = std::fs::read_dir(dir.path().join(".convoy/srv/api/versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(versions, vec![good]);
}

#[test]
fn a_held_lock_refuses_a_second_deploy_with_exit_4() {
    let dir = example_repo();
    let lease = r#"{"holder":{"user":"alice","host":"laptop","ci":null,"pid":4242},"token":"x",
        "acquired":"2026-11-22T10:00:00Z","renewed":"2026-11-22T10:00:00Z","expires":"2099-01-01T00:00:00Z"}"#;
    std::fs::create_dir_all(dir.path().join(".convoy/srv")).unwrap();
    std::fs::write(dir.path().join(".convoy/srv/deploy.lock"), lease).unwrap();
    Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(4)
        .stderr_has(
            "environment `local` is locked by alice@laptop (pid 4242) since 2026-11-22T10:00:00Z",
        )
        .stderr_has("convoy lock release --env local")
        .run();
}

#[test]
fn a_tampered_artifact_is_refused_and_nothing_goes_live() {
    let built = Test::in_dir(example_repo()).args(["build"]).run();
    let store = built.dir.path().join(".convoy/artifacts/api");
    let version_dir = std::fs::read_dir(&store)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let tarball = std::fs::read_dir(&version_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap();
    let mut bytes = std::fs::read(&tarball).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&tarball, bytes).unwrap();
    let (dir, output) = deploy(built.dir, 1);
    assert!(output.contains("sha256"), "{output}");
    for service in ["payments", "api", "web", "worker"] {
        assert_eq!(
            live(dir.path(), service),
            None,
            "{service} must not go live"
        );
    }
}

#[test]
fn an_unfinished_release_blocks_a_plain_deploy_until_resumed() {
    let (dir, _) = deploy(example_repo(), 0);
    // What a killed run leaves: a record still in progress (every step journaled as done here).
    let record_path = dir.path().join(".convoy/srv/releases/00000001.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["outcome"] = "in_progress".into();
    record["finished"] = serde_json::Value::Null;
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();

    let blocked = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(3)
        .stderr_has("release 1 of `local` is unfinished")
        .stderr_has("`convoy deploy --env local --resume` continues it")
        .run();
    Test::in_dir(blocked.dir)
        .args(["deploy", "--env", "local", "--resume"])
        .stdout_has("release 1 of local succeeded")
        .run();
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let ran = Test::in_dir(example_repo())
        .args(["deploy", "--env", "local", "--dry-run"])
        .stdout_has("provision:")
        .run();
    assert!(ran.stdout.contains("payments"), "{}", ran.stdout);
    assert!(!ran.dir.path().join(".convoy/srv/payments").exists());
}

#[test]
fn artifacts_gc_keeps_every_version_a_release_references() {
    let (dir, _) = deploy(example_repo(), 0);
    edit(dir.path(), "services/api/src/README", "release 2\n");
    let (dir, _) = deploy(dir, 0);
    // Two more api builds that are never deployed: the older of them is fair game for gc.
    edit(
        dir.path(),
        "services/api/src/README",
        "built, never deployed\n",
    );
    let third = Test::in_dir(dir)
        .args(["--output", "json", "build", "api"])
        .run();
    let unreleased: serde_json::Value =
        serde_json::from_str(third.stdout.lines().next().unwrap()).unwrap();
    edit(third.dir.path(), "services/api/src/README", "newest\n");
    let fourth = Test::in_dir(third.dir).args(["build", "api"]).run();
    let gc = Test::in_dir(fourth.dir)
        .args(["artifacts", "gc", "--keep", "1"])
        .run();
    let deleted: Vec<&str> = gc
        .stdout
        .lines()
        .filter(|l| l.starts_with("deleted "))
        .collect();
    assert_eq!(
        deleted,
        vec![format!(
            "deleted api {}",
            unreleased["version"].as_str().unwrap()
        )]
    );
}

#[test]
fn a_protected_environment_needs_yes_when_nobody_can_be_asked() {
    let dir = example_repo();
    let file = dir.path().join("convoy.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("  local:\n", "  local:\n    protected: true\n");
    std::fs::write(&file, text).unwrap();
    commit_all(dir.path(), "protect local");
    let refused = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(2)
        .stderr_has("environment `local` is protected and there is no terminal to ask")
        .stderr_has("help: pass `--yes`")
        .run();
    assert_eq!(
        live(refused.dir.path(), "api"),
        None,
        "nothing was deployed"
    );
    Test::in_dir(refused.dir)
        .args(["deploy", "--env", "local", "--yes"])
        .stdout_has("succeeded")
        .run();
}

#[test]
fn a_failing_hook_that_prints_a_secret_never_puts_it_in_output_or_records() {
    let dir = example_repo();
    // payments' api_key is a secret read from PAYMENTS_API_KEY outside `local`; make it one here.
    std::fs::write(
        dir.path().join("values/payments.local.yaml"),
        "provider:\n  api_key: { secret: { env: PAYMENTS_API_KEY } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("services/payments/tools/health"),
        "#!/bin/sh\necho \"config: $CONVOY_VALUES\"\nexit 1\n",
    )
    .unwrap();
    commit_all(dir.path(), "a health check that leaks");
    let ran = Test::in_dir(dir)
        .env("PAYMENTS_API_KEY", "sk-live-do-not-leak")
        .args(["deploy", "--env", "local"])
        .status(1)
        .run();
    assert!(
        !ran.stdout.contains("sk-live") && !ran.stderr.contains("sk-live"),
        "{}{}",
        ran.stdout,
        ran.stderr
    );
    assert!(
        ran.stderr.contains("********"),
        "the output is shown, masked: {}",
        ran.stderr
    );
    for entry in std::fs::read_dir(ran.dir.path().join(".convoy/srv/releases")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains("sk-live"),
            "a release record holds the secret"
        );
    }
}

#[test]
fn resume_refuses_when_the_values_changed_since_the_release_started() {
    let (dir, _) = deploy(example_repo(), 0);
    let record_path = dir.path().join(".convoy/srv/releases/00000001.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["outcome"] = "in_progress".into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    edit(dir.path(), "values/web.yaml", "cdn: { enabled: true }\n");
    let refused = Test::in_dir(dir)
        .args(["deploy", "--env", "local", "--resume"])
        .status(2)
        .stderr_has("the values of web changed since release 1 of `local` started")
        .stderr_has("help: resume from the same commit")
        .run();
    // Back to the values the release started with, it resumes.
    edit(
        refused.dir.path(),
        "values/web.yaml",
        "cdn: { enabled: false }\n",
    );
    Test::in_dir(refused.dir)
        .args(["deploy", "--env", "local", "--resume"])
        .stdout_has("release 1 of local succeeded")
        .run();
}

#[test]
fn status_needs_no_secrets() {
    let (dir, _) = deploy(example_repo(), 0);
    std::fs::write(
        dir.path().join("values/payments.local.yaml"),
        "provider:\n  api_key: { secret: { env: PAYMENTS_API_KEY } }\n",
    )
    .unwrap();
    commit_all(dir.path(), "a secret nobody exported here");
    Test::in_dir(dir)
        .args(["status", "--env", "local"])
        .stdout_has("release 1 of local succeeded")
        .run();
}

#[test]
fn json_events_carry_their_time_and_completions_how_long_they_took() {
    let ran = Test::in_dir(example_repo())
        .args(["--output", "json", "deploy", "--env", "local"])
        .run();
    let events: Vec<serde_json::Value> = ran
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["event"] == "step_succeeded"));
    let mut last = None;
    for event in &events {
        let ts = event["ts"].as_str().unwrap_or_else(|| panic!("{event}"));
        assert!(ts.ends_with('Z'), "UTC: {ts}");
        let at: jiff::Timestamp = ts.parse().unwrap_or_else(|e| panic!("{ts}: {e}"));
        assert!(last.is_none_or(|last| last <= at), "in order: {ts}");
        last = Some(at);
        let completion = ["step_succeeded", "step_failed", "finished", "release"]
            .iter()
            .any(|kind| event["event"] == *kind);
        assert_eq!(event["elapsed_ms"].is_u64(), completion, "{event}");
    }
    // The release's own time covers each of its steps'.
    let release = events.iter().find(|e| e["event"] == "release").unwrap();
    let longest_step = events
        .iter()
        .filter(|e| e["event"] == "step_succeeded")
        .filter_map(|e| e["elapsed_ms"].as_u64())
        .max()
        .unwrap();
    assert!(
        release["elapsed_ms"].as_u64().unwrap() >= longest_step,
        "{release}"
    );
}

#[test]
fn the_human_output_ends_with_where_the_time_went_by_phase_and_the_slowest_service() {
    let ran = Test::in_dir(example_repo())
        .args(["deploy", "--env", "local"])
        .run();
    let text = format!("{}{}", ran.stdout, ran.stderr);
    let took = text
        .lines()
        .find(|l| l.starts_with("took: "))
        .unwrap_or_else(|| panic!("no summary:\n{text}"));
    // A first deploy provisions and switches every service of the example.
    assert!(took.contains("provision "), "{took}");
    assert!(took.contains("switch "), "{took}");
    let slowest = took
        .split("slowest on the critical path: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{took}"));
    let service = slowest.split_whitespace().next().unwrap();
    assert!(
        ["payments", "api", "web", "worker"].contains(&service),
        "{took}"
    );
}

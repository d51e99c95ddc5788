//! Release tasks on the example's `local` host environment, end to end: a migration before the
//! switch under maintenance, a failing one rolled back, a killed one resumed, a contract step
//! after cleanup.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convoy_test_support::cli::{Test, bin, commit_all, example_repo};

fn srv(dir: &Path) -> PathBuf {
    dir.join(".convoy/srv")
}

fn live(dir: &Path, service: &str) -> Option<String> {
    let link = std::fs::read_link(srv(dir).join(service).join("live")).ok()?;
    Some(link.file_name()?.to_str()?.to_string())
}

/// The example with `tasks` (YAML lines, indented for the map) given to `api`, committed.
fn with_api_tasks(dir: &Path, tasks: &str) {
    let file = dir.join("convoy.yaml");
    let text = convoy_test_support::cli::without_tasks(&std::fs::read_to_string(&file).unwrap());
    let anchor = "    image: registry.example.com/ticketshop/api\n";
    let text = text.replace(anchor, &format!("{anchor}    tasks:\n{tasks}"));
    std::fs::write(&file, text).unwrap();
    commit_all(dir, "api tasks");
}

/// A task command that appends one line to `log`: its name, the revision it runs on, its
/// directory, what `live` pointed at and the flags, as the task saw them.
fn logging(log: &Path, name: &str) -> String {
    format!(
        "echo \"{name} rev=$CONVOY_REVISION dir=$(basename \"$PWD\") live=$(readlink ../../live | xargs basename 2>/dev/null) flags=$(tr -d ' \\n' < \"$CONVOY_FLAGS_FILE\" 2>/dev/null)\" >> '{}'",
        log.display()
    )
}

fn change_api(dir: &Path, text: &str) {
    std::fs::write(dir.join("services/api/src/README"), text).unwrap();
    commit_all(dir, text);
}

fn lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

fn flags(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(srv(dir).join("flags.json")).unwrap_or("{}".into());
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_task_runs_once_per_release_on_the_new_revision_before_the_switch_with_maintenance_on() {
    let dir = example_repo();
    let log = dir.path().join("tasks.log");
    let command = logging(&log, "migrate");
    with_api_tasks(
        dir.path(),
        &format!(
            "      migrate: {{ command: {}, when: before_switch, timeout: 1m, maintenance: true }}\n",
            serde_json::to_string(&command).unwrap()
        ),
    );
    let first = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .stdout_has("release 1 of local succeeded")
        .run();
    let release_1 = live(first.dir.path(), "api").unwrap();
    change_api(first.dir.path(), "release 2\n");
    let plan = Test::in_dir(first.dir)
        .args(["plan", "--env", "local"])
        .stdout_has("task migrate (before_switch) on ")
        .run();
    let second = Test::in_dir(plan.dir)
        .args(["deploy", "--env", "local"])
        .stdout_has("release 2 of local succeeded")
        .run();
    let release_2 = live(second.dir.path(), "api").unwrap();
    assert_ne!(release_1, release_2);
    // A release that leaves api's revision as it is runs none of its tasks.
    std::fs::write(
        second.dir.path().join("services/web/src/README"),
        "web only\n",
    )
    .unwrap();
    commit_all(second.dir.path(), "web only");
    let third = Test::in_dir(second.dir)
        .args(["deploy", "--env", "local"])
        .stdout_has("release 3 of local succeeded")
        .run();
    let maintenance = "flags={\"maintenance\":\"read_only\"}";
    assert_eq!(
        lines(&log),
        [
            format!("migrate rev={release_1} dir={release_1} live= {maintenance}"),
            format!("migrate rev={release_2} dir={release_2} live={release_1} {maintenance}"),
        ],
        "once per release that changes api, in the new revision's directory, before the switch, under maintenance"
    );
    assert_eq!(
        flags(third.dir.path()),
        serde_json::json!({}),
        "maintenance is off after"
    );
}

#[test]
fn a_failing_migration_rolls_back_with_the_old_revision_live_and_maintenance_off() {
    let dir = example_repo();
    std::fs::write(
        dir.path().join("values/api.local.yaml"),
        "db_password: { secret: { env: API_DB_PASSWORD } }\n",
    )
    .unwrap();
    commit_all(dir.path(), "a secret for api");
    let first = Test::in_dir(dir)
        .env("API_DB_PASSWORD", "hunter2-do-not-leak")
        .args(["deploy", "--env", "local"])
        .run();
    let good = live(first.dir.path(), "api").unwrap();
    let command = "echo \"applying 0002 with $CONVOY_VALUES\"; echo 'relation tickets already exists' >&2; exit 3";
    with_api_tasks(
        first.dir.path(),
        &format!(
            "      migrate: {{ command: {}, when: before_switch, maintenance: true }}\n",
            serde_json::to_string(command).unwrap()
        ),
    );
    change_api(first.dir.path(), "release 2\n");
    let ran = Test::in_dir(first.dir)
        .env("API_DB_PASSWORD", "hunter2-do-not-leak")
        .args(["deploy", "--env", "local"])
        .status(1)
        .run();
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(output.contains("rolled back"), "{output}");
    assert!(
        output.contains("relation tickets already exists"),
        "the tail: {output}"
    );
    assert!(output.contains("exit code 3"), "{output}");
    assert!(!output.contains("hunter2"), "secrets are masked: {output}");
    assert_eq!(
        live(ran.dir.path(), "api"),
        Some(good.clone()),
        "the old revision serves"
    );
    assert_eq!(
        flags(ran.dir.path()),
        serde_json::json!({}),
        "maintenance is off again"
    );
    let history = std::fs::read_to_string(srv(ran.dir.path()).join("flags-history.jsonl")).unwrap();
    // Release 1 ran the example's own migration under maintenance too; release 2's are these.
    let second = history
        .lines()
        .filter(|l| l.contains("\"release\":2"))
        .count();
    assert_eq!(second, 2, "on, then off: {history}");
    let versions: Vec<String> = std::fs::read_dir(srv(ran.dir.path()).join("api/versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(versions, vec![good], "the new revision is removed");
}

#[test]
fn a_deploy_killed_during_a_task_resumes_without_running_a_finished_task_again() {
    let dir = example_repo();
    let first = Test::in_dir(dir).args(["deploy", "--env", "local"]).run();
    let log = first.dir.path().join("tasks.log");
    let started = first.dir.path().join("second-started");
    let gate = first.dir.path().join("second-gate");
    let second = format!(
        "touch '{}'; while [ ! -f '{}' ]; do sleep 0.05; done; {}",
        started.display(),
        gate.display(),
        logging(&log, "second")
    );
    with_api_tasks(
        first.dir.path(),
        &format!(
            "      a-first: {{ command: {}, when: before_switch }}\n      b-second: {{ command: {}, when: before_switch, maintenance: true }}\n",
            serde_json::to_string(&logging(&log, "first")).unwrap(),
            serde_json::to_string(&second).unwrap()
        ),
    );
    change_api(first.dir.path(), "release 2\n");
    let dir = Test::in_dir(first.dir).args(["build"]).run().dir;
    let mut child = Command::new(bin())
        .args(["deploy", "--env", "local", "--no-progress"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the deploy never reached the second task"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the deploy ended early with {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL, mid-task
    child.wait().unwrap();
    assert_eq!(
        flags(dir.path())["maintenance"],
        "read_only",
        "left on by the kill"
    );
    std::fs::write(&gate, "").unwrap();
    let resumed = Test::in_dir(dir)
        .args(["deploy", "--env", "local", "--resume"])
        .stdout_has("release 2 of local succeeded")
        .run();
    let ran = lines(&log);
    let firsts = ran.iter().filter(|l| l.starts_with("first ")).count();
    assert_eq!(firsts, 1, "the finished task is not run again: {ran:?}");
    assert!(ran.iter().any(|l| l.starts_with("second ")), "{ran:?}");
    assert_eq!(
        flags(resumed.dir.path()),
        serde_json::json!({}),
        "cleared by the resume"
    );
}

#[test]
fn after_cleanup_tasks_run_after_retirement_and_their_failure_is_a_warning() {
    let dir = example_repo();
    // Keep two revisions on disk: the third release retires the first.
    let file = dir.path().join("convoy.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("keep: 3", "keep: 2")).unwrap();
    let log = dir.path().join("tasks.log");
    let contract = format!("ls ../ > '{}'", log.display());
    with_api_tasks(
        dir.path(),
        &format!(
            "      contract: {{ command: {}, when: after_cleanup }}\n      z-broken: {{ command: 'echo nope; exit 1', when: after_cleanup }}\n",
            serde_json::to_string(&contract).unwrap()
        ),
    );
    let mut dir = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(0)
        .run()
        .dir;
    let mut revisions = vec![live(dir.path(), "api").unwrap()];
    for release in 2..=3 {
        change_api(dir.path(), &format!("release {release}\n"));
        let ran = Test::in_dir(dir)
            .args(["deploy", "--env", "local"])
            .status(0)
            .stdout_has(&format!("release {release} of local succeeded"))
            .run();
        let output = format!("{}{}", ran.stdout, ran.stderr);
        assert!(
            output.contains("z-broken"),
            "the failed task is reported: {output}"
        );
        dir = ran.dir;
        revisions.push(live(dir.path(), "api").unwrap());
    }
    let mut seen = lines(&log);
    seen.sort();
    let mut kept = revisions[1..].to_vec();
    kept.sort();
    assert_eq!(
        seen, kept,
        "the contract step ran once the first revision was gone"
    );
}

#[test]
fn ctrl_c_during_a_maintenance_task_rolls_back_and_clears_maintenance() {
    let dir = example_repo();
    let first = Test::in_dir(dir).args(["deploy", "--env", "local"]).run();
    let good = live(first.dir.path(), "api").unwrap();
    let started = first.dir.path().join("migrate-started");
    let gate = first.dir.path().join("migrate-gate");
    let migrate = format!(
        "touch '{}'; while [ ! -f '{}' ]; do sleep 0.05; done",
        started.display(),
        gate.display()
    );
    with_api_tasks(
        first.dir.path(),
        &format!(
            "      migrate: {{ command: {}, when: before_switch, maintenance: true }}\n",
            serde_json::to_string(&migrate).unwrap()
        ),
    );
    change_api(first.dir.path(), "release 2\n");
    let dir = Test::in_dir(first.dir).args(["build"]).run().dir;
    let child = Command::new(bin())
        .args(["deploy", "--env", "local", "--no-progress"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the deploy never reached the task"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        flags(dir.path())["maintenance"],
        "read_only",
        "on while it runs"
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    std::fs::write(&gate, "").unwrap(); // the task in flight finishes; nothing new starts
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        live(dir.path(), "api"),
        Some(good),
        "the old revision serves"
    );
    assert_eq!(
        flags(dir.path()),
        serde_json::json!({}),
        "maintenance is off"
    );
}

#[test]
fn task_run_runs_a_task_by_hand_on_the_live_revision_under_maintenance_and_the_lease() {
    let dir = example_repo();
    let log = dir.path().join("tasks.log");
    with_api_tasks(
        dir.path(),
        &format!(
            "      seed: {{ command: {}, when: after_switch, timeout: 1m, maintenance: true }}\n",
            serde_json::to_string(&logging(&log, "seed")).unwrap()
        ),
    );
    let first = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .stdout_has("release 1 of local succeeded")
        .run();
    let revision = live(first.dir.path(), "api").unwrap();
    let args = ["task", "run", "seed", "--env", "local", "--service", "api"];
    let ran = Test::in_dir(first.dir)
        .args(args)
        .stdout_has(&format!(
            "api: task seed ran on revision {revision} in local"
        ))
        .run();
    let maintenance = "flags={\"maintenance\":\"read_only\"}";
    assert_eq!(
        lines(&log),
        [
            format!("seed rev={revision} dir={revision} live={revision} {maintenance}"),
            format!("seed rev={revision} dir={revision} live={revision} {maintenance}"),
        ],
        "once in the release, once by hand, both on the live revision under maintenance"
    );
    assert_eq!(
        flags(ran.dir.path()),
        serde_json::json!({}),
        "maintenance is off after"
    );

    // Someone holds the environment's lease: refused with exit 4, nothing run.
    let lease = r#"{"holder": {"user": "alice", "host": "laptop", "pid": 42}, "token": "t",
        "acquired": "2026-11-22T10:02:00Z", "renewed": "2026-11-22T10:02:00Z",
        "expires": "2999-01-01T00:00:00Z"}"#;
    std::fs::write(srv(ran.dir.path()).join("deploy.lock"), lease).unwrap();
    let ran = Test::in_dir(ran.dir)
        .args(args)
        .status(4)
        .stderr_has("alice@laptop")
        .run();
    assert_eq!(lines(&log).len(), 2, "nothing ran while the lease was held");
    std::fs::remove_file(srv(ran.dir.path()).join("deploy.lock")).unwrap();

    let ran = Test::in_dir(ran.dir)
        .args(["task", "run", "seed", "--env", "local", "--service", "web"])
        .status(2)
        .stderr_has("service `web` has no task `seed`")
        .stderr_has("help: `web` has no tasks: define one under `services.web.tasks`")
        .run();
    Test::in_dir(ran.dir)
        .args(["task", "run", "seed", "--env", "local", "--service", "nope"])
        .status(2)
        .run();
}

#[test]
fn task_run_before_any_deploy_says_there_is_no_live_revision() {
    let dir = example_repo();
    with_api_tasks(
        dir.path(),
        "      seed: { command: 'true', when: after_switch }\n",
    );
    Test::in_dir(dir)
        .args(["task", "run", "seed", "--env", "local", "--service", "api"])
        .status(2)
        .stderr_has("`api` has no live revision in `local`")
        .stderr_has("help: deploy it first: `convoy deploy --env local api`")
        .run();
}

/// The README's tour of the example: its `migrate` task brings the schema to the version api
/// ships before the switch; a migration that fails is rolled back with the schema and the old
/// revision left as they were; web's `bin/checkout` reads a flag switched live, no redeploy.
#[test]
fn the_examples_migration_failing_migration_and_live_flag_work_as_the_tour_shows() {
    let first = Test::in_dir(example_repo())
        .args(["deploy", "--env", "local"])
        .run();
    let schema = |dir: &Path| std::fs::read_to_string(srv(dir).join("api/schema-version")).ok();
    assert_eq!(schema(first.dir.path()).as_deref(), Some("1\n"));

    // Schema 2 ships with a new api revision.
    std::fs::write(first.dir.path().join("services/api/src/SCHEMA"), "2\n").unwrap();
    commit_all(first.dir.path(), "api: schema 2");
    let second = Test::in_dir(first.dir)
        .args(["deploy", "--env", "local"])
        .run();
    assert_eq!(schema(second.dir.path()).as_deref(), Some("2\n"));
    let good = live(second.dir.path(), "api").unwrap();

    // A migration that cannot apply fails the release: rolled back, schema 2 kept.
    std::fs::write(
        second.dir.path().join("services/api/src/SCHEMA"),
        "3-broken\n",
    )
    .unwrap();
    commit_all(second.dir.path(), "api: a broken migration");
    let failed = Test::in_dir(second.dir)
        .args(["deploy", "--env", "local"])
        .status(1)
        .run();
    let output = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        output.contains("cannot apply schema '3-broken'"),
        "{output}"
    );
    assert!(output.contains("rolled back"), "{output}");
    assert_eq!(live(failed.dir.path(), "api"), Some(good));
    assert_eq!(schema(failed.dir.path()).as_deref(), Some("2\n"));
    assert_eq!(flags(failed.dir.path()), serde_json::json!({}));

    // A flag switched live: web's running revision reads it on its next call.
    let checkout = |dir: &Path| {
        let out = Command::new(srv(dir).join("web/live/bin/checkout"))
            .env_remove("CONVOY_FLAGS_FILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let dir = failed.dir;
    assert_eq!(checkout(dir.path()), "checkout: classic\n");
    let ran = Test::in_dir(dir)
        .args(["flags", "set", "new_checkout=on", "--env", "local"])
        .run();
    assert_eq!(checkout(ran.dir.path()), "checkout: new\n");
}

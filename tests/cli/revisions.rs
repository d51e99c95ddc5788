//! Revisions on the `local` host environment of the example: configuration ships like code, and
//! a rollback restores the recorded release without reading today's working tree.

use std::path::Path;

use convoy_test_support::cli::{Test, commit_all, example_repo, git};

fn live(dir: &Path, service: &str) -> String {
    let link = dir.join(".convoy/srv").join(service).join("live");
    let target = std::fs::read_link(&link).expect("a live version");
    target.file_name().unwrap().to_str().unwrap().to_string()
}

/// The live revision's values (secrets masked), as the service reads them.
fn live_values(dir: &Path, service: &str) -> serde_json::Value {
    let file = dir
        .join(".convoy/srv")
        .join(service)
        .join("live/convoy-values.json");
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

fn write(dir: &Path, file: &str, contents: &str) {
    std::fs::write(dir.join(file), contents).unwrap();
}

/// Removes `revision`'s directory, as cleanup does once it is past `keep`.
fn clean_up(dir: &Path, service: &str, revision: &str) {
    let versions = dir.join(".convoy/srv").join(service).join("versions");
    std::fs::remove_dir_all(versions.join(revision)).unwrap();
}

fn deploy(dir: tempfile::TempDir, extra: &[&str]) -> Test {
    Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .args(extra.iter().copied())
}

#[test]
fn a_values_only_change_rolls_out_as_a_new_revision_and_the_plan_names_the_key() {
    let first = deploy(example_repo(), &[]).run();
    let before = live(first.dir.path(), "api");
    write(
        first.dir.path(),
        "values/local.yaml",
        "log_level: warn\nreplicas: 1\ndatabase:\n  host: localhost\n  password: local-development-only\n",
    );
    commit_all(first.dir.path(), "quieter logs");
    let plan = Test::in_dir(first.dir)
        .args(["plan", "--env", "local"])
        .stdout_has("log_level")
        .stdout_has("\"debug\" → \"warn\"")
        .stdout_has("values/local.yaml:1")
        .run();
    let second = deploy(plan.dir, &[])
        .stdout_has("release 2 of local succeeded")
        .run();
    let after = live(second.dir.path(), "api");
    assert_ne!(before, after, "a new revision went live");
    assert_eq!(
        before.split('-').next(),
        after.split('-').next(),
        "of the same artifact"
    );
    assert_eq!(live_values(second.dir.path(), "api")["log_level"], "warn");
    // The revision replaced is shown warm, with how long ago it stopped serving and its size.
    let status = Test::in_dir(second.dir)
        .args(["status", "--env", "local"])
        .run();
    let api = status
        .stdout
        .lines()
        .find(|l| l.starts_with("api"))
        .unwrap();
    let shown = api.contains(&format!("{before} (")) && api.contains(" ago, ");
    assert!(shown && api.contains(" MB)"), "age and size on disk: {api}");
    // One release in detail: why api changed, what its revision is made of, each step's time.
    let detail = Test::in_dir(status.dir)
        .args(["history", "--env", "local", "--release", "2"])
        .stdout_has("release 2 of local succeeded")
        .stdout_has("value log_level: \"debug\" → \"warn\"")
        .stdout_has(&format!("api  {before} → {after}"))
        .stdout_has("steps:")
        .run();
    assert!(
        detail
            .stdout
            .lines()
            .any(|l| l.contains("provision") && l.contains("— ok in ")),
        "{}",
        detail.stdout
    );
    let second = Test::in_dir(detail.dir)
        .args(["history", "--env", "local", "--release", "9"])
        .status(2)
        .stderr_has("has no release 9")
        .run();
    // Nothing left to do: deploy and plan agree.
    deploy(second.dir, &[]).stdout_has("nothing to do").run();
}

#[test]
fn a_set_flag_is_a_change_and_a_rollback_restores_the_recorded_flag_without_being_given_it() {
    let first = deploy(example_repo(), &[]).run();
    let plan = Test::in_dir(first.dir)
        .args(["plan", "--env", "local", "--set", "log_level=trace"])
        .stdout_has("--set log_level=trace")
        .run();
    let traced = deploy(plan.dir, &["--set", "log_level=trace"])
        .stdout_has("release 2 of local succeeded")
        .run();
    let revision = live(traced.dir.path(), "api");
    assert_eq!(live_values(traced.dir.path(), "api")["log_level"], "trace");
    let plain = deploy(traced.dir, &[])
        .stdout_has("release 3 of local succeeded")
        .run();
    assert_eq!(live_values(plain.dir.path(), "api")["log_level"], "debug");
    // The traced revision was cleaned up: it is made again from its record, with its flag.
    clean_up(plain.dir.path(), "api", &revision);
    let back = Test::in_dir(plain.dir)
        .args(["rollback", "--env", "local"])
        .stdout_has("succeeded")
        .run();
    assert_eq!(live(back.dir.path(), "api"), revision);
    assert_eq!(live_values(back.dir.path(), "api")["log_level"], "trace");
}

#[test]
fn a_rollback_reads_the_recorded_commit_not_a_tree_whose_values_files_are_gone() {
    let first = deploy(example_repo(), &[]).run();
    let old = live(first.dir.path(), "worker");
    write(first.dir.path(), "values/worker.yaml", "concurrency: 9\n");
    commit_all(first.dir.path(), "more workers");
    let second = deploy(first.dir, &[])
        .stdout_has("release 2 of local succeeded")
        .run();
    let dir = second.dir;
    clean_up(dir.path(), "worker", &old);
    // Today's tree cannot even resolve: every values file is gone, and HEAD is elsewhere.
    git(dir.path(), &["rm", "-rq", "values"]);
    commit_all(dir.path(), "values moved away");
    let back = Test::in_dir(dir)
        .args(["rollback", "--env", "local"])
        .stdout_has("succeeded")
        .run();
    assert_eq!(live(back.dir.path(), "worker"), old);
    let values = live_values(back.dir.path(), "worker");
    assert_ne!(values["concurrency"], 9, "{values}");
    assert_eq!(values["database"]["host"], "localhost", "{values}");
}

#[test]
fn a_rollback_whose_secret_source_is_gone_is_refused_before_any_change() {
    let dir = example_repo();
    write(
        dir.path(),
        "values/api.local.yaml",
        "signing_key: { secret: { env: API_SIGNING_KEY } }\n",
    );
    commit_all(dir.path(), "api signs");
    let first = deploy(dir, &[]).env("API_SIGNING_KEY", "k1").run();
    let old = live(first.dir.path(), "api");
    write(first.dir.path(), "services/api/src/README", "api, faster\n");
    commit_all(first.dir.path(), "faster");
    let second = deploy(first.dir, &[]).env("API_SIGNING_KEY", "k1").run();
    let new = live(second.dir.path(), "api");
    clean_up(second.dir.path(), "api", &old);
    let refused = Test::in_dir(second.dir)
        .args(["rollback", "--env", "local"])
        .status(2)
        .stderr_has(&format!("cannot re-create revision {old} of `api`"))
        .stderr_has("API_SIGNING_KEY")
        .stderr_has("help:")
        .run();
    assert_eq!(live(refused.dir.path(), "api"), new, "nothing changed");
    let history = Test::in_dir(refused.dir)
        .args(["history", "--env", "local"])
        .run();
    assert!(!history.stdout.contains("release 3"), "{}", history.stdout);
}

#[test]
fn a_rotated_secret_is_a_change_named_by_key_and_never_by_value() {
    let dir = example_repo();
    write(
        dir.path(),
        "values/api.local.yaml",
        "signing_key: { secret: { env: API_SIGNING_KEY } }\n",
    );
    commit_all(dir.path(), "api signs");
    let first = deploy(dir, &[]).env("API_SIGNING_KEY", "old-key-1").run();
    let old = live(first.dir.path(), "api");
    let plan = Test::in_dir(first.dir)
        .args(["plan", "--env", "local"])
        .env("API_SIGNING_KEY", "new-key-2")
        .stdout_has("secret signing_key")
        .stdout_lacks("new-key-2")
        .stdout_lacks("old-key-1")
        .run();
    let second = deploy(plan.dir, &[])
        .env("API_SIGNING_KEY", "new-key-2")
        .stdout_has("release 2 of local succeeded")
        .run();
    assert_ne!(live(second.dir.path(), "api"), old);
    let records = second.dir.path().join(".convoy/srv/releases");
    for record in std::fs::read_dir(records).unwrap() {
        let text = std::fs::read_to_string(record.unwrap().path()).unwrap();
        assert!(!text.contains("new-key-2") && !text.contains("old-key-1"));
    }
}

#[test]
fn a_revision_deployed_from_a_dirty_tree_is_recorded_so_and_not_re_created_from_its_commit() {
    let first = deploy(example_repo(), &[]).run();
    // Uncommitted: the configuration deployed is the work tree's, and the record says so.
    write(first.dir.path(), "values/worker.yaml", "concurrency: 7\n");
    let dirty = deploy(first.dir, &[]).stderr_has("uncommitted").run();
    let dirty_revision = live(dirty.dir.path(), "worker");
    let record = dirty.dir.path().join(".convoy/srv/releases/00000002.json");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    assert_eq!(record["revisions"]["worker"]["dirty"], true, "{record}");
    write(dirty.dir.path(), "values/worker.yaml", "concurrency: 8\n");
    commit_all(dirty.dir.path(), "eight");
    let third = deploy(dirty.dir, &[]).run();
    clean_up(third.dir.path(), "worker", &dirty_revision);
    Test::in_dir(third.dir)
        .args(["rollback", "--env", "local"])
        .status(2)
        .stderr_has("uncommitted changes")
        .run();
}

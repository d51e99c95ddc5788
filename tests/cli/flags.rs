//! `convoy flags` on the example's `local` host environment: set, unset, list, the history of
//! changes, a refused lost update, and `convoy status` showing them.

use convoy_test_support::cli::{Test, example_repo};

#[test]
fn flags_are_set_listed_unset_and_kept_in_history() {
    let set = Test::in_dir(example_repo())
        .args([
            "flags",
            "set",
            "checkout=new",
            "banner=hello world",
            "--env",
            "local",
        ])
        .stdout_has("local: flags at revision 1")
        .run();
    let file = set.dir.path().join(".convoy/srv/flags.json");
    let read: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        read,
        serde_json::json!({"banner": "hello world", "checkout": "new"})
    );
    let unset = Test::in_dir(set.dir)
        .args(["flags", "unset", "banner", "--env", "local"])
        .stdout_has("local: flags at revision 2")
        .run();
    let listed = Test::in_dir(unset.dir)
        .args(["flags", "list", "--env", "local"])
        .stdout_has("checkout=new")
        .stdout_lacks("banner")
        .run();
    let history = Test::in_dir(listed.dir)
        .args(["flags", "history", "--env", "local", "--output", "json"])
        .run();
    let changes: Vec<serde_json::Value> = history
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["change"].clone())
        .collect();
    let seen: Vec<(u64, &str, &serde_json::Value, &serde_json::Value)> = changes
        .iter()
        .map(|c| {
            (
                c["revision"].as_u64().unwrap(),
                c["key"].as_str().unwrap(),
                &c["old"],
                &c["new"],
            )
        })
        .collect();
    let null = serde_json::Value::Null;
    assert_eq!(
        seen,
        [
            (1, "checkout", &null, &serde_json::json!("new")),
            (1, "banner", &null, &serde_json::json!("hello world")),
            (2, "banner", &serde_json::json!("hello world"), &null),
        ]
    );
    assert!(
        changes
            .iter()
            .all(|c| c["who"].as_str().unwrap().contains('@') && c["at"].is_string())
    );
}

#[test]
fn a_change_decided_on_an_old_revision_is_refused_not_overwritten() {
    let first = Test::in_dir(example_repo())
        .args(["flags", "set", "checkout=new", "--env", "local"])
        .run();
    // Someone else changes the flag after revision 1 was read.
    let other = Test::in_dir(first.dir)
        .args([
            "flags",
            "set",
            "checkout=off",
            "--env",
            "local",
            "--expect",
            "1",
        ])
        .stdout_has("revision 2")
        .run();
    let lost = Test::in_dir(other.dir)
        .args([
            "flags",
            "set",
            "checkout=old",
            "--env",
            "local",
            "--expect",
            "1",
        ])
        .status(4)
        .stderr_has("the flags changed since revision 1 (now revision 2); not overwritten")
        .stderr_has("help:")
        .run();
    Test::in_dir(lost.dir)
        .args(["flags", "list", "--env", "local"])
        .stdout_has("checkout=off")
        .run();
}

#[test]
fn bad_flag_arguments_are_usage_errors() {
    Test::in_dir(example_repo())
        .args(["flags", "set", "no-value", "--env", "local"])
        .status(2)
        .stderr_has("expected KEY=VALUE")
        .run();
}

#[test]
fn status_shows_the_flags_and_maintenance_left_on_too_long() {
    let dir = example_repo();
    // Maintenance turned on two hours ago by a run that died; the example has no tasks, so any
    // time on is longer than the longest task timeout.
    let srv = dir.path().join(".convoy/srv");
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(srv.join("flags.json"), r#"{"maintenance":"read_only"}"#).unwrap();
    let change = serde_json::json!({"revision": 1, "at": "2026-01-01T08:00:00Z", "who": "release 4", "release": 4, "key": "maintenance", "old": null, "new": "read_only"});
    std::fs::write(srv.join("flags-history.jsonl"), format!("{change}\n")).unwrap();
    Test::in_dir(dir)
        .args(["status", "--env", "local"])
        .stdout_has("flags: maintenance=read_only")
        .stdout_has("warning: maintenance has been on for")
        .run();
}

//! `convoy plan` on the example project's `local` environment, pinned: the first release (every
//! service new) and, after a deploy, a change to one service.

use convoy_test_support::cli::{Test, commit_all, example_repo};
use convoy_test_support::convoy_snapshot;

#[test]
fn plan_before_the_first_deploy() {
    let ran = Test::in_dir(example_repo())
        .args(["plan", "--env", "local"])
        .run();
    convoy_snapshot!("plan_local_first_release", ran);
}

#[test]
fn plan_after_a_deploy_and_a_change_to_one_service() {
    let deployed = Test::in_dir(example_repo())
        .args(["deploy", "--env", "local"])
        .run();
    let dir = deployed.dir;
    std::fs::write(
        dir.path().join("services/api/src/README"),
        "api service, now faster.\n",
    )
    .unwrap();
    commit_all(dir.path(), "api: faster");

    let human = Test::in_dir(dir).args(["plan", "--env", "local"]).run();
    convoy_snapshot!("plan_local_one_service_changed", human);

    let json = Test::in_dir(human.dir)
        .args(["--output", "json", "plan", "--env", "local"])
        .run();
    assert_eq!(json.stderr, "");
    convoy_snapshot!(
        "plan_local_one_service_changed_json",
        pretty_json_lines(&json.stdout)
    );
}

/// One JSON object per line, each pretty-printed, so that a reviewer can read the snapshot.
fn pretty_json_lines(text: &str) -> String {
    text.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            serde_json::to_string_pretty(&value).unwrap() + "\n"
        })
        .collect()
}

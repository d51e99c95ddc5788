//! `convoy status` of the example project's `local` environment after a deploy, pinned.

use convoy_test_support::cli::{Test, example_repo};
use convoy_test_support::convoy_snapshot;

#[test]
fn status_after_a_deploy() {
    let deployed = Test::in_dir(example_repo())
        .args(["deploy", "--env", "local"])
        .run();
    let ran = Test::in_dir(deployed.dir)
        .args(["status", "--env", "local"])
        .run();
    convoy_snapshot!("status_local_after_deploy", ran);
}

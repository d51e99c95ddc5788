//! The help a newcomer reads first, pinned so that changes to it are seen in review.

use convoy_test_support::cli::Test;
use convoy_test_support::convoy_snapshot;

#[test]
fn top_level_help() {
    let ran = Test::new().args(["--help"]).run();
    convoy_snapshot!("top_level_help", ran);
}

#[test]
fn no_arguments_prints_usage_and_exits_2() {
    Test::new().status(2).stderr_has("Usage: convoy").run();
}

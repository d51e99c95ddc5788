//! The help a newcomer reads first, and every subcommand's, pinned so that changes to it are
//! seen in review.

use clap::CommandFactory;
use convoy_test_support::cli::Test;
use convoy_test_support::convoy_snapshot;

/// Help wraps at 100 columns (`max_term_width`); a line that does not is one clap could not
/// wrap, e.g. a long value name.
fn assert_fits_100_columns(path: &[String], help: &str) {
    for line in help.lines() {
        let width = line.chars().count();
        assert!(
            width <= 100,
            "convoy {path:?} --help: {width} columns: {line}"
        );
    }
}

#[test]
fn top_level_help() {
    let ran = Test::new().args(["--help"]).run();
    assert_fits_100_columns(&[], &ran.stdout);
    convoy_snapshot!("top_level_help", ran);
}

#[test]
fn no_arguments_prints_usage_and_exits_2() {
    Test::new().status(2).stderr_has("Usage: convoy").run();
}

/// Every visible subcommand's path (`["artifacts", "list"]`, …), nested ones included, from
/// clap's own definition: a new subcommand gets its help snapshot without anyone listing it.
fn subcommand_paths() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, parent: &[String], paths: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            let mut path = parent.to_vec();
            path.push(sub.get_name().to_string());
            walk(sub, &path, paths);
            paths.push(path);
        }
    }
    let mut paths = Vec::new();
    walk(&convoy::cli::Cli::command(), &[], &mut paths);
    paths.sort();
    paths
}

fn snapshot_name(path: &[String]) -> String {
    format!("help_{}", path.join("_"))
}

#[test]
fn every_subcommand_help() {
    let paths = subcommand_paths();
    for nested in [
        ["artifacts", "gc"],
        ["host", "rollback"],
        ["prewarm", "cancel"],
    ] {
        assert!(
            paths.contains(&nested.map(String::from).to_vec()),
            "{paths:?}"
        );
    }
    for path in &paths {
        let ran = Test::new().args(path).args(["--help"]).run();
        assert_fits_100_columns(path, &ran.stdout);
        convoy_snapshot!(snapshot_name(path), ran);
    }
}

/// A subcommand that is removed or renamed takes its help snapshot with it.
#[test]
fn no_help_snapshot_outlives_its_subcommand() {
    let expected: Vec<String> = subcommand_paths()
        .iter()
        .map(|path| format!("{}.snap", snapshot_name(path)))
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/snapshots");
    let stale: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("help_") && name.ends_with(".snap"))
        .filter(|name| !expected.contains(name))
        .collect();
    assert!(
        stale.is_empty(),
        "help snapshots of no subcommand: {stale:?}"
    );
}

//! `convoy host`: one service on one machine, fetched from an artifact store — what EC2 user-data
//! runs. Hooks and health come from the artifact's own `bin/` scripts.

use std::path::Path;

use convoy_test_support::cli::{Test, commit_all, example_repo};

/// Builds api at the repository's HEAD; returns its version.
fn build_api(dir: tempfile::TempDir) -> (tempfile::TempDir, String) {
    let ran = Test::in_dir(dir)
        .args(["--output", "json", "build", "api"])
        .run();
    let event: serde_json::Value =
        serde_json::from_str(ran.stdout.lines().next().unwrap()).unwrap();
    (ran.dir, event["version"].as_str().unwrap().to_string())
}

fn host(dir: tempfile::TempDir, args: &[&str], status: i32) -> (tempfile::TempDir, String) {
    let root = dir.path().join("host-root").display().to_string();
    let store = format!("file://{}", dir.path().join(".convoy/artifacts").display());
    let mut full = vec!["host", "--root", root.as_str()];
    full.extend_from_slice(args);
    if args[0] == "deploy" {
        full.extend_from_slice(&["--store", store.as_str()]);
    }
    let ran = Test::in_dir(dir).args(full).status(status).run();
    (ran.dir, format!("{}{}", ran.stdout, ran.stderr))
}

fn live(dir: &Path) -> Option<String> {
    let link = std::fs::read_link(dir.join("host-root/api/live")).ok()?;
    Some(link.file_name()?.to_str()?.to_string())
}

#[test]
fn deploy_rollback_gc_and_a_failing_health_check_on_one_host() {
    let (dir, first) = build_api(example_repo());
    let (dir, out) = host(dir, &["deploy", "api", &first], 0);
    assert!(out.contains(&format!("api {first} is live")), "{out}");
    assert_eq!(live(dir.path()), Some(first.clone()));
    assert!(
        dir.path().join("host-root/api/live/.prepared").exists(),
        "the artifact's bin/prepare ran"
    );

    std::fs::write(dir.path().join("services/api/src/README"), "second\n").unwrap();
    commit_all(dir.path(), "second");
    let (dir, second) = build_api(dir);
    let (dir, _) = host(dir, &["deploy", "api", &second], 0);
    assert_eq!(live(dir.path()), Some(second.clone()));

    let (dir, out) = host(dir, &["rollback", "api"], 0);
    assert!(out.contains(&format!("api {first} is live")), "{out}");
    assert_eq!(live(dir.path()), Some(first.clone()));

    // A version whose health check fails never stays live, and is not left on disk.
    std::fs::write(
        dir.path().join("services/api/tools/health"),
        "#!/bin/sh\nexit 3\n",
    )
    .unwrap();
    commit_all(dir.path(), "broken");
    let (dir, broken) = build_api(dir);
    let (dir, out) = host(dir, &["deploy", "api", &broken], 1);
    assert!(out.contains("exit code 3"), "{out}");
    assert_eq!(live(dir.path()), Some(first.clone()));
    assert!(
        !dir.path()
            .join("host-root/api/versions")
            .join(&broken)
            .exists()
    );

    let (dir, out) = host(dir, &["gc", "api", "--keep", "1"], 0);
    assert!(out.contains(&format!("kept {first}")), "{out}");
    let (_dir, out) = host(dir, &["status", "api"], 0);
    assert_eq!(out.trim(), format!("api: live {first}; on disk: {first}"));
}

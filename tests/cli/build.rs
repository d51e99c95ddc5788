//! `convoy build` end to end on a copy of the example project in a temporary git repository.

use convoy_test_support::cli::{Test, git};

#[test]
fn builds_all_then_caches_then_rebuilds_only_the_changed_service() {
    let ran = Test::example()
        .file(".gitignore", ".convoy/\n")
        .args(["build", "--project", "."])
        .run_after(|dir| {
            git(dir, &["init", "-q"]);
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-qm", "first"]);
        });
    for service in ["api", "payments", "web", "worker"] {
        assert!(
            ran.stdout.contains(&format!("built   {service} ")),
            "{}",
            ran.stdout
        );
    }
    let dir = ran.dir;
    let again = Test::in_dir(dir)
        .args(["build", "--project", "."])
        .stdout_lacks("built")
        .run();
    assert_eq!(
        again.stdout.matches("cached").count(),
        4,
        "{}",
        again.stdout
    );
    std::fs::write(
        again.dir.path().join("services/api/src/README"),
        "changed\n",
    )
    .unwrap();
    git(again.dir.path(), &["commit", "-qam", "api"]);
    let third = Test::in_dir(again.dir)
        .args(["build", "--project", ".", "--output", "json"])
        .stdout_has(r#""service":"api","sha256""#)
        .run();
    let built: Vec<&str> = third
        .stdout
        .lines()
        .filter(|l| l.contains(r#""status":"built""#))
        .collect();
    assert_eq!(built.len(), 1, "{}", third.stdout);
    assert!(built[0].contains(r#""service":"api""#));
    Test::in_dir(third.dir)
        .args(["artifacts", "list", "api", "--project", "."])
        .stdout_has("api ")
        .run();
}

#[test]
fn a_failing_recipe_exits_1_with_the_command() {
    Test::example()
        .file(
            "services/web/build.sh",
            "#!/bin/sh\necho broken web >&2\nexit 4\n",
        )
        .args(["build", "web", "--project", "."])
        .status(1)
        .stdout_has("failed  web")
        .stderr_has("`./build.sh` exited with exit code 4")
        .stderr_has("broken web")
        .run_after(|dir| {
            use std::os::unix::fs::PermissionsExt;
            let script = dir.join("services/web/build.sh");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            git(dir, &["init", "-q"]);
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-qm", "first"]);
        });
}

#[test]
fn outside_a_git_repository_exits_2() {
    Test::example()
        .args(["build", "--project", "."])
        .status(2)
        .stderr_has("no git repository")
        .stderr_has("help: convoy builds from git")
        .run();
}

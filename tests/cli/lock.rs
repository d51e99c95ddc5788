//! `convoy lock` and `convoy history` on a host environment's state files.

use convoy_test_support::cli::{Test, example_dir};

const LEASE: &str = r#"{
  "holder": {"user": "ci-runner", "host": "build-7", "ci": "github run 42", "pid": 991},
  "token": "t-1",
  "acquired": "2026-11-22T10:02:00Z",
  "renewed": "2026-11-22T10:03:00Z",
  "expires": "2026-11-22T10:04:00Z"
}"#;

#[test]
fn status_names_the_holder_and_release_breaks_the_lease() {
    let test = Test::example().file(".convoy/srv/deploy.lock", LEASE);
    let dir = test.path().to_path_buf();
    let project = dir.to_str().unwrap().to_string();
    let _keeps_dir = test
        .args(["lock", "status", "--env", "local", "--project", &project])
        .stdout_has("local: locked by ci-runner@build-7 (pid 991) [github run 42] since 2026-11-22T10:02:00Z")
        .run();
    Test::new()
        .args(["lock", "release", "--env", "local", "--project", &project])
        .stdout_has("released the lock held by ci-runner@build-7")
        .run();
    assert!(!dir.join(".convoy/srv/deploy.lock").exists());
    Test::new()
        .args(["lock", "status", "--env", "local", "--project", &project])
        .stdout_has("local: not locked")
        .run();
}

#[test]
fn history_of_a_fresh_environment_is_empty() {
    Test::example()
        .args(["history", "--env", "local"])
        .current_dir(".")
        .stdout_has("local: no releases yet")
        .run();
}

#[test]
fn a_kubernetes_environment_without_a_kubeconfig_says_how_to_connect() {
    Test::new()
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args([
            "lock",
            "status",
            "--env",
            "production",
            "--project",
            example_dir().to_str().unwrap(),
        ])
        .status(2)
        .stderr_has("cannot load the kubeconfig context `prod`")
        .stderr_has("help: check KUBECONFIG")
        .run();
}

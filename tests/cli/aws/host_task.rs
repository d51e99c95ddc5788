//! `convoy host task`: what SSM Run Command runs on an instance for a release task — the task's
//! command in the version's directory with the agent's environment file, the command's own exit
//! status, and its output's tail with the secrets masked.

use super::*;

const SECRET: &str = "pa'ss-w0rd-in-env";

/// A host layout with `api` version `v1` on disk, and the env file the agent writes.
fn layout() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("srv/api/versions/v1")).unwrap();
    let env = dir.path().join("etc/api.env");
    std::fs::create_dir_all(env.parent().unwrap()).unwrap();
    let text = format!(
        "# convoy secrets: DATABASE_PASSWORD\nDATABASE_PASSWORD='{}'\nLOG_LEVEL='info'\n",
        SECRET.replace('\'', r"'\''")
    );
    std::fs::write(&env, text).unwrap();
    (dir, env)
}

fn host_task(dir: &tempfile::TempDir, env: &Path, command: &str) -> Test {
    let root = dir.path().join("srv").display().to_string();
    let env = env.display().to_string();
    Test::in_dir(tempfile::tempdir().unwrap())
        .args(["host", "task", "--root", &root, "--env-file", &env])
        .args(["--timeout", "30s", "--command", command])
        .args(["--", "api", "v1", "migrate"])
}

#[test]
fn a_task_runs_in_the_versions_directory_with_the_agents_environment() {
    let (dir, env) = layout();
    host_task(
        &dir,
        &env,
        "printf '%s %s %s' \"$CONVOY_TASK\" \"$LOG_LEVEL\" \"$DATABASE_PASSWORD\" > ran",
    )
    .stdout_has("api v1: task migrate succeeded")
    .run();
    let ran = std::fs::read_to_string(dir.path().join("srv/api/versions/v1/ran")).unwrap();
    assert_eq!(ran, format!("migrate info {SECRET}"));
}

#[test]
fn a_failing_task_exits_with_its_status_and_the_masked_tail() {
    let (dir, env) = layout();
    let ran = host_task(
        &dir,
        &env,
        "echo 'applying 0042'; echo \"cannot log in with $DATABASE_PASSWORD\" >&2; exit 3",
    )
    .status(3)
    .stderr_has("exit code 3")
    .stderr_has("applying 0042")
    .stderr_has("cannot log in with")
    .run();
    assert!(
        !ran.stderr.contains(SECRET),
        "the secret leaked: {}",
        ran.stderr
    );
}

#[test]
fn a_task_of_a_version_not_on_disk_fails_without_running() {
    let (dir, _) = layout();
    let root = dir.path().join("srv").display().to_string();
    Test::in_dir(tempfile::tempdir().unwrap())
        .args(["host", "task", "--root", &root, "--command", "touch ran"])
        .args(["--", "api", "v9", "migrate"])
        .status(1)
        .stderr_has("revision v9 is not on this host")
        .run();
}

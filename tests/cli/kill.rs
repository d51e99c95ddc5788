//! A deploy killed with SIGKILL in the middle of a release: the next plain deploy refuses and
//! says what to do, `--resume` finishes it, and `rollback` reverts it. Nothing is lost.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convoy_test_support::cli::{Test, bin, commit_all, example_repo};

fn live(dir: &Path, service: &str) -> Option<String> {
    let link = std::fs::read_link(dir.join(".convoy/srv").join(service).join("live")).ok()?;
    Some(link.file_name()?.to_str()?.to_string())
}

fn all_live(dir: &Path) -> Vec<Option<String>> {
    ["payments", "api", "web", "worker"]
        .iter()
        .map(|s| live(dir, s))
        .collect()
}

/// A deploy of release 2 (every service changed) held mid-flight: the worker's new version is
/// in its health check (after the other provisions, before any switch) until `gate` exists.
struct MidRelease {
    dir: tempfile::TempDir,
    release_1: Vec<Option<String>>,
    child: std::process::Child,
    gate: std::path::PathBuf,
}

fn mid_release() -> MidRelease {
    let dir = example_repo();
    let first = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .run()
        .dir;
    let release_1 = all_live(first.path());

    let started = first.path().join("worker-health-started");
    let gate = first.path().join("worker-health-gate");
    let health = format!(
        "#!/bin/sh\ntouch '{}'\nwhile [ ! -f '{}' ]; do sleep 0.05; done\ntest -f .prepared\n",
        started.display(),
        gate.display()
    );
    std::fs::write(first.path().join("services/worker/tools/health"), health).unwrap();
    for service in ["payments", "api", "web"] {
        std::fs::write(
            first.path().join(format!("services/{service}/src/README")),
            "release 2\n",
        )
        .unwrap();
    }
    commit_all(first.path(), "release 2");
    let dir = Test::in_dir(first).args(["build"]).run().dir;

    let mut child = Command::new(bin())
        .args(["deploy", "--env", "local", "--no-progress"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the condition (the worker's health check has begun), never for a fixed time.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "the deploy never reached the worker's health check"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the deploy ended early with {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    MidRelease {
        dir,
        release_1,
        child,
        gate,
    }
}

/// SIGKILLs the held deploy, then lets the orphaned health check end.
fn killed_mid_release() -> (tempfile::TempDir, Vec<Option<String>>) {
    let MidRelease {
        dir,
        release_1,
        mut child,
        gate,
    } = mid_release();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::fs::write(&gate, "").unwrap();
    (dir, release_1)
}

#[test]
fn ctrl_c_rolls_the_release_back_and_exits_1() {
    let MidRelease {
        dir,
        release_1,
        child,
        gate,
    } = mid_release();
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    std::fs::write(&gate, "").unwrap(); // the step in flight finishes; nothing new starts
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted: rolling back"), "{stderr}");
    assert_eq!(all_live(dir.path()), release_1);
    Test::in_dir(dir)
        .args(["history", "--env", "local"])
        .stdout_has("rolled back")
        .run();
}

#[test]
fn a_killed_deploy_is_refused_then_resumed() {
    let (dir, release_1) = killed_mid_release();
    assert_eq!(
        all_live(dir.path()),
        release_1,
        "no traffic moved before the kill"
    );
    let refused = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(3)
        .stderr_has("release 2 of `local` is unfinished")
        .run();
    let resumed = Test::in_dir(refused.dir)
        .args(["deploy", "--env", "local", "--resume"])
        .stdout_has("release 2 of local succeeded")
        .run();
    let release_2 = all_live(resumed.dir.path());
    assert!(
        release_2
            .iter()
            .zip(&release_1)
            .all(|(new, old)| new.is_some() && new != old),
        "{release_2:?}"
    );
}

#[test]
fn a_killed_deploy_is_reverted_by_rollback() {
    let (dir, release_1) = killed_mid_release();
    let reverted = Test::in_dir(dir)
        .args(["rollback", "--env", "local"])
        .stdout_has("release 2 of local failed and was rolled back: rolled back by request")
        .status(1)
        .run();
    assert_eq!(all_live(reverted.dir.path()), release_1);
    // No debris: only release 1's versions remain on disk.
    for (service, version) in ["payments", "api", "web", "worker"].iter().zip(&release_1) {
        let on_disk: Vec<String> = std::fs::read_dir(
            reverted
                .dir
                .path()
                .join(".convoy/srv")
                .join(service)
                .join("versions"),
        )
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
        assert_eq!(on_disk, vec![version.clone().unwrap()], "{service}");
    }
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_leaves_the_journal() {
    use std::io::{BufRead, BufReader};
    let MidRelease {
        dir,
        release_1,
        mut child,
        gate,
    } = mid_release();
    let interrupt = |pid: u32| {
        let sent = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    interrupt(child.id());
    // Wait until the first interrupt was taken (its message), so the two signals cannot merge.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("interrupted: rolling back") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "convoy ended before taking the interrupt"
        );
    }
    interrupt(child.id());
    let status = child.wait().unwrap();
    std::fs::write(&gate, "").unwrap();
    assert_eq!(status.code(), Some(3), "stopped, needs attention");
    assert_eq!(all_live(dir.path()), release_1, "nothing switched");
    // The journal is left for the next run, which says what to do.
    let refused = Test::in_dir(dir)
        .args(["deploy", "--env", "local"])
        .status(3)
        .stderr_has("release 2 of `local` is unfinished")
        .run();
    Test::in_dir(refused.dir)
        .args(["rollback", "--env", "local"])
        .status(1)
        .stdout_has("rolled back")
        .run();
}

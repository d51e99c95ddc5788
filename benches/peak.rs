//! Running one `convoy` command and reading what it cost: wall time and peak resident memory,
//! from `wait4`'s resource usage of that child alone (builds and git run before it do not count).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run took.
pub struct Cost {
    pub wall: Duration,
    /// Peak resident set size, in bytes.
    pub peak: u64,
    pub success: bool,
    pub stdout: String,
}

/// Runs `command` to its end, its standard output captured through a file (a pipe could fill up
/// while we are in `wait4`).
pub fn measured(mut command: Command) -> Cost {
    let out = tempfile::tempfile().unwrap();
    let mut reader = out.try_clone().unwrap();
    let started = Instant::now();
    let child = command
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
        .expect("run convoy");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, which wait4 then fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, waited for once here and never through `child`.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    use std::io::{Read, Seek};
    reader.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut stdout = String::new();
    reader.read_to_string(&mut stdout).unwrap();
    Cost {
        wall,
        peak: usage.ru_maxrss as u64 * 1024, // kilobytes on Linux
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
    }
}

//! Running one `convoy` command and reading what it cost: wall time and peak resident memory,
//! from `wait4`'s resource usage of that child alone (builds and git run before it do not count).
//!
//! Not waited for by the bench itself: Linux counts into a child's peak the resident set of the
//! process it was forked from, as it was when it exec'd (`exec` records the old address space's
//! high-water mark). A bench holding the in-process API server with a thousand services' objects
//! would lend the `convoy` it starts hundreds of megabytes it never used. So the bench starts
//! itself again as a small trampoline (`CONVOY_BENCH_PEAK_OF`), which starts `convoy`, waits for
//! it and reports its peak and wall time through a file.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set on the trampoline: the file it reports to.
const TRAMPOLINE: &str = "CONVOY_BENCH_PEAK_OF";

/// What one run took.
pub struct Cost {
    pub wall: Duration,
    /// Peak resident set size, in bytes.
    pub peak: u64,
    pub success: bool,
    pub stdout: String,
}

/// Runs `command` to its end through the trampoline, its standard output captured through a
/// file (a pipe could fill up while the trampoline is in `wait4`).
pub fn measured(command: Command) -> Cost {
    let out = tempfile::tempfile().unwrap();
    let mut reader = out.try_clone().unwrap();
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut trampoline = Command::new(std::env::current_exe().unwrap());
    trampoline.env(TRAMPOLINE, report.path());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => trampoline.env(key, value),
            None => trampoline.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        trampoline.current_dir(dir);
    }
    trampoline
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args());
    let status = trampoline
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .status()
        .expect("run the trampoline");
    let reported = std::fs::read_to_string(report.path()).unwrap();
    let mut fields = reported
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap());
    let (peak_kb, wall_ns) = (fields.next().unwrap(), fields.next().unwrap());
    use std::io::{Read, Seek};
    reader.seek(std::io::SeekFrom::Start(0)).unwrap();
    let mut stdout = String::new();
    reader.read_to_string(&mut stdout).unwrap();
    Cost {
        wall: Duration::from_nanos(wall_ns),
        peak: peak_kb * 1024, // kilobytes on Linux
        success: status.success(),
        stdout,
    }
}

/// The trampoline, when this process is one: runs the command after `--`, waits for it with
/// `wait4`, writes `<peak kB> <wall ns>` to the file `CONVOY_BENCH_PEAK_OF` names and exits with
/// the command's status. Call first thing in `main`; returns at once in the bench itself.
pub fn trampoline() {
    let Some(report) = std::env::var_os(TRAMPOLINE) else {
        return;
    };
    let args: Vec<OsString> = std::env::args_os()
        .skip_while(|a| a != "--")
        .skip(1)
        .collect();
    let (program, args) = args.split_first().expect("a command after --");
    // CONVOY_BENCH_WRAP: a profiler to run the command under, e.g. `heaptrack -o
    // /tmp/convoy-{pid}` ({pid}: this trampoline's, one output per run). Peaks are then its.
    let wrap: Vec<String> = std::env::var("CONVOY_BENCH_WRAP")
        .unwrap_or_default()
        .replace("{pid}", &std::process::id().to_string())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut command = match wrap.split_first() {
        Some((profiler, first)) => {
            let mut command = Command::new(profiler);
            command.args(first).arg(program);
            command
        }
        None => Command::new(program),
    };
    let started = Instant::now();
    let child = command
        .args(args)
        .env_remove(TRAMPOLINE)
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
    let line = format!("{} {}\n", usage.ru_maxrss, wall.as_nanos());
    std::fs::write(report, line).unwrap();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    std::process::exit(code);
}

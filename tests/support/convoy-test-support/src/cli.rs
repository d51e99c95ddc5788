//! A small fluent builder for driving the built `convoy` binary: files, arguments, environment,
//! expected exit code and output. Every CLI test goes through it.

#![allow(dead_code)] // each test module uses a different part of the builder

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `convoy` binary under test: `CONVOY_BIN` when set, else the one cargo built beside the
/// running test executable (tests run from `target/<profile>/deps/`, binaries sit in
/// `target/<profile>/`), as cargo-test-support finds cargo. `CARGO_BIN_EXE_convoy` is only given
/// to convoy's own test targets, not to this crate.
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CONVOY_BIN") {
        return PathBuf::from(path);
    }
    let mut dir = std::env::current_exe().expect("the test executable's path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("convoy{}", std::env::consts::EXE_SUFFIX))
}

/// The repository's example project.
pub fn example_dir() -> PathBuf {
    crate::repository_root().join("examples/ticketshop")
}

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    status: i32,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    stdout_lacks: Vec<String>,
}

impl Test {
    // Public now that the builder is a library's: a `Default` that makes a temporary directory
    // would be a surprise, and tests spell out `Test::new()` or `Test::example()`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("temporary directory"),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            status: 0,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
            stdout_lacks: Vec::new(),
        }
    }

    /// A test that starts from a copy of `examples/ticketshop`.
    pub fn example() -> Self {
        let test = Test::new();
        copy_dir(&example_dir(), test.dir.path());
        test
    }

    /// A test that continues in the directory an earlier one left.
    pub fn in_dir(dir: tempfile::TempDir) -> Self {
        Test { dir, ..Test::new() }
    }

    /// Prepares the directory (e.g. makes it a git repository), then runs.
    pub fn run_after(self, prepare: impl FnOnce(&Path)) -> Ran {
        prepare(self.dir.path());
        self.run()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, relative: &str, contents: &str) -> Self {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Run from this directory (relative to the test's directory) instead of passing `--project`.
    pub fn current_dir(mut self, relative: &str) -> Self {
        self.cwd = Some(self.dir.path().join(relative));
        self
    }

    pub fn status(mut self, status: i32) -> Self {
        self.status = status;
        self
    }

    pub fn stdout_has(mut self, text: &str) -> Self {
        self.stdout_has.push(text.to_string());
        self
    }

    pub fn stdout_lacks(mut self, text: &str) -> Self {
        self.stdout_lacks.push(text.to_string());
        self
    }

    pub fn stderr_has(mut self, text: &str) -> Self {
        self.stderr_has.push(text.to_string());
        self
    }

    /// Runs the binary and checks every expectation; returns stdout and stderr for more checks.
    pub fn run(self) -> Ran {
        let mut command = Command::new(bin());
        command
            .args(&self.args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()))
            .env("NO_COLOR", "1");
        // Hermetic: the developer's shell must not reach the binary. A `CONVOY_*` setting would
        // change what it does (and clap prints `[env: CONVOY_NAMESPACE=…]` in `--help`);
        // `COLUMNS` would change where clap wraps help text.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CONVOY_") {
                command.env_remove(key);
            }
        }
        command.env_remove("COLUMNS").env_remove("LINES");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().expect("run convoy");
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let shown = format!(
            "args: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            self.args
        );
        assert_eq!(
            status.code(),
            Some(self.status),
            "unexpected exit code\n{shown}"
        );
        for text in &self.stdout_has {
            assert!(stdout.contains(text), "stdout lacks {text:?}\n{shown}");
        }
        for text in &self.stdout_lacks {
            assert!(!stdout.contains(text), "stdout has {text:?}\n{shown}");
        }
        for text in &self.stderr_has {
            assert!(stderr.contains(text), "stderr lacks {text:?}\n{shown}");
        }
        Ran {
            status: self.status,
            stdout,
            stderr,
            dir: self.dir,
        }
    }
}

pub struct Ran {
    /// The exit code, as expected (`run` checked it).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: tempfile::TempDir,
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_name() == ".convoy" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What [`convoy_snapshot!`] snapshots: a run whole, or a text.
pub trait SnapshotText {
    fn snapshot_text(&self) -> String;
}

/// A run as uv's snapshots show one: the exit code, then stdout and stderr in full, so a reviewer
/// sees everything the user would. The test's own directory becomes `[TEMP]`, as written and
/// canonicalized, wherever the system keeps temporary files.
impl SnapshotText for Ran {
    fn snapshot_text(&self) -> String {
        let text = format!(
            "success: {}\nexit_code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}",
            self.status == 0,
            self.status,
            self.stdout,
            self.stderr
        );
        let dir = self.dir.path();
        let mut text = text.replace(&dir.display().to_string(), "[TEMP]");
        if let Ok(canonical) = dir.canonicalize() {
            text = text.replace(&canonical.display().to_string(), "[TEMP]");
        }
        text
    }
}

impl SnapshotText for str {
    fn snapshot_text(&self) -> String {
        self.to_string()
    }
}

impl SnapshotText for String {
    fn snapshot_text(&self) -> String {
        self.clone()
    }
}

/// insta's settings for [`convoy_snapshot!`]: the current ones, snapshot files named without
/// the module, and the filters below, applied in order; see the macro for what and why. Built at
/// run time because the temporary directory is the system's.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let mut add = |regex: &str, replacement: &str| settings.add_filter(regex, replacement);
    for root in temp_roots() {
        add(&format!(r"{}/\.tmp\w+", escape_regex(&root)), "[TEMP]");
    }
    add(r"\b[0-9a-f]{64}\b", "[SHA256]");
    add(r"\b[0-9a-f]{40}\b", "[COMMIT]");
    // Kubernetes names end in a 10-character hash of their content (`api-config-0d7245a88b`),
    // stable across runs and worth seeing: hide it from the version filter behind a marker that
    // leaves no word boundary, then take the marker out again.
    // A Secret's name is a hash keyed with the environment's random key once deployed: not
    // stable, so hidden. A revision is a version and 6 characters of its configuration digest,
    // which depends on the version: hidden whole.
    add(r"\bsecret-[0-9a-f]{10}\b", "secret-[hash]");
    add(r"\b(config)-([0-9a-f]{10})\b", "${1}-KEEPHASH${2}");
    add(r"\b[0-9a-f]{10}-[0-9a-f]{6}\b", "[revision]");
    add(r"\b[0-9a-f]{10}\b", "[version]");
    add(r"\b(config)-KEEPHASH", "${1}-");
    add(
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?(\[[\w/+-]+\])?",
        "[TIME]",
    );
    add(
        r"[\w.-]+@[\w.-]+ \(pid \d+\)( \[[^\]\n]*\])?",
        "[USER]@[HOST] (pid [PID])",
    );
    add(r"\bpid \d+\b", "pid [PID]");
    add(r"\b\d+(\.\d+)?(ns|µs|us|ms)\b", "[DURATION]");
    add(r"\b\d+\.\d+s\b", "[DURATION]");
    settings
}

/// Where `tempfile` puts directories: the system's temporary directory as configured and
/// canonicalized, and `/tmp` in any case.
fn temp_roots() -> Vec<String> {
    let configured = std::env::temp_dir();
    let mut roots: Vec<String> = [
        Some(configured.clone()),
        configured.canonicalize().ok(),
        Some(PathBuf::from("/tmp")),
    ]
    .into_iter()
    .flatten()
    .map(|path| path.display().to_string().trim_end_matches('/').to_string())
    .filter(|root| !root.is_empty())
    .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// `text` as a regex that matches it literally (the metacharacters of the `regex` crate escaped).
fn escape_regex(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Snapshots a run (or a text) through insta, redacting what differs between runs and machines
/// so that no test has to, and a snapshot only changes when the product's output does.
///
/// `convoy_snapshot!("name", ran)` writes `snapshots/name.snap` beside the test file with
/// `success`, `exit_code`, stdout and stderr; `convoy_snapshot!("name", text)` writes the text.
///
/// Redacted, in this order (see [`snapshot_settings`]):
/// - the test's temporary directory, and any `tempfile` directory under the system's temporary
///   directory (`/tmp/.tmpAbC123`, also canonicalized) → `[TEMP]`: random names;
/// - 64-hex-character sha256 digests → `[SHA256]`, 40-hex-character commit ids → `[COMMIT]`:
///   artifacts and commits of the test's own git repository differ in each run (git stamps
///   commits with the time);
/// - `<version>-<6 hex>` → `[revision]`, then 10-hex-character words → `[version]`: a service's
///   version is its commit's short hash, and a revision adds its configuration's digest. The
///   content hash in a ConfigMap's name (`api-config-0d7245a88b`) is the same in every run and is
///   kept; a Secret's (`secret-[hash]`) is keyed with the environment's random key, so not;
/// - RFC 3339 timestamps, with fractions, offsets or a `[zone]` → `[TIME]`: the clock;
/// - lock holders `user@host (pid N) [ci job]` → `[USER]@[HOST] (pid [PID])`, other `pid N` →
///   `pid [PID]`: the machine and the process;
/// - measured durations: anything in ns, µs or ms, and seconds with a fraction (`(1.2s)`,
///   `206.0ms`) → `[DURATION]`. Whole durations (`10m`, `30s`) stay: they are configuration and
///   defaults, not measurements. (`history` prints whole seconds for a release that took long;
///   a snapshot of it would not be stable, nor would its WHO column's width.)
///
/// Snapshot names are not prefixed with the module, so the file is `snapshots/<name>.snap`.
#[macro_export]
macro_rules! convoy_snapshot {
    ($name:expr, $value:expr $(,)?) => {{
        use $crate::cli::SnapshotText as _;
        let text = ($value).snapshot_text();
        $crate::cli::snapshot_settings().bind(|| {
            $crate::insta::assert_snapshot!($name, text, stringify!($value));
        });
    }};
}

/// Runs git in `dir` (test repositories only), with a fixed identity.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A copy of the example project committed to a fresh git repository.
pub fn example_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    copy_dir(&example_dir(), dir.path());
    std::fs::write(dir.path().join(".gitignore"), ".convoy/\n").unwrap();
    git(dir.path(), &["init", "-q"]);
    commit_all(dir.path(), "first");
    dir
}

pub fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
}

/// The example's project file `text` without its services' one-line `tasks:` entries: for tests
/// that give a service tasks of their own, or run where tasks cannot (the in-process server has
/// no Job controller).
pub fn without_tasks(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("tasks: {"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_redact_what_differs_between_runs_and_keep_the_rest() {
        let temp = std::env::temp_dir().join(".tmpAb12Cd");
        let text = format!(
            "project {}/convoy.yaml, also /tmp/.tmpZz9Yy8/srv
api 1351612d79 → a41bd1536c, objects api-config-0d7245a88b api-secret-5272da8586 api-a41bd1536c
revision 1351612d79-0f1e2d, deployment api-1351612d79-0f1e2d
commit 11f6ad8ec52a2984abaafd7c3b516503785c2072
artifact sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881
started 2026-12-02T13:07:24.683325842Z, window 2026-12-01T10:00+01:00 to 2026-12-01T12:00:00+01:00[Europe/Berlin]
locked by alice@laptop.local (pid 4242) [github run 7] and by root@vm (pid 1), killed pid 99
release 1 of local succeeded (206.0ms), took 1.2s, 3.4ms, 12ms, 5µs
kept: timeout 10m, bake 30s, lead 2h, 100%, step #7, version 1.4.0, 2026-12-01
",
            temp.display()
        );
        snapshot_settings().bind(|| {
            insta::assert_snapshot!(text, @r"
            project [TEMP]/convoy.yaml, also [TEMP]/srv
            api [version] → [version], objects api-config-0d7245a88b api-secret-[hash] api-[version]
            revision [revision], deployment api-[revision]
            commit [COMMIT]
            artifact sha256:[SHA256]
            started [TIME], window 2026-12-01T10:00+01:00 to [TIME]
            locked by [USER]@[HOST] (pid [PID]) and by [USER]@[HOST] (pid [PID]), killed pid [PID]
            release 1 of local succeeded ([DURATION]), took [DURATION], [DURATION], [DURATION], [DURATION]
            kept: timeout 10m, bake 30s, lead 2h, 100%, step #7, version 1.4.0, 2026-12-01
            ");
        });
    }
}

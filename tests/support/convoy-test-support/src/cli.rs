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
            stdout,
            stderr,
            dir: self.dir,
        }
    }
}

pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub dir: tempfile::TempDir,
}

impl Ran {
    /// Output with the test's temporary directory replaced by `[TEMP]`, for snapshots.
    pub fn redacted_stdout(&self) -> String {
        redact(&self.stdout, self.dir.path())
    }

    pub fn redacted_stderr(&self) -> String {
        redact(&self.stderr, self.dir.path())
    }
}

pub fn redact(text: &str, dir: &Path) -> String {
    let mut text = text.replace(&dir.display().to_string(), "[TEMP]");
    if let Ok(canonical) = dir.canonicalize() {
        text = text.replace(&canonical.display().to_string(), "[TEMP]");
    }
    text
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

/// Snapshots through insta with times and durations redacted, so runs compare equal.
#[macro_export]
macro_rules! convoy_snapshot {
    ($name:expr, $value:expr) => {{
        insta::with_settings!({
            filters => vec![
                (r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})", "[TIME]"),
                (r"\b\d+(\.\d+)?(ms|µs|s)\b", "[DURATION]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $value);
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

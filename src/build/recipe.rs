//! Running a service's build commands in its clean export, output streamed to a log.
//!
//! A recipe sees the minimal environment (`PATH`, `HOME`, `CONVOY_SERVICE`, `CONVOY_VERSION`,
//! `CONVOY_COMMIT`, and the service's `env:`), never the deployer's cloud credentials or the
//! variables secrets are read from. Its output goes through Convoy on the way to the log, each
//! line masked, and the whole log is masked again at the end (for forms spanning lines): the log
//! is published to the artifact store, so clear text must never reach it.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use super::error::{BuildError, io};
use crate::secrets::Masker;

/// Lines of the log shown when a command fails.
const TAIL_LINES: usize = 20;

/// Longest line kept whole for masking; a longer one is masked and written in pieces.
const MAX_LINE: usize = 64 * 1024;
/// Largest log masked again as a whole at the end.
const MAX_WHOLE_LOG: u64 = 64 << 20;

/// What the recipe's commands see besides their working directory.
pub(crate) struct RecipeEnv<'a> {
    pub service: &'a str,
    pub version: &'a str,
    pub commit: &'a str,
    /// The service's `env:`: variables passed on from Convoy's environment.
    pub pass: &'a [String],
    /// Every secret the project's values name that can be read here.
    pub masker: &'a Masker,
}

/// Runs each command with `sh -c` in `dir`, stdout and stderr appended to `log`; stops at the
/// first failure with the command, its exit status and the log's tail.
pub(crate) fn run(
    commands: &[String],
    dir: &Path,
    env: &RecipeEnv<'_>,
    log: &Path,
) -> Result<(), BuildError> {
    let mut file = std::fs::File::create(log).map_err(io("create", log))?;
    for command in commands {
        writeln!(file, "$ {}", env.masker.mask(command)).map_err(io("write", log))?;
        let status = run_one(command, dir, env, &mut file).map_err(io("run `sh` in", dir))?;
        if !status.success() {
            drop(file);
            mask_whole(log, env.masker);
            use std::os::unix::process::ExitStatusExt;
            let status = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(signal)) => format!("signal {signal}"),
                (None, None) => "an unknown status".to_string(),
            };
            return Err(BuildError::RecipeFailed {
                service: env.service.to_string(),
                command: command.clone(),
                status,
                log: log.to_path_buf(),
                tail: tail(log),
            });
        }
    }
    drop(file);
    mask_whole(log, env.masker);
    Ok(())
}

/// Runs one command, its stdout and stderr (one pipe, so their order is kept) copied to `log`
/// line by line, masked.
fn run_one(
    command: &str,
    dir: &Path,
    env: &RecipeEnv<'_>,
    log: &mut std::fs::File,
) -> std::io::Result<std::process::ExitStatus> {
    let (reader, writer) = std::io::pipe()?;
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .current_dir(dir)
        .env_clear()
        .envs(crate::secrets::minimal_environment(env.pass))
        .env("CONVOY_SERVICE", env.service)
        .env("CONVOY_VERSION", env.version)
        .env("CONVOY_COMMIT", env.commit)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = crate::spawn::spawn(&mut sh)?;
    drop(sh); // our copies of the pipe's write end: the read below ends when the child's close
    let mut reader = std::io::BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        log.write_all(env.masker.mask_bytes(&line).as_bytes())?;
    }
    child.wait()
}

/// The whole log masked once more, for secrets whose form spans lines (a PEM key printed as
/// one base64 blob wrapped differently, say). Best effort: the lines already are.
fn mask_whole(log: &Path, masker: &Masker) {
    if masker.is_empty() || std::fs::metadata(log).map_or(true, |m| m.len() > MAX_WHOLE_LOG) {
        return;
    }
    if let Ok(bytes) = std::fs::read(log) {
        let masked = masker.mask_bytes(&bytes);
        if masked.as_bytes() != bytes {
            let _ = std::fs::write(log, masked);
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..]
        .iter()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_names_itself_its_exit_code_and_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let masker = Masker::default();
        let env = RecipeEnv {
            service: "api",
            version: "abc",
            commit: "abcdef",
            pass: &[],
            masker: &masker,
        };
        let commands = vec![
            "echo \"building $CONVOY_SERVICE $CONVOY_VERSION\"".to_string(),
            "echo boom >&2; exit 3".to_string(),
            "echo never".to_string(),
        ];
        let error = run(&commands, dir.path(), &env, &log).unwrap_err();
        let BuildError::RecipeFailed {
            command,
            status,
            tail,
            ..
        } = &error
        else {
            panic!("{error}")
        };
        assert_eq!(command, "echo boom >&2; exit 3");
        assert_eq!(status, "exit code 3");
        assert!(
            tail.contains("building api abc") && tail.contains("boom"),
            "{tail}"
        );
        assert!(!tail.contains("never"));
    }
}

#[cfg(test)]
mod masking_tests {
    use super::*;

    #[test]
    fn a_failing_build_that_prints_a_secret_leaves_it_in_neither_the_log_nor_the_error() {
        let secret = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\"quoted\"\\back\\slash\nSECOND+LINE/of=the$key\n-----END TEST KEY-----";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.pem"), secret).unwrap();
        let log = dir.path().join("build.log");
        let masker = Masker::new([secret]);
        let env = RecipeEnv {
            service: "api",
            version: "abc",
            commit: "abcdef",
            pass: &[],
            masker: &masker,
        };
        let commands = vec!["cat key.pem; echo; base64 key.pem; env; exit 4".to_string()];
        let error = run(&commands, dir.path(), &env, &log).unwrap_err();
        let logged = std::fs::read_to_string(&log).unwrap();
        let shown = format!("{error} {}", crate::report::render_diagnostic(&error));
        for text in [&logged, &shown] {
            assert!(text.contains("********"), "{text}");
            for piece in [
                "MIIEvQIBADANBgkqhkiG9w0B",
                "SECOND+LINE/of=the$key",
                "back\\slash",
            ] {
                assert!(!text.contains(piece), "`{piece}` in {text}");
            }
        }
        // The minimal environment: nothing of the test process's own beyond PATH and HOME.
        assert!(logged.contains("CONVOY_SERVICE=api"), "{logged}");
        assert!(!logged.contains("CARGO"), "{logged}");
    }
}

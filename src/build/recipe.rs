//! Running a service's build commands in its clean export, output streamed to a log.

use std::path::Path;
use std::process::{Command, Stdio};

use super::error::{BuildError, io};

/// Lines of the log shown when a command fails.
const TAIL_LINES: usize = 20;

/// What the recipe's commands see besides their working directory.
pub(crate) struct RecipeEnv<'a> {
    pub service: &'a str,
    pub version: &'a str,
    pub commit: &'a str,
}

/// Runs each command with `sh -c` in `dir`, stdout and stderr appended to `log`; stops at the
/// first failure with the command, its exit status and the log's tail.
pub(crate) fn run(
    commands: &[String],
    dir: &Path,
    env: &RecipeEnv<'_>,
    log: &Path,
) -> Result<(), BuildError> {
    use std::io::Write;
    let mut file = std::fs::File::create(log).map_err(io("create", log))?;
    for command in commands {
        writeln!(file, "$ {command}").map_err(io("write", log))?;
        let stdout = file.try_clone().map_err(io("write", log))?;
        let stderr = file.try_clone().map_err(io("write", log))?;
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(command)
            .current_dir(dir)
            .env("CONVOY_SERVICE", env.service)
            .env("CONVOY_VERSION", env.version)
            .env("CONVOY_COMMIT", env.commit)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let status = crate::spawn::spawn(&mut sh)
            .and_then(|mut child| child.wait())
            .map_err(io("run `sh` in", dir))?;
        if !status.success() {
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
    Ok(())
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
        let env = RecipeEnv {
            service: "api",
            version: "abc",
            commit: "abcdef",
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

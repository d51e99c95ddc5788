//! Running a service's hook or health command in a version directory, with a time budget.

use std::path::Path;
use std::time::Duration;

use crate::execute::TargetError;

/// The environment a hook or health command sees.
#[derive(Debug, Clone, Default)]
pub struct CommandEnv {
    pub vars: Vec<(String, String)>,
    /// Clear-text secrets among `vars`: masked (in every form) in any output Convoy keeps or
    /// prints.
    pub secrets: Vec<String>,
    /// `Some(names)`: the command sees only the minimal environment (`PATH`, `HOME`, these
    /// names) plus `vars`. `None`: Convoy's whole environment plus `vars` — for the on-host agent
    /// (`convoy host`), whose environment is the machine's, not a deployer's.
    pub pass: Option<Vec<String>>,
}

/// Runs `command` with `sh -c` in `dir`; a non-zero exit, a timeout or a spawn failure is an
/// error carrying the last lines of its output. The child is killed if the budget runs out.
pub async fn run_in(
    service: &str,
    what: &str,
    command: &str,
    dir: &Path,
    env: &CommandEnv,
    budget: Duration,
) -> Result<(), String> {
    run_status_in(service, what, command, dir, env, budget)
        .await
        .map_err(|failure| failure.detail)
}

/// Why a command did not succeed: its exit code when it exited, and what [`run_in`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    /// `None` when it did not start, was killed by a signal or ran out of time.
    pub code: Option<i32>,
    pub detail: String,
}

/// [`run_in`], keeping the command's exit code (`convoy host task` exits with it).
pub async fn run_status_in(
    service: &str,
    what: &str,
    command: &str,
    dir: &Path,
    env: &CommandEnv,
    budget: Duration,
) -> Result<(), CommandFailure> {
    let fail = |detail: String| CommandFailure { code: None, detail };
    let mut child = tokio::process::Command::new("sh");
    child.arg("-c").arg(command).current_dir(dir);
    if let Some(pass) = &env.pass {
        child
            .env_clear()
            .envs(crate::secrets::minimal_environment(pass));
    }
    child
        .envs(env.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = match crate::spawn::spawn_async(&mut child) {
        Ok(child) => child,
        Err(error) => return Err(fail(format!("{what} `{command}` could not start: {error}"))),
    };
    let output = match tokio::time::timeout(budget, child.wait_with_output()).await {
        Err(_) => {
            return Err(fail(format!(
                "{what} `{command}` took longer than {}",
                humantime::format_duration(budget)
            )));
        }
        Ok(Err(error)) => return Err(fail(format!("{what} `{command}` could not start: {error}"))),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let text = crate::secrets::Masker::new(&env.secrets).mask(&text);
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let code = output
        .status
        .code()
        .map_or("a signal".to_string(), |c| format!("exit code {c}"));
    let _ = service;
    let detail = format!(
        "{what} `{command}` failed with {code}{}",
        if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.join(" / "))
        }
    );
    Err(CommandFailure {
        code: output.status.code(),
        detail,
    })
}

pub fn unhealthy(service: &str, version: &str, detail: String) -> TargetError {
    TargetError::Unhealthy {
        service: service.to_string(),
        version: version.to_string(),
        detail,
    }
}

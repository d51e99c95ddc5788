//! A release task on a host: its command run in the new revision's directory with the hooks'
//! environment (values, secrets, `CONVOY_*`, `CONVOY_FLAGS_FILE`) and the step's budget. The
//! host target runs it from a release; `convoy host task` (what the AWS target sends to one
//! instance through SSM Run Command) runs it through the same code.

use std::time::Duration;

use crate::execute::TargetError;
use crate::targets::host::commands::run_status_in;
use crate::targets::host::error::HostError;
use crate::targets::host::host_target::HostTarget;

/// A task that did not succeed: the command's exit code when it exited, and the error (its
/// output's tail, secrets masked).
#[derive(Debug)]
pub struct TaskFailure {
    pub code: Option<i32>,
    pub error: TargetError,
}

impl HostTarget {
    /// Runs task `task` of revision `version` of `service`; a failure carries the output's tail,
    /// its secrets masked.
    pub(super) async fn task(
        &self,
        service: &str,
        version: &str,
        task: &str,
        command: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        self.run_task(service, version, task, command, budget)
            .await
            .map_err(|failure| failure.error)
    }

    /// [`HostTarget::task`], keeping the command's exit code.
    pub(super) async fn run_task(
        &self,
        service: &str,
        version: &str,
        task: &str,
        command: &str,
        budget: Duration,
    ) -> Result<(), TaskFailure> {
        let action = format!("task {task} of {version}");
        let dir = self.layout.version_dir(service, version);
        if !dir.is_dir() {
            let error = HostError::TaskWithoutRevision {
                task: task.to_string(),
                version: version.to_string(),
            };
            let error = TargetError::failed(service, &action, error);
            return Err(TaskFailure { code: None, error });
        }
        let mut env = self.env_for(service, version);
        env.vars.push(("CONVOY_TASK".into(), task.into()));
        let what = format!("task {task}");
        run_status_in(service, &what, command, &dir, &env, budget)
            .await
            .map_err(|failure| {
                let task = task.to_string();
                let detail = failure.detail;
                let error = TargetError::failed(service, &action, HostError::Task { task, detail });
                TaskFailure {
                    code: failure.code,
                    error,
                }
            })
    }
}

//! A release task on a host: its command run in the new revision's directory with the hooks'
//! environment (values, secrets, `CONVOY_*`, `CONVOY_FLAGS_FILE`) and the step's budget.

use std::time::Duration;

use crate::execute::TargetError;
use crate::targets::host::commands::run_in;
use crate::targets::host::error::HostError;
use crate::targets::host::host_target::HostTarget;

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
        let action = format!("task {task} of {version}");
        let dir = self.layout.version_dir(service, version);
        if !dir.is_dir() {
            let error = HostError::TaskWithoutRevision {
                task: task.to_string(),
                version: version.to_string(),
            };
            return Err(TargetError::failed(service, &action, error));
        }
        let mut env = self.env_for(service, version);
        env.vars.push(("CONVOY_TASK".into(), task.into()));
        let what = format!("task {task}");
        run_in(service, &what, command, &dir, &env, budget)
            .await
            .map_err(|detail| {
                let task = task.to_string();
                TargetError::failed(service, &action, HostError::Task { task, detail })
            })
    }
}

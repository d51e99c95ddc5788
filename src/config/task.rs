//! Release tasks: one-off commands of a service's new revision tied to a rollout phase (a
//! migration before the switch, the contract step of an expand/contract after cleanup).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::duration::Dur;
use crate::config::error::ConfigError;
use crate::config::names;
use crate::config::service::Service;
use crate::config::yaml::Document;

/// When in a release a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskWhen {
    /// After every provision of the release is healthy, before the first switch.
    BeforeSwitch,
    /// After the last switch.
    AfterSwitch,
    /// After the old versions are retired (the contract half of expand/contract).
    AfterCleanup,
}

impl std::fmt::Display for TaskWhen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskWhen::BeforeSwitch => "before_switch",
            TaskWhen::AfterSwitch => "after_switch",
            TaskWhen::AfterCleanup => "after_cleanup",
        })
    }
}

/// `services.<s>.tasks.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Shell command run by the revision being deployed (in its directory on a host, in its
    /// image on Kubernetes).
    pub command: String,
    pub when: TaskWhen,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// The environment's `maintenance` flag is `read_only` while the task runs.
    #[serde(default)]
    pub maintenance: bool,
}

fn default_timeout() -> Dur {
    Dur::secs(600)
}

/// Every task's name is a DNS-1123 label short enough to name a Kubernetes Job beside its
/// service, its command is not empty and its timeout is not zero.
pub fn task_errors(services: &BTreeMap<String, Service>, document: &Document) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (service, spec) in services {
        for (name, task) in &spec.tasks {
            let key = format!("services.{service}.tasks.{name}");
            let schema = |field: &str, message: String| ConfigError::Schema {
                location: document.locate(&format!("{key}.{field}")),
                message,
                suggestion: None,
            };
            if let Some(reason) = names::problem(name) {
                errors.push(ConfigError::InvalidName {
                    location: document.locate(&key),
                    what: "task",
                    name: name.clone(),
                    reason,
                });
            }
            if task.command.trim().is_empty() {
                let message = format!("task `{name}` of `{service}` has an empty command");
                errors.push(schema("command", message));
            }
            if task.timeout.0.is_zero() {
                let message = format!("task `{name}` of `{service}` has a zero timeout");
                errors.push(schema("timeout", message));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use crate::config::Project;

    fn load(tasks: &str) -> Result<Project, String> {
        let text = format!(
            "project: shop\nservices:\n  api:\n    path: api\n    tasks:\n{tasks}environments:\n  local: {{ target: {{ host: {{ root: srv }} }} }}\n"
        );
        Project::from_text(std::path::Path::new("/p/convoy.yaml"), text).map_err(|e| {
            e.0.iter()
                .map(|e| {
                    format!(
                        "{e} at line {}",
                        crate::diagnostic::Diagnose::location(e).map_or(0, |l| l.line)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    #[test]
    fn a_task_is_read_with_its_defaults() {
        let project =
            load("      migrate: { command: bin/migrate, when: before_switch }\n").unwrap();
        let task = &project.services["api"].tasks["migrate"];
        assert_eq!(task.command, "bin/migrate");
        assert_eq!(task.when, super::TaskWhen::BeforeSwitch);
        assert_eq!(task.timeout, crate::config::Dur::secs(600));
        assert!(!task.maintenance);
    }

    #[test]
    fn an_unknown_phase_is_refused_where_it_is_written() {
        let error = load("      migrate: { command: m, when: during_switch }\n").unwrap_err();
        assert!(error.contains("during_switch"), "{error}");
        assert!(error.contains("line 6"), "{error}");
    }

    #[test]
    fn bad_names_empty_commands_and_zero_timeouts_are_refused_where_they_are_written() {
        let error = load(
            "      Migrate_DB: { command: m, when: before_switch }\n      ok:\n        command: ' '\n        when: after_switch\n        timeout: 0\n",
        )
        .unwrap_err();
        assert!(error.contains("invalid task name `Migrate_DB`"), "{error}");
        assert!(error.contains("empty command at line 8"), "{error}");
        assert!(error.contains("zero timeout at line 10"), "{error}");
    }
}

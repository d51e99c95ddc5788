//! Release tasks run on hosts and Kubernetes so far: a kind that cannot run them refuses a plan
//! with any before the release is recorded, rather than failing it half way.

use crate::execute::TargetError;
use crate::plan::{Action, Plan};

/// Refuses `plan` when it has a task step; `kind` names the target kind in the error.
pub fn refuse_tasks(plan: &Plan, kind: &str) -> Result<(), TargetError> {
    let Some(step) = plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Task { .. }))
    else {
        return Ok(());
    };
    Err(TargetError::Action {
        service: step.service.clone(),
        action: step.action.to_string(),
        detail: format!(
            "release tasks do not run on the {kind} target yet (only on host and kubernetes environments); deploy without the task or run it by hand"
        ),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Dur, TaskWhen};
    use crate::plan::{Action, Phase, Plan, Step, StepId};

    #[test]
    fn a_plan_with_a_task_is_refused_naming_the_task_and_one_without_passes() {
        let mut plan = Plan {
            environment: "staging".to_string(),
            created: "2026-12-02T10:00:00Z".parse().unwrap(),
            changes: Vec::new(),
            unchanged: Vec::new(),
            steps: Vec::new(),
        };
        assert!(super::refuse_tasks(&plan, "kubernetes").is_ok());
        plan.steps.push(Step {
            id: StepId(0),
            phase: Phase::Provision,
            service: "api".to_string(),
            action: Action::Task {
                task: "migrate".to_string(),
                version: "a2".to_string(),
                command: "bin/migrate".to_string(),
                when: TaskWhen::BeforeSwitch,
                maintenance: false,
            },
            after: Vec::new(),
            timeout: Dur::secs(60),
            not_before: None,
        });
        let error = super::refuse_tasks(&plan, "kubernetes")
            .unwrap_err()
            .to_string();
        assert!(error.contains("task migrate"), "{error}");
        assert!(
            error.contains("do not run on the kubernetes target yet"),
            "{error}"
        );
    }
}

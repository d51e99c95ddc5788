//! Maintenance around tasks: the `maintenance` flag set before a `maintenance: true` task and
//! cleared after it whatever its outcome, and cleared again when its release ends (a killed run).

use crate::execute::executor::{Executor, StepFailure};
use crate::execute::flags::{FlagAuthor, maintenance_off, maintenance_on};
use crate::execute::release::ReleaseRecord;
use crate::execute::reporter::Event;
use crate::plan::{Action, Step};

impl Executor<'_> {
    /// Who the flag changes of `record`'s tasks are made by.
    pub(super) fn author(&self, record: &ReleaseRecord) -> FlagAuthor {
        FlagAuthor {
            who: format!("release {} ({})", record.number, record.who),
            at: self.clock.now(),
            release: Some(record.number),
        }
    }

    /// `step`, and for a task under maintenance the `maintenance` flag on around it: set before,
    /// cleared after whatever the outcome. A flag that cannot be set fails the task before it
    /// runs; one that cannot be cleared is a warning (the release's end tries again).
    pub(super) async fn perform_as(
        &self,
        step: &Step,
        author: &FlagAuthor,
    ) -> Result<(), StepFailure> {
        let Action::Task {
            maintenance: true, ..
        } = &step.action
        else {
            return self.perform(step).await;
        };
        let Some(flags) = self.flags else {
            return Err(StepFailure::new(format!(
                "{}: the target keeps no flags, so it cannot run a task under maintenance",
                step.action
            )));
        };
        let author = FlagAuthor {
            at: self.clock.now(),
            ..author.clone()
        };
        if let Err(error) = maintenance_on(flags, &author).await {
            return Err(StepFailure {
                error: format!(
                    "cannot turn maintenance on: {}",
                    crate::diagnostic::chain(&error)
                ),
                help: crate::diagnostic::Diagnose::help(&error),
            });
        }
        self.reporter.report(&Event::Note {
            message: format!(
                "maintenance on ({}: task {})",
                step.service,
                task_name(step)
            ),
        });
        let result = self.perform(step).await;
        let author = FlagAuthor {
            at: self.clock.now(),
            ..author
        };
        match maintenance_off(flags, &author).await {
            Ok(()) => self.reporter.report(&Event::Note {
                message: "maintenance off".to_string(),
            }),
            Err(error) => self.reporter.report(&Event::Warning {
                message: format!(
                    "cannot turn maintenance off: {}",
                    crate::diagnostic::chain(&error)
                ),
            }),
        }
        result
    }

    /// Clears maintenance a task of `record` left on (a killed run, a failed clear).
    pub(super) async fn end_maintenance(&self, record: &ReleaseRecord) {
        let Some(flags) = self.flags else {
            return;
        };
        let maintained = record.plan.steps.iter().any(|s| {
            matches!(
                s.action,
                Action::Task {
                    maintenance: true,
                    ..
                }
            )
        });
        if !maintained {
            return;
        }
        if let Err(error) = maintenance_off(flags, &self.author(record)).await {
            self.reporter.report(&Event::Warning {
                message: format!(
                    "cannot turn maintenance off: {}",
                    crate::diagnostic::chain(&error)
                ),
            });
        }
    }
}

fn task_name(step: &Step) -> &str {
    match &step.action {
        Action::Task { task, .. } => task,
        _ => "",
    }
}

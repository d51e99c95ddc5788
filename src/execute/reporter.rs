//! Progress events of a release, for whoever watches: a terminal, JSON lines, or a test.

use std::sync::Mutex;

use serde::Serialize;

use crate::plan::{Phase, StepId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    StepStarted {
        step: StepId,
        phase: Phase,
        service: String,
        action: String,
    },
    StepSucceeded {
        step: StepId,
        phase: Phase,
        service: String,
    },
    StepFailed {
        step: StepId,
        phase: Phase,
        service: String,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        help: Option<String>,
    },
    StepDeferred {
        step: StepId,
        service: String,
        until: String,
    },
    RollbackStarted {
        reason: String,
    },
    Finished {
        outcome: String,
    },
    /// Something the user should know that does not stop the run.
    Warning {
        message: String,
    },
    /// Progress outside the plan's steps (builds, interruptions).
    Note {
        message: String,
    },
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: &Event);
}

/// Keeps every event, for assertions.
#[derive(Default)]
pub struct RecordingReporter {
    events: Mutex<Vec<Event>>,
}

impl RecordingReporter {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Reporter for RecordingReporter {
    fn report(&self, event: &Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}

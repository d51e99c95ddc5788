//! The pure planner: deploy and rollback plans and prewarm schedules computed from inputs and
//! `now` — no tokio, kube, aws, file system or clock here (a test in `tests/cli/architecture.rs`
//! enforces it).

pub mod canary;
mod deploy;
pub mod prewarm;
pub mod prewarm_actions;
mod prewarm_error;
pub mod revision;
mod rollback;
mod types;

pub use deploy::{PlanInput, ServiceState, plan};
pub use rollback::rollback_plan;
pub use types::{Action, Change, Phase, Plan, Step, StepId};

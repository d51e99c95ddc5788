//! Operations: one file per command. Each takes a plain options struct (and a reporter where it
//! runs long) and returns a value the command line prints; effects are wired here, decisions are
//! made below (`plan`, `execute`, `targets`). Nothing here prints.
//!
//! | file | operation |
//! |---|---|
//! | `deploy` | `convoy deploy` and `convoy plan`: build what is missing, plan, lock, roll out |
//! | `rollback`, `recreate` | `convoy rollback`; revisions no longer running made again from their records |
//! | `rollout` | what deploy, plan and rollback share: opening an environment for a release |
//! | `status`, `history`, `lock` | reading an environment's state |
//! | `diff` | rendered objects against the live ones |
//! | `prewarm`, `prewarm_at`, `prewarm_status` | scheduling raised capacity; `--at`; readiness |
//! | `build`, `artifacts` | building and publishing; listing and pruning the store |
//! | `render`, `check`, `values` | manifests and values, touching nothing |
//! | `host` | the on-host agent, one service on this machine |
//! | `task` | `convoy task run`: a task by hand on the live revision, under the lease |
//! | `confirm`, `interrupt` | asking before changing a protected environment; Ctrl-C |

pub mod artifacts;
pub mod build;
pub mod check;
pub mod confirm;
pub mod deploy;
pub mod diff;
pub mod flag_status;
pub mod flags;
pub mod history;
pub mod host;
pub mod interrupt;
pub mod lock;
pub mod prewarm;
pub mod prewarm_at;
pub mod prewarm_status;
pub mod recreate;
pub mod render;
pub mod rollback;
pub mod rollout;
pub mod status;
pub mod task;
pub mod values;

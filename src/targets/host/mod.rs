//! The host target, yodeploy-style: `<root>/<service>/versions/<v>`, a `live` symlink swung
//! atomically, `deploy.lock` and release records under `<root>`.

mod agent;
mod commands;
pub mod env_file;
mod error;
mod flag_file;
mod history;
mod host_target;
#[cfg(test)]
mod hostile_tests;
pub mod launch;
mod layout;
pub mod lifecycle;
mod lock_file;
pub mod open;
mod release_files;
pub mod task;
mod write;

pub use agent::{Agent, AgentHooks};
pub use commands::{CommandEnv, CommandFailure, run_in, run_status_in};
pub use error::HostError;
pub use flag_file::FlagFile;
pub use history::HistoryLine;
pub use host_target::{HostService, HostTarget};
pub use layout::{HostLayout, resolve_root};
pub use lock_file::LockFile;
pub use release_files::ReleaseFiles;

/// Writes `bytes` to `path` durably and atomically: a temporary file in the same directory,
/// fsync, then rename over the target — a reader sees the old contents or the new, never half.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    // The rename is durable only once the directory entry is: fsync the directory too.
    std::fs::File::open(dir)?.sync_all()
}

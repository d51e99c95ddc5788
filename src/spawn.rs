//! Writing files that are then executed, and starting processes, without "Text file busy".
//!
//! Linux refuses to execute a file that any process holds open for writing (ETXTBSY). A child
//! forked by one thread inherits every descriptor the other threads have open until it calls
//! exec, so while one build writes its `build.sh` another may fork, and the first one's exec of
//! that script then fails — seen as `sh: ./build.sh: Text file busy` when services build in
//! parallel. So: files are written under a shared guard, and forks happen under an exclusive one
//! (Rust's spawn returns once the child has exec'd, closing the inherited descriptors).

use std::sync::{RwLock, RwLockReadGuard};

static FORK: RwLock<()> = RwLock::new(());

/// Hold while a file that may be executed is open for writing.
pub fn writing() -> RwLockReadGuard<'static, ()> {
    FORK.read().unwrap_or_else(|e| e.into_inner())
}

/// Starts `command` (no file being written is open while it forks).
pub fn spawn(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let _fork = FORK.write().unwrap_or_else(|e| e.into_inner());
    command.spawn()
}

/// Starts `command` on tokio (no file being written is open while it forks).
pub fn spawn_async(
    command: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    let _fork = FORK.write().unwrap_or_else(|e| e.into_inner());
    command.spawn()
}

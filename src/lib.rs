//! Convoy: staged, health-gated, ordered rollouts of a whole release of services.
//!
//! Data flows one way; each arrow is a plain value that can be printed and tested:
//!
//! ```text
//! cli → ops → config (project file + layered values) → build (git → artifacts)
//!     → render (tera → typed manifests) → observe (target) → plan (pure) → execute (target) → record
//! ```
//!
//! | module        | owns                                                                      |
//! |---------------|---------------------------------------------------------------------------|
//! | [`cli`]       | clap definitions; arguments → one options struct → one operation → print  |
//! | [`ops`]       | one operation per command: wires the layers below, returns plain values   |
//! | [`config`]    | `convoy.yaml` schema, validation, values layering with provenance         |
//! | [`build`]     | git: refs, per-service trees, clean export, recipes, reproducible tarballs |
//! | [`artifacts`] | the `ArtifactStore` trait and its local-directory and S3 implementations  |
//! | [`render`]    | tera with the built-in templates, typed manifest parsing, lints           |
//! | [`plan`]      | **pure**: deploy and rollback plans, prewarm schedules; no I/O, no clock  |
//! | [`execute`]   | walks a plan concurrently, gates on health, journals, aborts into rollback |
//! | [`targets`]   | one `Backend` per kind (`host`, `kubernetes`, `aws`), opened in one place |
//! | [`report`]    | what the user sees: errors with `help:`, progress, JSON lines             |
//! | [`secrets`]   | masking secrets in every form; the minimal environment of commands        |
//!
//! Only [`ops`] wires effects together; everything below it takes its inputs as values, and
//! returns its own error type ([`Error`] exists only for `ops` and `cli`).

// Errors here are cold paths, built once per failed command and carrying a file location and
// help; boxing every variant would only obscure them.
#![allow(clippy::result_large_err)]

pub mod artifacts;
pub mod build;
pub mod cli;
pub mod config;
pub mod diagnostic;
mod error;
pub mod execute;
pub mod ops;
pub mod plan;
#[cfg(test)]
mod proptests;
pub mod render;
pub mod report;
pub mod secrets;
pub mod spawn;
pub mod targets;

pub use error::{Error, Exit};

/// Runs one parsed command line to completion.
pub fn run(cli: cli::Cli) -> Result<Exit, Error> {
    cli::dispatch(cli)
}

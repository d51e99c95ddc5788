//! End-to-end tests of the `convoy` binary. One test binary for all of them keeps linking cheap.

mod architecture;
mod aws;
mod build;
mod check;
mod deploy;
mod flags;
mod help;
mod host;
mod kill;
mod kubernetes;
mod kubernetes_conformance;
mod kubernetes_e2e;
mod kubernetes_revisions;
mod kubernetes_tasks;
mod lock;
mod plan;
mod prewarm;
mod render;
mod revisions;
mod signing;
mod status;
mod tasks;
mod values;

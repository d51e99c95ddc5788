//! Command-line interface: clap definitions, turned into plain options for one operation of
//! [`crate::ops`] each, whose result is printed here. No business logic lives here.

mod args;
mod artifacts;
mod build;
mod check;
mod context;
mod deploy;
mod diff;
mod flags;
mod history;
mod host;
mod lock;
mod prewarm;
mod prewarm_window;
mod prompt;
mod render;
mod rollback;
mod status;
mod task;
mod values;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use context::Context;

use crate::{Error, Exit};

/// Convoy ships a whole release of services: built from git, rendered per environment, rolled
/// out in small health-gated stages (providers first, then their clients), and rolled back in
/// seconds while the old version is still warm.
#[derive(Debug, Parser)]
#[command(name = "convoy", version, max_term_width = 100)]
#[command(
    after_help = "Start with `convoy check` in a project (a directory with convoy.yaml).\n\
Exit codes: 0 ok · 1 failed and rolled back (or differences found) · 2 usage or configuration error, \
nothing touched · 3 failed and needs attention · 4 environment locked by someone else."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The project: a directory holding convoy.yaml, or the file itself [default: the nearest
    /// convoy.yaml from the current directory upwards]
    #[arg(long, global = true, value_name = "PATH", env = "CONVOY_PROJECT")]
    pub project: Option<PathBuf>,
    /// How to print results: for people, or one JSON object per line for machines
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Never draw progress bars (they are only drawn when stderr is a terminal anyway)
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Answer yes to confirmation prompts
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Say more: the whole error chain, each step as it happens
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Kubernetes: use this kubeconfig context instead of the environment's
    #[arg(
        long = "context",
        global = true,
        value_name = "NAME",
        env = "CONVOY_KUBE_CONTEXT"
    )]
    pub kube_context: Option<String>,
    /// Kubernetes: use this namespace instead of the environment's
    #[arg(long, global = true, value_name = "NAME", env = "CONVOY_NAMESPACE")]
    pub namespace: Option<String>,
    /// Use this artifact store (`file://DIR` or `s3://bucket/prefix`) instead of the project's
    #[arg(
        long = "artifacts",
        global = true,
        value_name = "URL",
        env = "CONVOY_ARTIFACT_STORE"
    )]
    pub artifact_store: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build and publish the services whose sources changed at a git revision
    Build(build::BuildArgs),
    /// Inspect and prune the artifact store
    #[command(subcommand)]
    Artifacts(artifacts::ArtifactsCommand),
    /// Validate the project and every environment without touching anything (CI's dry-run)
    Check(check::CheckArgs),
    /// Show the merged values of a service in an environment, and where each came from
    Values(values::ValuesArgs),
    /// The staged rollout that `deploy` would run now
    Plan(deploy::PlanArgs),
    /// Rendered objects against the live ones (server-side dry run; exit 1 when they differ)
    Diff(diff::DiffArgs),
    /// Build what is missing, then roll out in health-gated stages and record the release
    Deploy(deploy::DeployArgs),
    /// Revert an unfinished release, or return to an earlier release's versions
    Rollback(rollback::RollbackArgs),
    /// Live and warm versions, the lock, the last release and the prewarms of an environment
    Status(status::StatusArgs),
    /// Releases of an environment: outcome, who, when, how long, what changed
    History(history::HistoryArgs),
    /// Raise capacity before a known spike and give it back after (apply, list, cancel)
    Prewarm(prewarm::PrewarmArgs),
    /// Inspect or break an environment's deploy lock
    Lock(lock::LockArgs),
    /// Live flags services read without a redeploy: set, unset, list, history
    Flags(flags::FlagsArgs),
    /// Run a service's task by hand on the live revision, under the environment's lock
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// The on-host agent: deploy, roll back or inspect one service on this machine
    Host(host::HostArgs),
    /// Render an environment's manifests: a YAML stream on stdout, or one file per object
    Render(render::RenderArgs),
}

/// The tokio runtime for commands that do I/O concurrently.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

pub fn dispatch(cli: Cli) -> Result<Exit, Error> {
    let Cli { global, command } = cli;
    let context = Context::from_args(global);
    match command {
        Command::Build(args) => build::run(args, &context),
        Command::Artifacts(command) => artifacts::run(command, &context),
        Command::Check(args) => check::run(args, &context),
        Command::Values(args) => values::run(args, &context),
        Command::Plan(args) => deploy::plan(args, &context),
        Command::Diff(args) => diff::run(args, &context),
        Command::Deploy(args) => deploy::deploy(args, &context),
        Command::Rollback(args) => rollback::run(args, &context),
        Command::Status(args) => status::run(args, &context),
        Command::History(args) => history::run(args, &context),
        Command::Lock(args) => lock::run(args, &context),
        Command::Flags(args) => flags::run(args, &context),
        Command::Task(command) => task::run(command, &context),
        Command::Prewarm(args) => prewarm::run(args, &context),
        Command::Host(args) => host::run(args, &context),
        Command::Render(args) => render::run(args, &context),
    }
}

//! `convoy host deploy|rollback|status|gc`: one service on this machine, from any artifact store.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::Context;
use crate::config::Dur;
use crate::execute::{Clock, EnvLock, SessionError, SystemClock};
use crate::report::json;
use crate::targets::host::{Agent, AgentHooks, LockFile};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct HostArgs {
    /// The directory holding `<service>/versions/<v>` and `<service>/live`
    #[arg(long, global = true, value_name = "DIR", default_value = "/srv/convoy")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub action: HostAction,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// Run after unpacking, before any traffic [default: the artifact's bin/prepare, if any]
    #[arg(long, value_name = "CMD")]
    pub prepare: Option<String>,
    /// Run after the switch [default: the artifact's bin/deployed, if any]
    #[arg(long, value_name = "CMD")]
    pub deployed: Option<String>,
    /// Exit 0 when healthy [default: the artifact's bin/health, if any]
    #[arg(long, value_name = "CMD")]
    pub health: Option<String>,
    /// Budget of one health command
    #[arg(long, value_name = "DURATION", value_parser = |s: &str| Dur::parse(s))]
    pub health_timeout: Option<Dur>,
}

#[derive(Debug, Subcommand)]
pub enum HostAction {
    /// Fetch, unpack, prepare and health-check VERSION beside the live one, then swing `live`
    Deploy {
        service: String,
        version: String,
        /// Artifact store: file://DIR or s3://bucket/prefix
        #[arg(long, value_name = "URL")]
        store: String,
        /// Versions to keep on disk (the live one included)
        #[arg(long, default_value_t = 3)]
        keep: usize,
        #[command(flatten)]
        hooks: HookArgs,
    },
    /// Swing `live` back to VERSION [default: the newest other version on disk]
    Rollback {
        service: String,
        version: Option<String>,
        #[command(flatten)]
        hooks: HookArgs,
    },
    /// The live version and the versions on disk
    Status { service: String },
    /// Delete versions beyond the newest KEEP (never the live one)
    Gc {
        service: String,
        #[arg(long, default_value_t = 3)]
        keep: usize,
    },
}

pub fn run(args: HostArgs, context: &Context) -> Result<Exit, Error> {
    let HostArgs { root, action } = args;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    super::runtime()?.block_on(async {
        let cwd = std::env::current_dir().map_err(Error::Output)?;
        let agent = |service: &str, hooks: HookArgs, keep: usize, store| {
            let HookArgs { prepare, deployed, health, health_timeout } = hooks;
            Agent::new(&root, service, AgentHooks { prepare, deployed, health, health_timeout }, keep, store, clock.clone())
        };
        match action {
            HostAction::Deploy { service, version, store, keep, hooks } => {
                let store = crate::artifacts::open(&store, &cwd).await?;
                let agent = agent(&service, hooks, keep, Some(store));
                if let Err(error) = locked(&root, &service, clock.as_ref(), agent.deploy(&version)).await {
                    // The previous version keeps serving: a failure, but not one needing a person.
                    eprint!("{}", crate::report::render_error(&error, context.verbose > 0));
                    return Ok(if error.exit_code() == Exit::NeedsAttention { Exit::Failed } else { error.exit_code() });
                }
                context.output.event(json!({"event": "host_deployed", "service": service, "version": version}));
                context.output.human(&format!("{service} {version} is live"));
            }
            HostAction::Rollback { service, version, hooks } => {
                let agent = agent(&service, hooks, 3, None);
                let to = locked(&root, &service, clock.as_ref(), agent.rollback(version.as_deref())).await?;
                context.output.event(json!({"event": "host_rolled_back", "service": service, "version": to}));
                context.output.human(&format!("{service} {to} is live"));
            }
            HostAction::Status { service } => {
                let agent = agent(&service, HookArgs::none(), 3, None);
                let live = agent.target.layout.live(&service);
                let versions = agent.target.layout.versions(&service);
                context.output.event(json!({"event": "host_status", "service": service, "live": live, "versions": versions}));
                context.output.human(&format!("{service}: live {}; on disk: {}", live.as_deref().unwrap_or("-"), versions.join(" ")));
            }
            HostAction::Gc { service, keep } => {
                let agent = agent(&service, HookArgs::none(), keep, None);
                locked(&root, &service, clock.as_ref(), agent.gc()).await?;
                let versions = agent.target.layout.versions(&service);
                context.output.human(&format!("{service}: kept {}", versions.join(" ")));
            }
        }
        Ok(Exit::Success)
    })
}

impl HookArgs {
    fn none() -> Self {
        HookArgs {
            prepare: None,
            deployed: None,
            health: None,
            health_timeout: None,
        }
    }
}

/// Runs `work` holding `<root>/<service>/deploy.lock`, so two agents never swing one service.
async fn locked<T>(
    root: &std::path::Path,
    service: &str,
    clock: &dyn Clock,
    work: impl std::future::Future<Output = Result<T, crate::execute::TargetError>>,
) -> Result<T, Error> {
    let lock = LockFile::new(root.join(service), service);
    let holder = super::rollout::holder();
    let token = format!("{}-{}", holder.pid, clock.now().as_nanosecond());
    let acquired = lock
        .acquire(&holder, &token, crate::execute::LEASE_TTL * 10, clock.now())
        .await?;
    let result = work.await;
    lock.release(&acquired.lease).await?;
    result.map_err(|error| SessionError::Target(error).into())
}

//! `convoy host deploy|rollback|status|task|flags-sync|gc`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::Context;
use crate::config::Dur;
use crate::execute::{Clock, SystemClock};
use crate::ops::host::{self, AgentOptions};
use crate::report::json;
use crate::targets::host::AgentHooks;
use crate::targets::host::launch::Launch;
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
    /// Run in the version's directory before it takes traffic [default: the artifact's bin/prepare, if any]
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

/// What EC2 user data passes: the agent checks, configures and reports the launch.
#[derive(Debug, Args)]
#[command(next_help_heading = "On EC2 (from user data)")]
pub struct Ec2Args {
    /// Refuse the artifact unless its sha256 is HEX (checked before it is unpacked)
    #[arg(long, value_name = "HEX", value_parser = sha256_hex)]
    pub sha256: Option<String>,
    /// Write the service's environment (configuration and secrets) to FILE, mode 0600
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The service's configuration: a JSON object of variables, base64-encoded
    #[arg(long, value_name = "BASE64")]
    pub env_base64: Option<String>,
    /// Add the SecureStrings under this SSM path to the environment (read with the instance role)
    #[arg(long, value_name = "PATH")]
    pub secrets: Option<String>,
    /// AWS region of SSM and Auto Scaling [default: from the standard sources]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Complete this launch lifecycle hook: CONTINUE once healthy, ABANDON (with the reason) otherwise
    #[arg(long, value_name = "NAME", requires = "group")]
    pub lifecycle_hook: Option<String>,
    /// The Auto Scaling group whose launch hook this instance waits on
    #[arg(long, value_name = "NAME", requires = "lifecycle_hook")]
    pub group: Option<String>,
    /// This instance's id [default: from the instance metadata service]
    #[arg(long, value_name = "ID", env = "CONVOY_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Copy the environment's flags from this SSM parameter to `<root>/flags.json` first
    #[arg(long, value_name = "PARAMETER")]
    pub flags: Option<String>,
}

impl Ec2Args {
    fn into_launch(self) -> Launch {
        let Ec2Args {
            sha256,
            env_file,
            env_base64,
            secrets,
            region,
            lifecycle_hook,
            group,
            instance_id,
            flags,
        } = self;
        Launch {
            sha256,
            env_file,
            env_base64,
            secrets,
            region,
            hook: lifecycle_hook.zip(group),
            instance_id,
            flags,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum HostAction {
    /// Fetch, unpack, prepare and health-check VERSION beside the live one, then swing `live`
    Deploy {
        /// The service
        service: String,
        /// The version to fetch and make live
        version: String,
        /// Artifact store: file://DIR or s3://bucket/prefix
        #[arg(long, value_name = "URL")]
        store: String,
        /// Versions to keep on disk (the live one included)
        #[arg(long, default_value_t = 3)]
        keep: usize,
        /// Refuse artifacts whose meta.json is not signed by this ed25519 public key (64 hex digits, or a PEM file); repeat for rotation
        #[arg(
            long = "verify-key",
            value_name = "KEY",
            env = "CONVOY_VERIFY_KEYS",
            value_delimiter = ','
        )]
        verify_keys: Vec<String>,
        #[command(flatten)]
        hooks: HookArgs,
        #[command(flatten)]
        ec2: Box<Ec2Args>,
    },
    /// Swing `live` back to VERSION [default: the newest other version on disk]
    Rollback {
        /// The service
        service: String,
        /// The version on disk to make live again
        version: Option<String>,
        #[command(flatten)]
        hooks: HookArgs,
    },
    /// The live version and the versions on disk
    Status {
        /// The service
        service: String,
    },
    /// Run release task TASK of VERSION (on disk) in its directory, with the hooks' environment; exit with the command's status
    Task {
        /// The service
        service: String,
        /// The version on disk whose directory the task runs in
        version: String,
        /// The task's name (CONVOY_TASK)
        task: String,
        /// The task's command, as the release plan stored it
        #[arg(long, value_name = "CMD")]
        command: String,
        /// Add the variables of this file (written by `host deploy --env-file`), its secrets masked in the output
        #[arg(long, value_name = "FILE")]
        env_file: Option<PathBuf>,
        /// The task's budget; it is killed after
        #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = |s: &str| Dur::parse(s))]
        timeout: Dur,
    },
    /// Copy the environment's flags from an SSM parameter to `<root>/flags.json` (atomically, when changed)
    FlagsSync {
        /// The SSM parameter (`/convoy/<project>/<env>/flags`)
        #[arg(long, value_name = "PARAMETER")]
        parameter: String,
        /// AWS region of SSM [default: from the standard sources]
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
    },
    /// Delete versions beyond the newest KEEP (never the live one)
    Gc {
        /// The service
        service: String,
        /// Versions to keep on disk (the live one included)
        #[arg(long, default_value_t = 3)]
        keep: usize,
    },
}

pub fn run(args: HostArgs, context: &Context) -> Result<Exit, Error> {
    let HostArgs { root, action } = args;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let options = |service: &str, hooks: HookArgs, keep: usize| {
        let HookArgs {
            prepare,
            deployed,
            health,
            health_timeout,
        } = hooks;
        let hooks = AgentHooks {
            prepare,
            deployed,
            health,
            health_timeout,
        };
        AgentOptions {
            root: root.clone(),
            service: service.to_string(),
            hooks,
            keep,
            env: Default::default(),
        }
    };
    let runtime = super::runtime()?;
    match action {
        HostAction::Deploy {
            service,
            version,
            store,
            keep,
            verify_keys,
            hooks,
            ec2,
        } => {
            let agent = options(&service, hooks, keep);
            let launch = (*ec2).into_launch();
            let deployed = host::deploy(agent, &version, &store, &verify_keys, clock, launch);
            if let Err(error) = runtime.block_on(deployed) {
                // The previous version keeps serving: a failure, not one needing a person.
                eprint!(
                    "{}",
                    crate::report::render_error(&error, context.verbose > 0)
                );
                return Ok(match error.exit_code() {
                    Exit::NeedsAttention => Exit::Failed,
                    other => other,
                });
            }
            context
                .output
                .event(json!({"event": "host_deployed", "service": service, "version": version}));
            context
                .output
                .human(&format!("{service} {version} is live"));
        }
        HostAction::Rollback {
            service,
            version,
            hooks,
        } => {
            let agent = options(&service, hooks, 3);
            let to = runtime.block_on(host::rollback(agent, version.as_deref(), clock))?;
            context
                .output
                .event(json!({"event": "host_rolled_back", "service": service, "version": to}));
            context.output.human(&format!("{service} {to} is live"));
        }
        HostAction::Status { service } => {
            let (live, versions) = host::status(&root, &service);
            context.output.event(json!({"event": "host_status", "service": service, "live": live, "versions": versions}));
            let live = live.as_deref().unwrap_or("-");
            let versions = versions.join(" ");
            context
                .output
                .human(&format!("{service}: live {live}; on disk: {versions}"));
        }
        HostAction::Task {
            service,
            version,
            task,
            command,
            env_file,
            timeout,
        } => {
            let agent = options(&service, HookArgs::none(), 3);
            let ran = host::task(
                agent,
                &version,
                &task,
                &command,
                env_file.as_deref(),
                timeout.0,
                clock,
            );
            if let Err(failure) = runtime.block_on(ran) {
                let error = Error::from(crate::execute::SessionError::Target(failure.error));
                eprint!(
                    "{}",
                    crate::report::render_error(&error, context.verbose > 0)
                );
                // The command's own status, for SSM Run Command's ResponseCode (1 when it
                // did not exit: it did not start, was killed or ran out of time).
                let code = failure.code.filter(|c| (1..=255).contains(c)).unwrap_or(1);
                std::process::exit(code);
            }
            context.output.event(
                json!({"event": "host_task", "service": service, "version": version, "task": task}),
            );
            context
                .output
                .human(&format!("{service} {version}: task {task} succeeded"));
        }
        HostAction::FlagsSync { parameter, region } => {
            let changed =
                runtime.block_on(host::flags_sync(&root, &parameter, region.as_deref()))?;
            context.output.event(
                json!({"event": "host_flags_synced", "parameter": parameter, "changed": changed}),
            );
            if changed {
                let file = root.join("flags.json");
                context.output.human(&format!(
                    "flags of {parameter} copied to {}",
                    file.display()
                ));
            }
        }
        HostAction::Gc { service, keep } => {
            let agent = options(&service, HookArgs::none(), keep);
            let kept = runtime.block_on(host::gc(agent, clock))?;
            let kept = kept.join(" ");
            context.output.human(&format!("{service}: kept {kept}"));
        }
    }
    Ok(Exit::Success)
}

/// A sha256 as 64 hex digits: an empty or cut one would check nothing.
fn sha256_hex(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{text}` is not a sha256 (64 hex digits); the user data must name the artifact's"
        ))
    }
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

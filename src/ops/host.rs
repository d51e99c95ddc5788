//! `convoy host deploy|rollback|status|gc`: one service on this machine, from any artifact store
//! — what EC2 instances run from their user data. Every change holds
//! `<root>/<service>/deploy.lock`, so two agents never swing one service.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Error;
use crate::artifacts::{ArtifactError, VerifyKeys};
use crate::execute::{Clock, EnvLock, Holder, LEASE_TTL, SessionError, TargetError};
use crate::targets::host::launch::{Launch, verdict};
use crate::targets::host::task::TaskFailure;
use crate::targets::host::{Agent, AgentHooks, CommandEnv, HostLayout, LockFile};

/// One service under one root.
#[derive(Clone)]
pub struct AgentOptions {
    pub root: PathBuf,
    pub service: String,
    pub hooks: AgentHooks,
    /// Versions to keep on disk (the live one included).
    pub keep: usize,
    /// The environment the hooks and health command see (on EC2: configuration and secrets).
    pub env: CommandEnv,
}

impl AgentOptions {
    fn into_agent(
        self,
        store: Option<Arc<dyn crate::artifacts::ArtifactStore>>,
        clock: Arc<dyn Clock>,
    ) -> Agent {
        Agent::new(
            &self.root,
            &self.service,
            self.hooks,
            self.keep,
            store,
            clock,
        )
        .with_env(self.env)
    }
}

/// Fetches, unpacks, prepares and health-checks `version` beside the live one, then swings `live`.
/// With `verify_keys` (each 64 hex digits or the path of a PEM public key), an artifact whose
/// meta.json is not signed by one of them is refused before it is unpacked.
/// On EC2 (`launch`): the artifact must match the sha256 the user data names, the environment
/// comes from user data and SSM, and the launch hook learns the outcome — CONTINUE, or ABANDON
/// with the reason, which is also printed.
pub async fn deploy(
    mut agent: AgentOptions,
    version: &str,
    store: &str,
    verify_keys: &[String],
    clock: Arc<dyn Clock>,
    launch: Launch,
) -> Result<(), Error> {
    let service = agent.service.clone();
    let failed = |error: crate::targets::host::launch::LaunchError| -> Error {
        SessionError::Target(TargetError::failed(&service, "prepare the instance", error)).into()
    };
    let clients = match launch.is_ec2() {
        true => Some(launch.clients().await),
        false => None,
    };
    let gate = match &clients {
        Some(clients) => launch.gate(clients).await.map_err(failed)?,
        None => None,
    };
    // The flags first, so the revision's hooks and first start see them (the timer the user
    // data installs keeps them fresh). No flags is no reason to abandon a launch.
    if let (Some(clients), Some(parameter)) = (&clients, &launch.flags) {
        let file = HostLayout::new(&agent.root).flags_file();
        let synced =
            crate::targets::aws::flag_parameter::sync_to_file(&clients.ssm, parameter, &file);
        if let Err(detail) = synced.await {
            eprintln!("convoy: warning: the flags were not copied: {detail}");
        }
    }
    // Everything from here on is the launch's outcome: a failure abandons it.
    let outcome = async {
        let keys = verify_keys_from(verify_keys)?;
        if let Some(clients) = &clients {
            let flags_file = HostLayout::new(&agent.root).flags_file();
            let env = launch.environment(clients, &flags_file).await;
            agent.env = env.map_err(failed)?;
        }
        let cwd = std::env::current_dir().map_err(Error::Output)?;
        let store = crate::artifacts::open(store, &cwd).await?;
        let root = agent.root.clone();
        let mut agent = agent.clone().into_agent(Some(store), clock.clone());
        agent.target.trust.keys = keys;
        launch.pin(&agent.target.trust, &agent.service, version);
        locked(&root, &agent.service, clock.as_ref(), agent.deploy(version)).await
    }
    .await;
    let Some(gate) = gate else {
        return outcome;
    };
    let verdict = verdict(&outcome, &agent.env);
    if let crate::targets::host::lifecycle::Verdict::Failed(reason) = &verdict {
        eprintln!(
            "convoy: abandoning the launch of {} ({} of {}): {reason}",
            gate.instance, gate.hook, gate.group
        );
    }
    if let Err(detail) = gate.report(&verdict).await {
        eprintln!("convoy: could not report to the launch hook: {detail}");
        outcome?;
        return Err(failed(crate::targets::host::launch::LaunchError::Gate(
            detail,
        )));
    }
    outcome
}

/// Each key as given, or read from the file it names.
fn verify_keys_from(given: &[String]) -> Result<VerifyKeys, Error> {
    let mut texts = Vec::new();
    for key in given {
        let text = match key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()) {
            true => key.clone(),
            false => std::fs::read_to_string(key).map_err(|error| ArtifactError::BadVerifyKey {
                key: key.clone(),
                reason: format!("it is not 64 hex digits, and not a readable file ({error})"),
            })?,
        };
        let parsed = VerifyKeys::parse(std::slice::from_ref(&text));
        parsed.map_err(|reason| ArtifactError::BadVerifyKey {
            key: key.clone(),
            reason,
        })?;
        texts.push(text);
    }
    VerifyKeys::parse(&texts).map_err(|reason| {
        Error::Artifact(ArtifactError::BadVerifyKey {
            key: given.join(","),
            reason,
        })
    })
}

/// Swings `live` back to `version`, or the newest other version on disk; returns it.
pub async fn rollback(
    agent: AgentOptions,
    version: Option<&str>,
    clock: Arc<dyn Clock>,
) -> Result<String, Error> {
    let root = agent.root.clone();
    let agent = agent.into_agent(None, clock.clone());
    locked(
        &root,
        &agent.service,
        clock.as_ref(),
        agent.rollback(version),
    )
    .await
}

/// The live version and the versions on disk.
pub fn status(root: &Path, service: &str) -> (Option<String>, Vec<String>) {
    let layout = HostLayout::new(root);
    (layout.live(service), layout.versions(service))
}

/// Deletes versions beyond the newest `keep` (never the live one); returns those kept.
pub async fn gc(agent: AgentOptions, clock: Arc<dyn Clock>) -> Result<Vec<String>, Error> {
    let root = agent.root.clone();
    let agent = agent.into_agent(None, clock.clone());
    locked(&root, &agent.service, clock.as_ref(), agent.gc()).await?;
    Ok(agent.target.layout.versions(&agent.service))
}

/// Runs release task `task` (`command`, as the release plan's step stored it) of `version` of
/// the agent's service, in the version's directory with the hooks' environment; with
/// `env_file` (on EC2, what the agent wrote from user data and SSM) that file's variables too,
/// its secrets masked. No lock: a task runs beside the live version, as in a release.
pub async fn task(
    mut agent: AgentOptions,
    version: &str,
    task: &str,
    command: &str,
    env_file: Option<&Path>,
    budget: std::time::Duration,
    clock: Arc<dyn Clock>,
) -> Result<(), TaskFailure> {
    if let Some(path) = env_file {
        agent.env = read_env_file(&agent.service, path)
            .map_err(|error| TaskFailure { code: None, error })?;
    }
    let agent = agent.into_agent(None, clock);
    agent.task(version, task, command, budget).await
}

fn read_env_file(service: &str, path: &Path) -> Result<CommandEnv, TargetError> {
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::Io {
        service: service.to_string(),
        action: "read the environment file",
        path: path.to_path_buf(),
        source,
    })?;
    crate::targets::host::env_file::parse(&text).map_err(|detail| TargetError::Action {
        service: service.to_string(),
        action: format!("read {}", path.display()),
        detail,
    })
}

/// Copies the environment's flags from SSM `parameter` to `<root>/flags.json` (atomically,
/// only when they changed); whether they changed.
pub async fn flags_sync(root: &Path, parameter: &str, region: Option<&str>) -> Result<bool, Error> {
    let launch = Launch {
        region: region.map(str::to_string),
        ..Launch::default()
    };
    let clients = launch.clients().await;
    let file = HostLayout::new(root).flags_file();
    crate::targets::aws::flag_parameter::sync_to_file(&clients.ssm, parameter, &file)
        .await
        .map_err(|detail| {
            let error = TargetError::Action {
                service: "flags".to_string(),
                action: format!("copy {parameter} to {}", file.display()),
                detail,
            };
            SessionError::Target(error).into()
        })
}

/// Runs `work` holding `<root>/<service>/deploy.lock`.
async fn locked<T>(
    root: &Path,
    service: &str,
    clock: &dyn Clock,
    work: impl std::future::Future<Output = Result<T, TargetError>>,
) -> Result<T, Error> {
    let lock = LockFile::new(root.join(service), service);
    let holder = Holder::this_process();
    let token = holder.token(clock.now());
    let acquired = lock
        .acquire(&holder, &token, LEASE_TTL * 10, clock.now())
        .await?;
    let result = work.await;
    lock.release(&acquired.lease).await?;
    result.map_err(|error| SessionError::Target(error).into())
}

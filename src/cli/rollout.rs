//! What `plan`, `deploy`, `rollback` and `status` share: the desired versions at a ref, the
//! environment's target and state, who is running, and how a release outcome maps to an exit.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;

use crate::artifacts::ArtifactStore;
use crate::build::{BuildOutcome, BuildRequest, NoProgress};
use crate::config::{ConfigErrors, Project};
use crate::execute::{Abort, Clock, Holder, Outcome, Reporter, Session, SystemClock};
use crate::report::{HumanReporter, JsonReporter};
use crate::targets::{EnvironmentState, OpenRequest, OpenedTarget};
use crate::{Error, Exit};

use super::Context;

/// Everything a rollout command needs, opened and validated before anything changes.
pub struct Opened {
    pub project: Project,
    pub target: OpenedTarget,
    pub state: EnvironmentState,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn ArtifactStore>,
}

impl Opened {
    /// A session on this environment, reporting to `reporter`, interrupted by Ctrl-C.
    pub fn session<'a>(
        &'a self,
        environment: &'a str,
        reporter: &'a dyn Reporter,
    ) -> Result<Session<'a>, Error> {
        let env = self
            .project
            .environment(environment)
            .map_err(ConfigErrors::from)?;
        let abort = interrupt_on_ctrl_c();
        Ok(Session {
            environment,
            policy: &env.rollout,
            graph: &self.project.graph,
            target: self.target.target.as_ref(),
            releases: self.state.releases.as_ref(),
            lock: self.state.lock.clone(),
            clock: self.clock.clone(),
            reporter,
            holder: holder(),
            abort,
            values: self.values_digests(),
        })
    }

    /// sha256 of each service's values as written beside its versions (secrets masked, so the
    /// digest says nothing about them).
    fn values_digests(&self) -> std::collections::BTreeMap<String, String> {
        use sha2::Digest;
        self.target
            .values
            .iter()
            .map(|(name, values)| {
                let bytes = serde_json::to_vec(values).unwrap_or_default();
                (name.clone(), hex::encode(sha2::Sha256::digest(bytes)))
            })
            .collect()
    }
}

/// The services named, or all of them, checked to exist.
pub fn services(project: &Project, named: &[String]) -> Result<Vec<String>, Error> {
    if named.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    for name in named {
        project.service(name).map_err(ConfigErrors::from)?;
    }
    Ok(named.to_vec())
}

pub async fn open(
    context: &Context,
    project: Project,
    environment: &str,
    services: &[String],
    sets: &[String],
) -> Result<Opened, Error> {
    project
        .environment(environment)
        .map_err(ConfigErrors::from)?;
    let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let request = OpenRequest {
        environment,
        services,
        sets,
        store: store.clone(),
        clock: clock.clone(),
        overrides: &context.overrides,
    };
    let (target, state) = crate::targets::open(&project, request).await?;
    Ok(Opened {
        project,
        target,
        state,
        clock,
        store,
    })
}

/// The version of each service at `rev` (no build).
pub fn desired(
    project: &Project,
    rev: &str,
    services: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    let resolved = crate::build::resolve_versions(project, rev)?;
    if resolved.dirty {
        eprintln!(
            "note: the work tree has uncommitted changes; deploying the commit {rev} as committed"
        );
    }
    Ok(resolved
        .services
        .into_iter()
        .filter(|v| services.contains(&v.service))
        .map(|v| (v.service, v.version))
        .collect())
}

/// Builds and publishes what the store lacks; a failed recipe stops the deploy before any change.
pub async fn build_missing(
    project: &Project,
    rev: &str,
    services: &[String],
    store: &dyn ArtifactStore,
) -> Result<(), Error> {
    let request = BuildRequest {
        rev: rev.to_string(),
        services: services.to_vec(),
    };
    let outcomes = crate::build::build(project, &request, store, &NoProgress).await?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o, BuildOutcome::Failed { .. }))
        .map(|o| o.service().to_string())
        .collect();
    for outcome in &outcomes {
        if let BuildOutcome::Failed { error, .. } = outcome {
            eprint!("{}", crate::report::render_diagnostic(error));
        }
    }
    if !failed.is_empty() {
        return Err(Error::BuildsFailed {
            total: outcomes.len(),
            failed,
        });
    }
    let built = outcomes
        .iter()
        .filter(|o| matches!(o, BuildOutcome::Built { .. }))
        .count();
    if built > 0 {
        eprintln!(
            "built {built} artifact(s); {} already in the store",
            outcomes.len() - built
        );
    }
    Ok(())
}

pub fn reporter(context: &Context) -> Box<dyn Reporter> {
    if context.output.is_json() {
        Box::new(JsonReporter)
    } else {
        Box::new(HumanReporter::new(context.progress))
    }
}

/// Who runs this: user, host, CI job when known.
pub fn holder() -> Holder {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let ci = env("GITHUB_RUN_ID")
        .map(|id| format!("github run {id}"))
        .or_else(|| env("CI_JOB_ID").map(|id| format!("gitlab job {id}")))
        .or_else(|| env("BUILD_ID").map(|id| format!("build {id}")));
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(|| "unknown-host".to_string());
    Holder {
        user: env("USER")
            .or_else(|| env("LOGNAME"))
            .unwrap_or_else(|| "unknown".to_string()),
        host,
        ci,
        pid: std::process::id(),
        pid_namespace: std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|p| p.display().to_string()),
    }
}

/// Ctrl-C once: abort and roll back. Twice: stop at once, leaving the journal for `--resume`.
pub fn interrupt_on_ctrl_c() -> Abort {
    let (raise, abort) = Abort::new();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted: rolling back (Ctrl-C again stops at once and leaves the journal)"
            );
            let _ = raise.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "stopped; `convoy deploy --resume` or `convoy rollback` continues from the journal"
                );
                std::process::exit(Exit::NeedsAttention as i32);
            }
        }
    });
    abort
}

/// Production-like environments ask first, on a terminal; elsewhere `--yes` is required.
pub fn confirm(
    context: &Context,
    project: &Project,
    environment: &str,
    what: &str,
) -> Result<bool, Error> {
    let protected = project
        .environment(environment)
        .map_err(ConfigErrors::from)?
        .protected;
    if !protected || context.assume_yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Protected {
            environment: environment.to_string(),
        });
    }
    eprint!("{what} `{environment}`? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(Error::Output)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn exit_for(outcome: &Outcome) -> Exit {
    match outcome {
        Outcome::Succeeded => Exit::Success,
        Outcome::RolledBack { .. } => Exit::Failed,
        Outcome::Failed { .. } | Outcome::InProgress => Exit::NeedsAttention,
    }
}

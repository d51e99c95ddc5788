//! What `deploy`, `plan` and `rollback` share: the services named, the version of each at a ref,
//! building what the store lacks, and an environment opened for a release with every value
//! resolved before anything changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::Exit;
use crate::artifacts::{ArtifactStore, ArtifactTrust};
use crate::build::{BuildOutcome, BuildRequest, NoProgress};
use crate::config::{ConfigErrors, Project};
use crate::execute::{
    Abort, Clock, EnvLock, Event, Holder, Outcome, PinnedReleases, ReleaseStore, Reporter, Session,
    SystemClock, Target,
};
use crate::render::{ResolvedValues, SecretMode, resolve_values};
use crate::secrets::{MaskedTarget, Masker};
use crate::targets::{Backend, Overrides, TargetRequest};

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

/// The version of each of `services` at `rev` (no build); a dirty work tree is noted, since only
/// what is committed is deployed.
pub fn desired(
    project: &Project,
    rev: &str,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, String>, Error> {
    let resolved = crate::build::resolve_versions(project, rev)?;
    if resolved.dirty {
        reporter.report(&Event::Note {
            message: format!(
                "note: the work tree has uncommitted changes; deploying the commit {rev} as committed"
            ),
        });
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
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let request = BuildRequest {
        rev: rev.to_string(),
        services: services.to_vec(),
    };
    let outcomes = crate::build::build(project, &request, store, &NoProgress).await?;
    let mut failed = Vec::new();
    for outcome in &outcomes {
        if let BuildOutcome::Failed { error, .. } = outcome {
            reporter.report(&Event::Note {
                message: crate::report::render_diagnostic(error)
                    .trim_end()
                    .to_string(),
            });
            failed.push(outcome.service().to_string());
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
        reporter.report(&Event::Note {
            message: format!(
                "built {built} artifact(s); {} already in the store",
                outcomes.len() - built
            ),
        });
    }
    Ok(())
}

/// An environment opened for a release: its target with every value of the release's services
/// resolved (secrets included), its records and lock, the artifact store and the clock.
pub struct Rollout {
    pub project: Project,
    pub environment: String,
    pub backend: Box<dyn Backend>,
    pub target: Arc<dyn Target>,
    pub releases: Arc<dyn ReleaseStore>,
    pub lock: Arc<dyn EnvLock>,
    pub store: Arc<dyn ArtifactStore>,
    pub clock: Arc<dyn Clock>,
    pub values: BTreeMap<String, ResolvedValues>,
    /// Signature keys, artifact limits and the digests pinned for this release's versions.
    pub trust: ArtifactTrust,
}

/// What opening an environment for a release needs.
pub struct RolloutRequest<'a> {
    pub project: Project,
    pub environment: &'a str,
    pub services: &'a [String],
    pub sets: &'a [String],
    pub overrides: &'a Overrides,
    pub reporter: Arc<dyn Reporter>,
}

impl Rollout {
    /// Opens the environment; every value and secret of `services` must resolve, or nothing
    /// else happens.
    pub async fn open(request: RolloutRequest<'_>) -> Result<Rollout, Error> {
        let RolloutRequest {
            project,
            environment,
            services,
            sets,
            overrides,
            reporter,
        } = request;
        let backend = crate::targets::open(&project, environment, overrides).await?;
        let secrets = match backend.needs_secrets() {
            true => SecretMode::Reveal,
            false => SecretMode::Mask,
        };
        let values = resolve_values(&project, environment, services, sets, secrets)?;
        let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let trust = ArtifactTrust {
            limits: project.artifacts.limits,
            keys: project.artifacts.verify_keys.clone(),
            pins: Default::default(),
        };
        let target = backend
            .target(TargetRequest {
                services,
                sets,
                values: &values,
                store: store.clone(),
                clock: clock.clone(),
                reporter,
                trust: trust.clone(),
            })
            .await?;
        // Whatever the target or what it runs prints, no secret reaches a journal, a record or
        // the terminal through a step's error.
        let masker = Masker::new(values.values().flat_map(|v| v.secrets.iter()));
        let target = MaskedTarget::wrap(target, masker);
        Ok(Rollout {
            environment: environment.to_string(),
            releases: PinnedReleases::wrap(backend.releases()?, trust.pins.clone()),
            trust,
            lock: backend.lock()?,
            backend,
            target,
            store,
            clock,
            values,
            project,
        })
    }

    /// Pins the artifact of each of `desired` as the store's meta.json names it — its signature
    /// checked when `artifacts.verify_keys` is set — so the release records its sha256 and the
    /// target refuses any other bytes. Versions not in the store are left to fail where used.
    pub async fn pin_artifacts(&self, desired: &BTreeMap<String, String>) -> Result<(), Error> {
        for (service, version) in desired {
            if let Some(meta) = self.store.meta(service, version).await? {
                let location = format!("{}/{service}/{version}/meta.json", self.store.describe());
                self.trust.pin_from_store(&meta, &location)?;
            }
        }
        Ok(())
    }

    /// A session on this environment, reporting to `reporter`, aborted by `abort`.
    pub fn session<'a>(
        &'a self,
        reporter: &'a dyn Reporter,
        abort: Abort,
    ) -> Result<Session<'a>, Error> {
        let env = self
            .project
            .environment(&self.environment)
            .map_err(ConfigErrors::from)?;
        Ok(Session {
            environment: &self.environment,
            policy: &env.rollout,
            graph: &self.project.graph,
            target: self.target.as_ref(),
            releases: self.releases.as_ref(),
            lock: self.lock.clone(),
            clock: self.clock.clone(),
            reporter,
            holder: Holder::this_process(),
            abort,
            values: self.values_digests(),
        })
    }

    /// sha256 of each service's values as written beside its versions (secrets masked, so the
    /// digest says nothing about them).
    fn values_digests(&self) -> BTreeMap<String, String> {
        use sha2::Digest;
        self.values
            .iter()
            .map(|(name, values)| {
                let bytes = serde_json::to_vec(&values.masked).unwrap_or_default();
                (name.clone(), hex::encode(sha2::Sha256::digest(bytes)))
            })
            .collect()
    }
}

/// How a release's outcome ends the process.
pub fn exit_for(outcome: &Outcome) -> Exit {
    match outcome {
        Outcome::Succeeded => Exit::Success,
        Outcome::RolledBack { .. } => Exit::Failed,
        Outcome::Failed { .. } | Outcome::InProgress => Exit::NeedsAttention,
    }
}

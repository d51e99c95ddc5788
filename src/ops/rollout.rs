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
use crate::plan::revision::Revision;
use crate::render::resolved::ResolvedValues;
use crate::render::revision::{RevisionInput, revision};
use crate::render::{RenderErrors, SecretMode, ServiceVersion, resolve_values};
use crate::secrets::{MaskedTarget, Masker};
use crate::targets::{Backend, Overrides, RevisionSpec, Revisions, TargetRequest};

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

/// What a ref deploys: the project commit, and the artifact of each service there.
pub struct Desired {
    pub commit: String,
    /// Whether the work tree had uncommitted changes (they are not deployed).
    pub dirty: bool,
    pub artifacts: BTreeMap<String, ServiceVersion>,
}

/// The artifact of each of `services` at `rev` (no build); a dirty work tree is noted, since
/// only what is committed is deployed.
pub fn desired(
    project: &Project,
    rev: &str,
    services: &[String],
    reporter: &dyn Reporter,
) -> Result<Desired, Error> {
    let resolved = crate::build::resolve_versions(project, rev)?;
    if resolved.dirty {
        reporter.report(&Event::Note {
            message: format!(
                "note: the work tree has uncommitted changes: artifacts are built from {rev} as committed, configuration is read from the work tree, and the release records its revisions as dirty (a rollback cannot re-create them from the commit)"
            ),
        });
    }
    let artifacts = resolved
        .services
        .into_iter()
        .filter(|v| services.contains(&v.service))
        .map(|v| {
            let artifact = ServiceVersion {
                version: v.version,
                commit: v.commit,
                ..ServiceVersion::default()
            };
            (v.service, artifact)
        })
        .collect();
    Ok(Desired {
        commit: resolved.commit,
        dirty: resolved.dirty,
        artifacts,
    })
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
/// resolved (secrets included), the revisions it would run, its records and lock, the artifact
/// store and the clock.
pub struct Rollout {
    /// Shared with the target and the revisions' specs.
    pub project: Arc<Project>,
    pub environment: String,
    pub backend: Box<dyn Backend>,
    pub target: Arc<dyn Target>,
    pub releases: Arc<dyn ReleaseStore>,
    pub lock: Arc<dyn EnvLock>,
    pub store: Arc<dyn ArtifactStore>,
    pub clock: Arc<dyn Clock>,
    /// Signature keys, artifact limits and the digests pinned for this release's versions.
    pub trust: ArtifactTrust,
    /// The revision each service would run at the ref deployed (none for a rollback).
    pub revisions: BTreeMap<String, Arc<Revision>>,
    /// Every revision the target may be asked to run, by id.
    pub specs: Revisions,
    pub services: Vec<String>,
    reporter: Arc<dyn Reporter>,
    /// Configurations exported at recorded commits, which re-created revisions render from.
    exports: Vec<tempfile::TempDir>,
}

/// What opening an environment for a release needs.
pub struct RolloutRequest<'a> {
    pub project: Project,
    pub environment: &'a str,
    pub services: &'a [String],
    pub sets: &'a [String],
    /// The artifacts at the ref deployed; `None` for a rollback (its revisions are recorded).
    pub desired: Option<&'a Desired>,
    pub overrides: &'a Overrides,
    pub reporter: Arc<dyn Reporter>,
}

impl Rollout {
    /// Opens the environment; every value and secret of `services` must resolve, and every
    /// revision must render, or nothing else happens.
    pub async fn open(request: RolloutRequest<'_>) -> Result<Rollout, Error> {
        let RolloutRequest {
            project,
            environment,
            services,
            sets,
            desired,
            overrides,
            reporter,
        } = request;
        let project = Arc::new(project);
        let backend = crate::targets::open_shared(&project, environment, overrides).await?;
        let (revisions, specs) = match desired {
            Some(desired) => {
                let made = Made {
                    project: &project,
                    environment,
                    backend: backend.as_ref(),
                };
                made.revisions(services, sets, desired).await?
            }
            None => (BTreeMap::new(), BTreeMap::new()),
        };
        let specs: Revisions = Arc::new(specs);
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
                revisions: specs.clone(),
                store: store.clone(),
                clock: clock.clone(),
                reporter: reporter.clone(),
                trust: trust.clone(),
            })
            .await?;
        let target = masked(target, &specs);
        Ok(Rollout {
            services: services.to_vec(),
            reporter,
            exports: Vec::new(),
            environment: environment.to_string(),
            releases: PinnedReleases::wrap(backend.releases()?, trust.pins.clone()),
            trust,
            lock: backend.lock()?,
            backend,
            target,
            store,
            clock,
            revisions,
            specs,
            project,
        })
    }

    /// Pins the artifact of each revision this release would run as the store's meta.json
    /// names it — its signature checked when `artifacts.verify_keys` is set — so the release
    /// records its sha256 and the target refuses any other bytes. Versions not in the store are
    /// left to fail where used.
    pub async fn pin_artifacts(&self) -> Result<(), Error> {
        for (service, revision) in &self.revisions {
            let version = &revision.version;
            if let Some(meta) = self.store.meta(service, version).await? {
                let location = format!("{}/{service}/{version}/meta.json", self.store.describe());
                self.trust.pin_from_store(&meta, &location)?;
            }
        }
        Ok(())
    }

    /// The same environment returning to `returning` (a rollback's revisions, from their
    /// records), its target also able to run the revisions `recreated` from their records.
    pub async fn returning_to(
        mut self,
        returning: BTreeMap<String, Arc<Revision>>,
        recreated: crate::ops::recreate::Recreated,
    ) -> Result<Rollout, Error> {
        self.revisions = returning;
        if recreated.specs.is_empty() {
            return Ok(self);
        }
        let mut specs = (*self.specs).clone();
        specs.extend(recreated.specs);
        self.specs = Arc::new(specs);
        self.exports.extend(recreated.exports);
        self.target = self
            .backend
            .target(TargetRequest {
                services: &self.services,
                revisions: self.specs.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                reporter: self.reporter.clone(),
                trust: self.trust.clone(),
            })
            .await?;
        self.target = masked(self.target, &self.specs);
        Ok(self)
    }

    /// The revision id each service would run: what a deploy asks for.
    pub fn desired(&self) -> BTreeMap<String, String> {
        let ids = self.revisions.iter();
        ids.map(|(s, r)| (s.clone(), r.id.clone())).collect()
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
            revisions: &self.revisions,
            tasks: self
                .project
                .services
                .iter()
                .filter(|(_, s)| !s.tasks.is_empty())
                .map(|(name, s)| (name.clone(), s.tasks.clone()))
                .collect(),
            flags: self.backend.flags().ok(),
        })
    }
}

/// `target` such that, whatever it or what it runs prints, no secret of `specs` reaches a
/// journal, a record or the terminal through a step's error.
fn masked(target: Arc<dyn Target>, specs: &Revisions) -> Arc<dyn Target> {
    let masker = Masker::new(specs.values().flat_map(|s| s.values.secrets.iter()));
    MaskedTarget::wrap(target, masker)
}

/// Working out revisions of an environment's services from a project.
pub struct Made<'a> {
    pub project: &'a Arc<Project>,
    pub environment: &'a str,
    pub backend: &'a dyn Backend,
}

impl Made<'_> {
    /// The revision of each of `services` with the artifacts of `desired` and `sets`: its
    /// record, and the spec a target runs it from.
    pub async fn revisions(
        &self,
        services: &[String],
        sets: &[String],
        desired: &Desired,
    ) -> Result<
        (
            BTreeMap<String, Arc<Revision>>,
            BTreeMap<String, RevisionSpec>,
        ),
        Error,
    > {
        let secrets = match self.backend.needs_secrets() {
            true => SecretMode::Reveal,
            false => SecretMode::Mask,
        };
        let mut values = resolve_values(self.project, self.environment, services, sets, secrets)?;
        let key = self.backend.digest_key().await?;
        let mut revisions = BTreeMap::new();
        let mut specs = BTreeMap::new();
        let mut errors = Vec::new();
        for service in services {
            // Moved into the spec, not copied: a thousand services' values held twice were
            // 8 MB of a release's peak.
            let (Some(artifact), Some(values)) =
                (desired.artifacts.get(service), values.remove(service))
            else {
                continue;
            };
            let input = RevisionInput {
                project: self.project,
                environment: self.environment,
                service,
                artifact,
                values: &values,
                sets,
                key: &key,
                commit: &desired.commit,
                dirty: desired.dirty,
            };
            let (record, version) = match revision(&input) {
                Ok(made) => made,
                Err(RenderErrors(found)) => {
                    errors.extend(found);
                    continue;
                }
            };
            let spec = RevisionSpec {
                service: service.clone(),
                version,
                project: self.project.clone(),
                sets: sets.to_vec(),
                // Where each value was set is the record's to keep; the spec renders from the
                // values alone.
                values: ResolvedValues {
                    origins: BTreeMap::new(),
                    ..values
                },
            };
            specs.insert(record.id.clone(), spec);
            revisions.insert(service.clone(), Arc::new(record));
        }
        if !errors.is_empty() {
            return Err(RenderErrors(errors).into());
        }
        Ok((revisions, specs))
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

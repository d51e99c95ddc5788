//! Building immutable artifacts from git: refs, per-service trees, clean export, recipes,
//! reproducible tarballs. Services whose key is already in the store are not rebuilt.

mod error;
mod git;
mod package;
mod recipe;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;

pub use error::BuildError;
pub use git::{Resolved, ServiceVersion, VERSION_LEN, export_config, resolve_versions};
pub use package::{Packaged, check_outputs, package};

use crate::artifacts::{ArtifactMeta, ArtifactSigner, ArtifactStore};
use crate::config::{KeySource, Project, Service};
use crate::secrets::Masker;
use error::io;

/// What to build: a git revision and services (empty: all of them).
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub rev: String,
    pub services: Vec<String>,
}

/// What happened to one service.
#[derive(Debug)]
pub enum BuildOutcome {
    /// Built now and published (or published by a concurrent build of the same key).
    Built { meta: ArtifactMeta, log: PathBuf },
    /// Its key was already in the store.
    Cached { meta: ArtifactMeta },
    Failed {
        version: ServiceVersion,
        error: BuildError,
    },
}

impl BuildOutcome {
    pub fn service(&self) -> &str {
        match self {
            BuildOutcome::Built { meta, .. } | BuildOutcome::Cached { meta } => &meta.service,
            BuildOutcome::Failed { version, .. } => &version.service,
        }
    }

    pub fn version(&self) -> &str {
        match self {
            BuildOutcome::Built { meta, .. } | BuildOutcome::Cached { meta } => &meta.version,
            BuildOutcome::Failed { version, .. } => &version.version,
        }
    }

    /// `built`, `cached` or `failed`.
    pub fn status(&self) -> &'static str {
        match self {
            BuildOutcome::Built { .. } => "built",
            BuildOutcome::Cached { .. } => "cached",
            BuildOutcome::Failed { .. } => "failed",
        }
    }
}

/// Told about each service as it starts and ends; progress bars, logs, tests.
pub trait Progress: Send + Sync {
    fn started(&self, _service: &ServiceVersion) {}
    fn finished(&self, _outcome: &BuildOutcome) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Builds the requested services at `request.rev` in parallel (bounded by the CPU count) and
/// publishes them. A failing recipe is a [`BuildOutcome::Failed`], not an `Err`: the others
/// still finish. `Err` means nothing could start (bad ref, unknown service, bad `output`).
pub async fn build(
    project: &Project,
    request: &BuildRequest,
    store: &dyn ArtifactStore,
    progress: &dyn Progress,
) -> Result<Vec<BuildOutcome>, BuildError> {
    for name in &request.services {
        if !project.services.contains_key(name) {
            return Err(BuildError::UnknownService {
                name: name.clone(),
                known: project.services.keys().cloned().collect(),
            });
        }
    }
    let resolved = resolve_versions(project, &request.rev)?;
    let wanted: Vec<ServiceVersion> = resolved
        .services
        .into_iter()
        .filter(|sv| request.services.is_empty() || request.services.contains(&sv.service))
        .collect();
    for sv in &wanted {
        check_outputs(&sv.service, &project.services[&sv.service].output)?;
    }
    let (signer, key_text) = signer(project)?;
    let mut secrets = crate::secrets::project_secrets(project);
    secrets.extend(key_text);
    let masker = std::sync::Arc::new(Masker::new(secrets));
    let (_, location) = git::locate(project)?;
    let logs = project.root.join(".convoy/logs");
    std::fs::create_dir_all(&logs).map_err(io("create", &logs))?;
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jobs = wanted.into_iter().map(|sv| {
        let job = Job {
            repo_dir: location.repo_dir.clone(),
            prefix: location.prefix.clone(),
            service: project.services[&sv.service].clone(),
            log: logs.join(format!("{}-{}.log", sv.service, sv.version)),
            version: sv,
            masker: masker.clone(),
            signer: signer.clone(),
        };
        async move {
            progress.started(&job.version);
            let outcome = build_one(job, store).await;
            progress.finished(&outcome);
            outcome
        }
    });
    let mut outcomes: Vec<BuildOutcome> = futures::stream::iter(jobs)
        .buffer_unordered(parallel)
        .collect()
        .await;
    outcomes.sort_by(|a, b| a.service().cmp(b.service()));
    Ok(outcomes)
}

struct Job {
    repo_dir: PathBuf,
    prefix: PathBuf,
    service: Service,
    version: ServiceVersion,
    log: PathBuf,
    masker: std::sync::Arc<Masker>,
    signer: Option<std::sync::Arc<ArtifactSigner>>,
}

/// The signing key of `artifacts.signing_key`, and its text (to mask), when one is set.
#[allow(clippy::type_complexity)] // a pair used once, right below
fn signer(
    project: &Project,
) -> Result<(Option<std::sync::Arc<ArtifactSigner>>, Option<String>), BuildError> {
    let Some(source) = &project.artifacts.signing_key else {
        return Ok((None, None));
    };
    let (source_name, text) = match source {
        KeySource::Env { env: name } => (format!("env {name}"), std::env::var(name).ok()),
        KeySource::File { file: path } => (
            format!("file {}", path.display()),
            std::fs::read_to_string(project.root.join(path)).ok(),
        ),
    };
    let fail = |reason: String| BuildError::SigningKey {
        source_name: source_name.clone(),
        reason,
    };
    let text = text.ok_or_else(|| fail("it is not set or cannot be read".to_string()))?;
    let signer = ArtifactSigner::parse(&text).map_err(fail)?;
    Ok((
        Some(std::sync::Arc::new(signer)),
        Some(text.trim().to_string()),
    ))
}

async fn build_one(job: Job, store: &dyn ArtifactStore) -> BuildOutcome {
    let version = job.version.clone();
    let failed = |error| BuildOutcome::Failed {
        version: version.clone(),
        error,
    };
    match store.meta(&version.service, &version.version).await {
        Ok(Some(meta)) if meta.key == version.key => return BuildOutcome::Cached { meta },
        Ok(Some(meta)) => {
            return failed(BuildError::Artifact(
                crate::artifacts::ArtifactError::KeyConflict {
                    service: version.service.clone(),
                    version: version.version.clone(),
                    existing: meta.key,
                    wanted: version.key.clone(),
                },
            ));
        }
        Ok(None) => {}
        Err(error) => return failed(error.into()),
    }
    let log = job.log.clone();
    let service = version.service.clone();
    let made = tokio::task::spawn_blocking(move || make(&job)).await;
    let (meta, temp) = match made {
        Ok(Ok(made)) => made,
        Ok(Err(error)) => return failed(error),
        Err(source) => return failed(BuildError::Task { service, source }),
    };
    let tarball = temp.path().join("artifact.tar.gz");
    match store.publish(&meta, &tarball, Some(&log)).await {
        Ok(published) => BuildOutcome::Built {
            meta: published.meta().clone(),
            log,
        },
        Err(error) => failed(error.into()),
    }
}

/// Export, recipe, package: the blocking part of one service's build.
fn make(job: &Job) -> Result<(ArtifactMeta, tempfile::TempDir), BuildError> {
    let started = Instant::now();
    let build_time = jiff::Timestamp::now();
    let sv = &job.version;
    let repo =
        git2::Repository::open(&job.repo_dir).map_err(|source| BuildError::NoRepository {
            root: job.repo_dir.clone(),
            source,
        })?;
    let temp = tempfile::tempdir()
        .map_err(io("create a temporary directory in", &std::env::temp_dir()))?;
    let src = temp.path().join("src");
    let mut paths: Vec<&str> = vec![job.service.path.as_str()];
    paths.extend(job.service.extra_paths.iter().map(String::as_str));
    git::export(&repo, &sv.commit, &job.prefix, &paths, &src)?;
    let service_dir = src.join(&job.service.path);
    let env = recipe::RecipeEnv {
        service: &sv.service,
        version: &sv.version,
        commit: &sv.commit,
        pass: &job.service.env,
        masker: &job.masker,
    };
    recipe::run(&job.service.build, &service_dir, &env, &job.log)?;
    let info = git::commit_info(&repo, &sv.commit)?;
    let tarball = temp.path().join("artifact.tar.gz");
    let mtime = u64::try_from(info.time).unwrap_or(0);
    let packaged = package(
        &sv.service,
        &service_dir,
        &job.service.output,
        mtime,
        &tarball,
    )?;
    let mut meta = ArtifactMeta {
        service: sv.service.clone(),
        version: sv.version.clone(),
        commit: sv.commit.clone(),
        tree: sv.tree.clone(),
        key: sv.key.clone(),
        author: info.author,
        message: info.message,
        commit_time: jiff::Timestamp::from_second(info.time).unwrap_or_default(),
        build_time,
        build_duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        size: packaged.size,
        sha256: packaged.sha256,
        signature: None,
    };
    if let Some(signer) = &job.signer {
        signer.sign(&mut meta);
    }
    Ok((meta, temp))
}

/// Where the project's build logs go; exposed for messages.
pub fn logs_dir(project_root: &Path) -> PathBuf {
    project_root.join(".convoy/logs")
}

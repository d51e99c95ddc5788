//! The host target: a new version is unpacked beside the live one and prepared, `live` is swung
//! atomically to it, and swung back when the health command fails after the switch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::artifacts::{ArtifactStore, ArtifactTrust, unpack_with};
use crate::config::service::{Health, Hooks};
use crate::execute::{Clock, Target, TargetError};
use crate::plan::{Action, ServiceState, Step};
use crate::targets::host::commands::{CommandEnv, run_in, unhealthy};
use crate::targets::host::error::HostError;
use crate::targets::host::history::{HistoryLine, append_history};
use crate::targets::host::layout::HostLayout;
use crate::targets::host::write::{is_file_in, write_in};

/// What the host needs to know about one revision of a service to run it.
#[derive(Debug, Clone, Default)]
pub struct HostService {
    pub service: String,
    /// The artifact version the revision runs.
    pub artifact: String,
    pub hooks: Hooks,
    pub health: Option<Health>,
    /// Written to `convoy-values.json` in each version directory (secrets masked).
    pub values: serde_json::Value,
    /// Given to hooks and health commands; secrets travel only this way, never to disk.
    pub env: CommandEnv,
}

pub struct HostTarget {
    pub layout: HostLayout,
    pub environment: String,
    /// By revision id (a directory under `versions/`).
    pub services: BTreeMap<String, HostService>,
    /// Where versions are fetched from; `None` for actions that never fetch (rollback, gc).
    pub store: Option<Arc<dyn ArtifactStore>>,
    pub clock: Arc<dyn Clock>,
    /// Versions kept on disk per service (the live one included), for instant rollbacks.
    pub keep: usize,
    pub release: Option<u64>,
    /// Checked on every fetched artifact before it is unpacked: signature, pinned sha256, limits.
    pub trust: ArtifactTrust,
}

const HOOK_BUDGET: Duration = Duration::from_secs(300);
/// Written into a version's directory when its `prepare` hook succeeded: only then is it warm.
pub(crate) const PREPARED: &str = ".convoy-prepared";
/// Touched when a version stops or starts serving: pruning keeps the most recently live ones.
pub(crate) const LAST_LIVE: &str = ".convoy-last-live";
/// The service's values (secrets masked), for its own processes to read.
pub(crate) const VALUES_FILE: &str = "convoy-values.json";

impl HostTarget {
    /// The revision `revision` of `service`; for one nothing was given of (an old revision),
    /// the hooks and checks of another revision of the service, and its id as the artifact.
    fn service(&self, name: &str, revision: &str) -> HostService {
        match self.services.get(revision) {
            Some(found) => found.clone(),
            None => HostService {
                artifact: revision.to_string(),
                ..self.any_of(name)
            },
        }
    }

    fn any_of(&self, name: &str) -> HostService {
        let found = self.services.values().find(|s| s.service == name);
        found.cloned().unwrap_or_default()
    }

    fn io(service: &str, action: &'static str, path: &Path, source: std::io::Error) -> TargetError {
        TargetError::Io {
            service: service.to_string(),
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(super) fn env_for(&self, service: &str, version: &str) -> CommandEnv {
        let mut env = self.service(service, version).env;
        env.vars.push(("CONVOY_SERVICE".into(), service.into()));
        let artifact = self.service(service, version).artifact;
        env.vars.push(("CONVOY_VERSION".into(), artifact));
        env.vars.push(("CONVOY_REVISION".into(), version.into()));
        env.vars
            .push(("CONVOY_ENVIRONMENT".into(), self.environment.clone()));
        // Absolute: commands run in a version directory, not where Convoy was started.
        let flags = self.layout.flags_file();
        let flags = std::path::absolute(&flags).unwrap_or(flags);
        let flags = flags.display().to_string();
        env.vars.push(("CONVOY_FLAGS_FILE".into(), flags));
        env
    }

    async fn health(&self, service: &str, version: &str, dir: &Path) -> Result<(), TargetError> {
        let Some(health) = self.service(service, version).health else {
            return Ok(());
        };
        let Some(command) = health.command else {
            return Ok(());
        };
        let env = self.env_for(service, version);
        run_in(
            service,
            "health command",
            &command,
            dir,
            &env,
            health.timeout.0,
        )
        .await
        .map_err(|detail| unhealthy(service, version, detail))
    }

    async fn hook(
        &self,
        service: &str,
        version: &str,
        which: &str,
        command: Option<String>,
        dir: &Path,
    ) -> Result<(), TargetError> {
        let Some(command) = command else {
            return Ok(());
        };
        let env = self.env_for(service, version);
        run_in(service, which, &command, dir, &env, HOOK_BUDGET)
            .await
            .map_err(|detail| {
                let error = HostError::Hook {
                    which: which.to_string(),
                    detail,
                };
                TargetError::failed(service, &format!("{which} hook of {version}"), error)
            })
    }

    /// Unpacks revision `version` under a dot-name and renames it into place, so a killed unpack
    /// never looks like a complete version. Another revision of the same artifact on disk is
    /// reused through hard links (a configuration-only change fetches nothing); its own values
    /// are written fresh.
    async fn unpack_version(&self, service: &str, version: &str) -> Result<PathBuf, TargetError> {
        let dir = self.layout.version_dir(service, version);
        if dir.is_dir() {
            return Ok(dir);
        }
        let versions = self.layout.versions_dir(service);
        let partial = versions.join(format!(".{version}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        let artifact = self.service(service, version).artifact;
        let sibling = self.unpacked_sibling(service, version, &artifact);
        let linked = sibling.is_some_and(|from| link_tree(&from, &partial).is_ok());
        if !linked {
            let _ = std::fs::remove_dir_all(&partial);
            std::fs::create_dir_all(&partial)
                .map_err(|e| Self::io(service, "create", &partial, e))?;
            self.fetch_and_unpack(service, &artifact, &partial).await?;
        }
        let values = serde_json::to_vec_pretty(&self.service(service, version).values);
        let values = values.unwrap_or_default();
        let values_file = partial.join(VALUES_FILE);
        write_in(&partial, VALUES_FILE, &values)
            .map_err(|e| Self::io(service, "write", &values_file, e))?;
        std::fs::rename(&partial, &dir).map_err(|e| Self::io(service, "rename", &dir, e))?;
        Ok(dir)
    }

    /// A complete directory of another revision of `artifact`, to link instead of fetching.
    fn unpacked_sibling(&self, service: &str, revision: &str, artifact: &str) -> Option<PathBuf> {
        self.layout
            .versions(service)
            .into_iter()
            .filter(|other| other != revision)
            .filter(|other| other == artifact || other.starts_with(&format!("{artifact}-")))
            .map(|other| self.layout.version_dir(service, &other))
            .find(|dir| dir.is_dir())
    }

    /// Fetches `artifact` and unpacks it into `into`.
    async fn fetch_and_unpack(
        &self,
        service: &str,
        artifact: &str,
        into: &Path,
    ) -> Result<(), TargetError> {
        let version = artifact;
        let partial = into.to_path_buf();
        let versions = self.layout.versions_dir(service);
        let tarball = versions.join(format!(".{version}.tar.gz"));
        let fetch = format!("fetch of {version}");
        let store = self.store.as_ref().ok_or_else(|| {
            let version = version.to_string();
            TargetError::failed(service, &fetch, HostError::NoStore { version })
        })?;
        let fetched = store.fetch(service, version, &tarball).await;
        let checked =
            fetched.and_then(|meta| self.trust.check((service, version), &meta, &tarball));
        checked.map_err(|source| {
            let _ = std::fs::remove_file(&tarball);
            let version = version.to_string();
            TargetError::failed(service, &fetch, HostError::Fetch { version, source })
        })?;
        // Unpacking is blocking file I/O: off the executor's task, so other steps keep moving.
        let (from, into, limits) = (tarball.clone(), partial.clone(), self.trust.limits);
        let unpacked = tokio::task::spawn_blocking(move || unpack_with(&from, &into, &limits))
            .await
            .map_err(|error| error.to_string())
            .and_then(|result| result.map_err(|error| crate::diagnostic::chain(&error)));
        unpacked.map_err(|detail| {
            // What a refused archive left is not a version: gone, so nothing can run it.
            let _ = std::fs::remove_dir_all(&partial);
            let _ = std::fs::remove_file(&tarball);
            let error = HostError::Unpack {
                version: version.to_string(),
                detail,
            };
            TargetError::failed(service, &format!("unpack of {version}"), error)
        })?;
        let _ = std::fs::remove_file(&tarball);
        Ok(())
    }

    async fn provision(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let dir = self.unpack_version(service, version).await?;
        let marker = dir.join(PREPARED);
        if !is_file_in(&dir, PREPARED) {
            self.hook(
                service,
                version,
                "prepare",
                self.service(service, version).hooks.prepare,
                &dir,
            )
            .await?;
            write_in(&dir, PREPARED, b"").map_err(|e| Self::io(service, "write", &marker, e))?;
        }
        self.health(service, version, &dir).await
    }

    /// Points `live` at `version` (or removes it) with a rename, which is atomic.
    fn point_live(&self, service: &str, version: Option<&str>) -> Result<(), TargetError> {
        let live = self.layout.live_link(service);
        match version {
            None => match std::fs::remove_file(&live) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Self::io(service, "remove", &live, e))
                }
                _ => Ok(()),
            },
            Some(version) => {
                let next = live.with_file_name(format!(".live.{}", std::process::id()));
                let _ = std::fs::remove_file(&next);
                std::os::unix::fs::symlink(Path::new("versions").join(version), &next)
                    .map_err(|e| Self::io(service, "link", &next, e))?;
                std::fs::rename(&next, &live).map_err(|e| Self::io(service, "swing", &live, e))
            }
        }
    }

    /// Swings `live` to `to`, then runs its `deployed` hook and health command. Always both, even
    /// when `live` already points there: a resumed or repeated switch must not skip a hook that
    /// never finished. On failure, `live` goes back and the previous version's `deployed` hook
    /// runs again, so a hook that restarts the service brings the old code back too.
    async fn switch(&self, service: &str, to: &str) -> Result<(), TargetError> {
        let previous = self.layout.live(service).filter(|p| p != to);
        self.point_live(service, Some(to))?;
        let live = self.layout.live_link(service);
        let deployed = self.service(service, to).hooks.deployed;
        let checked = async {
            self.hook(service, to, "deployed", deployed.clone(), &live)
                .await?;
            self.health(service, to, &live).await
        };
        if let Err(error) = checked.await {
            self.point_live(service, previous.as_deref())?;
            if let Some(previous) = previous.as_deref() {
                // Best effort: the failure to report is the new version's.
                let _ = self
                    .hook(service, previous, "deployed", deployed, &live)
                    .await;
            }
            self.history(service, previous.as_deref(), Some(to), "switch-failed");
            return Err(error);
        }
        self.mark_live(service, to);
        if let Some(previous) = previous.as_deref() {
            self.mark_live(service, previous); // it served until now
        }
        self.history(service, previous.as_deref(), Some(to), "switch");
        Ok(())
    }

    /// Records that `version` served until now: pruning keeps the most recently live versions.
    fn mark_live(&self, service: &str, version: &str) {
        let dir = self.layout.version_dir(service, version);
        let _ = write_in(&dir, LAST_LIVE, self.clock.now().to_string().as_bytes());
    }

    fn history(&self, service: &str, from: Option<&str>, to: Option<&str>, action: &str) {
        let line = HistoryLine {
            at: self.clock.now(),
            action: action.to_string(),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            release: self.release,
        };
        // History is for people; a failure to append it must not fail a deploy.
        let _ = append_history(&self.layout.root.join(service).join("history.jsonl"), &line);
    }

    /// Keeps the live version and the `keep - 1` most recently live others (by their
    /// last-live marker, else their unpack time); deletes the rest.
    async fn prune(&self, service: &str) -> Result<(), TargetError> {
        let others = self.layout.by_last_live(service);
        let excess = others.len().saturating_sub(self.keep.saturating_sub(1));
        for version in others.into_iter().take(excess) {
            self.delete(service, &version).await?;
        }
        Ok(())
    }

    /// Renames the version out of the way first (atomic), so a kill mid-delete never leaves a
    /// half-deleted directory that looks like a version; then removes it off the executor's task.
    async fn delete(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let dir = self.layout.version_dir(service, version);
        let doomed = self
            .layout
            .versions_dir(service)
            .join(format!(".{version}.deleting"));
        for leftover in [format!(".{version}.partial"), format!(".{version}.tar.gz")] {
            let path = self.layout.versions_dir(service).join(leftover);
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
        match std::fs::rename(&dir, &doomed) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Self::io(service, "delete", &dir, e)),
            Ok(()) => {}
        }
        let removing = doomed.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&removing)).await;
        match removed {
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Self::io(service, "delete", &doomed, e))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Target for HostTarget {
    fn weighted_traffic(&self) -> bool {
        false // one `live` link: a version takes all of a host's traffic or none
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetError> {
        Ok(self.layout.observe(services))
    }

    async fn apply(&self, step: &Step) -> Result<(), TargetError> {
        let service = step.service.as_str();
        match &step.action {
            Action::Provision { version } => self.provision(service, version).await,
            Action::Switch { to, .. } => self.switch(service, to).await,
            Action::Retire { .. } => self.prune(service).await,
            Action::Task {
                task,
                version,
                command,
                ..
            } => {
                self.task(service, version, task, command, step.timeout.0)
                    .await
            }
            Action::Remove { version } => {
                if self.layout.live(service).as_deref() == Some(version) {
                    self.point_live(service, None)?;
                    self.history(service, Some(version), None, "remove");
                }
                self.delete(service, version).await
            }
        }
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        self.health(service, version, &self.layout.version_dir(service, version))
            .await
    }
}

/// Copies the tree `from` into `to` as hard links (directories made, links recreated), leaving
/// out what belongs to one revision only: its values and its markers.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if [PREPARED, LAST_LIVE, VALUES_FILE]
            .iter()
            .any(|own| name == *own)
        {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            link_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else {
            std::fs::hard_link(&source, &target)?;
        }
    }
    Ok(())
}

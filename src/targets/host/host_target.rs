//! The host target: a new version is unpacked beside the live one and prepared, `live` is swung
//! atomically to it, and swung back when the health command fails after the switch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::artifacts::{ArtifactStore, unpack};
use crate::config::service::{Health, Hooks};
use crate::execute::{Clock, Target, TargetError};
use crate::plan::{Action, ServiceState, Step};
use crate::targets::host::commands::{CommandEnv, run_in, unhealthy};
use crate::targets::host::history::{HistoryLine, append_history};
use crate::targets::host::layout::HostLayout;

/// What the host needs to know about one service to run it.
#[derive(Debug, Clone, Default)]
pub struct HostService {
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
    pub services: BTreeMap<String, HostService>,
    /// Where versions are fetched from; `None` for actions that never fetch (rollback, gc).
    pub store: Option<Arc<dyn ArtifactStore>>,
    pub clock: Arc<dyn Clock>,
    /// Versions kept on disk per service (the live one included), for instant rollbacks.
    pub keep: usize,
    pub release: Option<u64>,
}

const HOOK_BUDGET: Duration = Duration::from_secs(300);

impl HostTarget {
    fn service(&self, name: &str) -> HostService {
        self.services.get(name).cloned().unwrap_or_default()
    }

    fn io(service: &str, action: &'static str, path: &Path, source: std::io::Error) -> TargetError {
        TargetError::Io {
            service: service.to_string(),
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn env_for(&self, service: &str, version: &str) -> CommandEnv {
        let mut env = self.service(service).env;
        env.vars.push(("CONVOY_SERVICE".into(), service.into()));
        env.vars.push(("CONVOY_VERSION".into(), version.into()));
        env.vars
            .push(("CONVOY_ENVIRONMENT".into(), self.environment.clone()));
        env
    }

    async fn health(&self, service: &str, version: &str, dir: &Path) -> Result<(), TargetError> {
        let Some(health) = self.service(service).health else {
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
            .map_err(|detail| TargetError::Action {
                service: service.to_string(),
                action: format!("{which} hook of {version}"),
                detail,
            })
    }

    /// Unpacks `version` under a dot-name and renames it into place, so a killed unpack never
    /// looks like a complete version.
    async fn unpack_version(&self, service: &str, version: &str) -> Result<PathBuf, TargetError> {
        let dir = self.layout.version_dir(service, version);
        if dir.is_dir() {
            return Ok(dir);
        }
        let versions = self.layout.versions_dir(service);
        let partial = versions.join(format!(".{version}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| Self::io(service, "create", &partial, e))?;
        let tarball = versions.join(format!(".{version}.tar.gz"));
        let store = self.store.as_ref().ok_or_else(|| TargetError::Action {
            service: service.to_string(),
            action: format!("fetch of {version}"),
            detail: "it is not on disk and no artifact store was given".to_string(),
        })?;
        store
            .fetch(service, version, &tarball)
            .await
            .map_err(|error| TargetError::Action {
                service: service.to_string(),
                action: format!("fetch of {version}"),
                detail: error.to_string(),
            })?;
        // Unpacking is blocking file I/O: off the executor's task, so other steps keep moving.
        let (from, into) = (tarball.clone(), partial.clone());
        let unpacked = tokio::task::spawn_blocking(move || unpack(&from, &into))
            .await
            .map_err(|error| error.to_string())
            .and_then(|result| result.map_err(|error| error.to_string()));
        unpacked.map_err(|detail| TargetError::Action {
            service: service.to_string(),
            action: format!("unpack of {version}"),
            detail,
        })?;
        let _ = std::fs::remove_file(&tarball);
        let values = serde_json::to_vec_pretty(&self.service(service).values).unwrap_or_default();
        let values_file = partial.join("convoy-values.json");
        std::fs::write(&values_file, values)
            .map_err(|e| Self::io(service, "write", &values_file, e))?;
        std::fs::rename(&partial, &dir).map_err(|e| Self::io(service, "rename", &dir, e))?;
        Ok(dir)
    }

    async fn provision(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let dir = self.unpack_version(service, version).await?;
        let marker = dir.join(".convoy-prepared");
        if !marker.exists() {
            self.hook(
                service,
                version,
                "prepare",
                self.service(service).hooks.prepare,
                &dir,
            )
            .await?;
            std::fs::write(&marker, b"").map_err(|e| Self::io(service, "write", &marker, e))?;
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

    async fn switch(&self, service: &str, to: &str) -> Result<(), TargetError> {
        let previous = self.layout.live(service);
        if previous.as_deref() == Some(to) {
            return self
                .health(service, to, &self.layout.live_link(service))
                .await;
        }
        self.point_live(service, Some(to))?;
        let live = self.layout.live_link(service);
        let checked = async {
            self.hook(
                service,
                to,
                "deployed",
                self.service(service).hooks.deployed,
                &live,
            )
            .await?;
            self.health(service, to, &live).await
        };
        if let Err(error) = checked.await {
            self.point_live(service, previous.as_deref())?;
            self.history(service, previous.as_deref(), Some(to), "switch-failed");
            return Err(error);
        }
        self.history(service, previous.as_deref(), Some(to), "switch");
        Ok(())
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

    /// Keeps the newest `keep` versions (by unpack time) and the live one; deletes the rest.
    fn prune(&self, service: &str) -> Result<(), TargetError> {
        let live = self.layout.live(service);
        let mut versions: Vec<(std::time::SystemTime, String)> = self
            .layout
            .versions(service)
            .into_iter()
            .filter(|v| Some(v) != live.as_ref())
            .map(|v| {
                let modified = std::fs::metadata(self.layout.version_dir(service, &v))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, v)
            })
            .collect();
        versions.sort();
        let keep_others = self.keep.saturating_sub(1);
        let excess = versions.len().saturating_sub(keep_others);
        for (_, version) in versions.into_iter().take(excess) {
            self.delete(service, &version)?;
        }
        Ok(())
    }

    fn delete(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let dir = self.layout.version_dir(service, version);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Self::io(service, "delete", &dir, e))
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
            Action::Retire { .. } => self.prune(service),
            Action::Remove { version } => {
                if self.layout.live(service).as_deref() == Some(version) {
                    self.point_live(service, None)?;
                    self.history(service, Some(version), None, "remove");
                }
                self.delete(service, version)
            }
        }
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        self.health(service, version, &self.layout.version_dir(service, version))
            .await
    }
}

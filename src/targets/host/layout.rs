//! Where things live under a host root: `<root>/<service>/versions/<v>` and `<root>/<service>/live`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::ServiceState;

#[derive(Debug, Clone)]
pub struct HostLayout {
    pub root: PathBuf,
}

impl HostLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostLayout { root: root.into() }
    }

    /// The environment's flags, as services read them (`CONVOY_FLAGS_FILE`).
    pub fn flags_file(&self) -> PathBuf {
        self.root.join("flags.json")
    }

    pub fn versions_dir(&self, service: &str) -> PathBuf {
        self.root.join(service).join("versions")
    }

    pub fn version_dir(&self, service: &str, version: &str) -> PathBuf {
        self.versions_dir(service).join(version)
    }

    pub fn live_link(&self, service: &str) -> PathBuf {
        self.root.join(service).join("live")
    }

    /// The version `live` points at, if any.
    pub fn live(&self, service: &str) -> Option<String> {
        let target = std::fs::read_link(self.live_link(service)).ok()?;
        target.file_name()?.to_str().map(str::to_string)
    }

    /// Versions unpacked on disk (complete ones only: unpacking happens under a dot-name).
    pub fn versions(&self, service: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.versions_dir(service)) else {
            return Vec::new();
        };
        let mut versions: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|name| !name.starts_with('.'))
            .collect();
        versions.sort();
        versions
    }

    /// Versions on disk other than the live one, least recently live first (by the last-live
    /// marker a switch writes, else by unpack time).
    pub fn by_last_live(&self, service: &str) -> Vec<String> {
        let live = self.live(service);
        let mut versions: Vec<(std::time::SystemTime, String)> = self
            .versions(service)
            .into_iter()
            .filter(|v| Some(v) != live.as_ref())
            .map(|v| {
                let dir = self.version_dir(service, &v);
                // Not through a link: a marker is a file Convoy wrote (see `write`).
                let time = std::fs::symlink_metadata(dir.join(super::host_target::LAST_LIVE))
                    .ok()
                    .filter(|m| m.file_type().is_file())
                    .ok_or(())
                    .or_else(|()| std::fs::metadata(&dir).map_err(|_| ()))
                    .and_then(|m| m.modified().map_err(|_| ()))
                    .unwrap_or(std::time::UNIX_EPOCH);
                (time, v)
            })
            .collect();
        versions.sort();
        versions.into_iter().map(|(_, v)| v).collect()
    }

    /// What runs now: a prepared version on disk is warm (a rollback to it is one symlink swing);
    /// one whose `prepare` never finished is not, and is provisioned again.
    /// Each version directory's size on disk (files hard-linked from another revision count
    /// once per directory), by service and version.
    pub fn sizes(&self, services: &[String]) -> BTreeMap<String, BTreeMap<String, String>> {
        let size = |dir: &std::path::Path| -> u64 {
            let mut total = 0;
            let mut stack = vec![dir.to_path_buf()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    match entry.metadata() {
                        Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                        Ok(meta) if meta.is_file() => total += meta.len(),
                        _ => {}
                    }
                }
            }
            total
        };
        services
            .iter()
            .map(|service| {
                let versions = self.versions(service).into_iter().map(|v| {
                    let bytes = size(&self.version_dir(service, &v));
                    (v, format!("{:.1} MB", bytes as f64 / 1_000_000.0))
                });
                (service.clone(), versions.collect())
            })
            .collect()
    }

    pub fn observe(&self, services: &[String]) -> BTreeMap<String, ServiceState> {
        services
            .iter()
            .map(|service| {
                let warm = self
                    .versions(service)
                    .into_iter()
                    .filter(|v| {
                        super::write::is_file_in(
                            &self.version_dir(service, v),
                            super::host_target::PREPARED,
                        )
                    })
                    .collect();
                let state = ServiceState {
                    live: self.live(service),
                    warm,
                };
                (service.clone(), state)
            })
            .filter(|(_, state)| state.live.is_some() || !state.warm.is_empty())
            .collect()
    }
}

/// Resolves a host target's `root` against the project root.
pub fn resolve_root(project_root: &Path, root: &str) -> PathBuf {
    let root = Path::new(root);
    if root.is_absolute() {
        root.to_path_buf()
    } else {
        project_root.join(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observes_the_live_link_and_the_versions_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let layout = HostLayout::new(dir.path());
        for version in ["a1", "a2", "a4", ".a3.partial"] {
            std::fs::create_dir_all(layout.version_dir("api", version)).unwrap();
        }
        for prepared in ["a1", "a2"] {
            std::fs::write(
                layout.version_dir("api", prepared).join(".convoy-prepared"),
                "",
            )
            .unwrap();
        }
        std::os::unix::fs::symlink("versions/a2", layout.live_link("api")).unwrap();
        let observed = layout.observe(&["api".to_string(), "web".to_string()]);
        assert_eq!(
            observed.len(),
            1,
            "a service with nothing on disk is not observed"
        );
        assert_eq!(observed["api"].live.as_deref(), Some("a2"));
        // a4 was unpacked but never prepared: not warm.
        assert_eq!(observed["api"].warm, vec!["a1", "a2"]);
    }
}

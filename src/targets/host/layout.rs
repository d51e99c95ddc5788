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

    /// What runs now: a host version on disk is warm (a rollback to it is one symlink swing).
    pub fn observe(&self, services: &[String]) -> BTreeMap<String, ServiceState> {
        services
            .iter()
            .map(|service| {
                let state = ServiceState {
                    live: self.live(service),
                    warm: self.versions(service),
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
        for version in ["a1", "a2", ".a3.partial"] {
            std::fs::create_dir_all(layout.version_dir("api", version)).unwrap();
        }
        std::os::unix::fs::symlink("versions/a2", layout.live_link("api")).unwrap();
        let observed = layout.observe(&["api".to_string(), "web".to_string()]);
        assert_eq!(
            observed.len(),
            1,
            "a service with nothing on disk is not observed"
        );
        assert_eq!(observed["api"].live.as_deref(), Some("a2"));
        assert_eq!(observed["api"].warm, vec!["a1", "a2"]);
    }
}

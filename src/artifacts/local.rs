//! The local-directory store: `file://DIR`. Atomic by write-to-temp-then-rename in the same
//! directory, and meta.json created only if absent.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::error::{ArtifactError, io};
use super::meta::{ArtifactMeta, verify};
use super::{ArtifactStore, Published};

pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: PathBuf) -> Self {
        LocalStore { dir }
    }

    fn version_dir(&self, service: &str, version: &str) -> PathBuf {
        self.dir.join(service).join(version)
    }

    fn read_meta(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<ArtifactMeta>, ArtifactError> {
        let path = self.version_dir(service, version).join("meta.json");
        match std::fs::read(&path) {
            Ok(bytes) => ArtifactMeta::from_json(&bytes, &path.display().to_string()).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io("read", &path)(source)),
        }
    }

    fn publish_blocking(
        &self,
        meta: &ArtifactMeta,
        tarball: &Path,
        log: Option<&Path>,
    ) -> Result<Published, ArtifactError> {
        if let Some(existing) = self.read_meta(&meta.service, &meta.version)? {
            return Published::already_present(existing, meta);
        }
        let dir = self.version_dir(&meta.service, &meta.version);
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        copy_atomically(tarball, &dir.join(meta.tarball_name()))?;
        if let Some(log) = log {
            copy_atomically(log, &dir.join("build.log"))?;
        }
        let mut temp =
            tempfile::NamedTempFile::new_in(&dir).map_err(io("create a file in", &dir))?;
        std::io::Write::write_all(&mut temp, &meta.to_json()).map_err(io("write", temp.path()))?;
        temp.as_file()
            .sync_all()
            .map_err(io("write", temp.path()))?;
        let target = dir.join("meta.json");
        // persist_noclobber: of two concurrent publishers exactly one creates meta.json.
        match temp.persist_noclobber(&target) {
            Ok(_) => Ok(Published::Stored(meta.clone())),
            Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
                let Some(existing) = self.read_meta(&meta.service, &meta.version)? else {
                    return Err(ArtifactError::Vanished {
                        service: meta.service.clone(),
                        version: meta.version.clone(),
                        store: self.dir.display().to_string(),
                    });
                };
                if existing.sha256 != meta.sha256 {
                    // Our tarball is not referenced by anything; don't leave it behind.
                    let _ = std::fs::remove_file(dir.join(meta.tarball_name()));
                }
                Published::already_present(existing, meta)
            }
            Err(error) => Err(io("write", &target)(error.error)),
        }
    }

    fn list_blocking(&self, service: Option<&str>) -> Result<Vec<ArtifactMeta>, ArtifactError> {
        let services = match service {
            Some(service) => vec![service.to_string()],
            None => sub_dirs(&self.dir)?,
        };
        let mut list = Vec::new();
        for service in services {
            for version in sub_dirs(&self.dir.join(&service))? {
                if let Some(meta) = self.read_meta(&service, &version)? {
                    list.push(meta);
                }
            }
        }
        super::sort(&mut list);
        Ok(list)
    }
}

/// Directory names under `dir`, sorted; none when `dir` does not exist.
fn sub_dirs(dir: &Path) -> Result<Vec<String>, ArtifactError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io("list", dir)(source)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("list", dir))?;
        if entry.file_type().map_err(io("list", dir))?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Copies `from` to a temporary file beside `to`, syncs it, then renames it over `to`.
fn copy_atomically(from: &Path, to: &Path) -> Result<(), ArtifactError> {
    let dir = to.parent().expect("target has a directory");
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a file in", dir))?;
    let mut source = std::fs::File::open(from).map_err(io("read", from))?;
    std::io::copy(&mut source, temp.as_file_mut()).map_err(io("write", temp.path()))?;
    temp.as_file()
        .sync_all()
        .map_err(io("write", temp.path()))?;
    temp.persist(to)
        .map_err(|error| io("write", to)(error.error))?;
    Ok(())
}

#[async_trait]
impl ArtifactStore for LocalStore {
    async fn meta(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<ArtifactMeta>, ArtifactError> {
        self.read_meta(service, version)
    }

    async fn fetch(
        &self,
        service: &str,
        version: &str,
        dest_file: &Path,
    ) -> Result<ArtifactMeta, ArtifactError> {
        let meta = self
            .read_meta(service, version)?
            .ok_or_else(|| ArtifactError::NotFound {
                service: service.to_string(),
                version: version.to_string(),
                store: self.describe(),
            })?;
        let source = self.version_dir(service, version).join(meta.tarball_name());
        verify(&source, &meta, &source.display().to_string())?;
        copy_atomically(&source, dest_file)?;
        // Checked again on our copy: the bytes handed over are the bytes verified.
        verify(dest_file, &meta, &source.display().to_string())?;
        Ok(meta)
    }

    async fn publish(
        &self,
        meta: &ArtifactMeta,
        tarball: &Path,
        log: Option<&Path>,
    ) -> Result<Published, ArtifactError> {
        self.publish_blocking(meta, tarball, log)
    }

    async fn list(&self, service: Option<&str>) -> Result<Vec<ArtifactMeta>, ArtifactError> {
        self.list_blocking(service)
    }

    async fn delete(&self, service: &str, version: &str) -> Result<(), ArtifactError> {
        let dir = self.version_dir(service, version);
        let meta = dir.join("meta.json");
        match std::fs::remove_file(&meta) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(io("delete", &meta)(source)),
        }
        std::fs::remove_dir_all(&dir).map_err(io("delete", &dir))
    }

    fn describe(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}

//! Extraction of an artifact that cannot escape its destination, whatever the archive holds.
//!
//! - Every write goes through a directory handle on the destination (`cap-std`, `openat`
//!   semantics): no path the archive names can reach outside it, links or not.
//! - Files are created with `O_CREAT | O_EXCL`, which never follows a symlink, under parents the
//!   archive made as real directories; duplicate entries and entries under a file or a link are
//!   refused, so nothing is ever written through a link.
//! - Symlinks are created last, once every one of them has been resolved against the tree the
//!   archive builds (through other links, `.` and `..`) and found to stay inside.
//! - Only files, directories and symlinks: hard links, devices, pipes, sparse files and pax
//!   headers are refused; modes keep their permission bits only (no setuid, setgid or sticky).
//! - Sizes, entry counts and name lengths are bounded ([`UnpackLimits`]) before anything is read.
//! - Names Convoy itself writes into a version directory (`.convoy*`, `convoy-values.json`)
//!   cannot come from an artifact: a shipped `.convoy-prepared` would skip the `prepare` hook.

#[cfg(test)]
mod tests;
mod tree;

use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions, Permissions, PermissionsExt};

use super::error::{ArtifactError, io};
use super::limits::{MAX_NAME_BYTES, UnpackLimits};
use tree::{Node, Tree};

/// Extracts `tar_gz` into `dest_dir` with the default [`UnpackLimits`].
pub fn unpack(tar_gz: &Path, dest_dir: &Path) -> Result<(), ArtifactError> {
    unpack_with(tar_gz, dest_dir, &UnpackLimits::default())
}

/// Extracts `tar_gz` into `dest_dir` (created if missing; meant to be new and empty), keeping
/// permission bits and symlinks, refusing anything that could leave `dest_dir` or exceed
/// `limits`. On an error, `dest_dir` may hold part of the archive: the caller removes it.
pub fn unpack_with(
    tar_gz: &Path,
    dest_dir: &Path,
    limits: &UnpackLimits,
) -> Result<(), ArtifactError> {
    let file = std::fs::File::open(tar_gz).map_err(io("read", tar_gz))?;
    std::fs::create_dir_all(dest_dir).map_err(io("create", dest_dir))?;
    let dir = Dir::open_ambient_dir(dest_dir, cap_std::ambient_authority())
        .map_err(io("open", dest_dir))?;
    let _writing = crate::spawn::writing();
    let mut unpacker = Unpacker {
        archive: tar_gz,
        dest: dest_dir,
        dir,
        limits,
        tree: Tree::default(),
        entries: 0,
        bytes: 0,
        index: 0,
    };
    unpacker.run(flate2::read::GzDecoder::new(file))
}

/// Whether an artifact may ship `name` at its root: not the names Convoy writes there itself.
pub fn reserved(name: &str) -> bool {
    name.starts_with(".convoy") || name == "convoy-values.json"
}

struct Unpacker<'a> {
    archive: &'a Path,
    dest: &'a Path,
    dir: Dir,
    limits: &'a UnpackLimits,
    tree: Tree,
    entries: u64,
    bytes: u64,
    /// The raw entry being read, for errors that have no name to show yet.
    index: usize,
}

impl Unpacker<'_> {
    fn run(&mut self, reader: impl Read) -> Result<(), ArtifactError> {
        let mut archive = tar::Archive::new(reader);
        // Raw: GNU long names are read here, bounded, instead of whole into memory by `tar`.
        let entries = archive.entries().map_err(|e| self.malformed(e))?.raw(true);
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        for (index, entry) in entries.enumerate() {
            self.index = index;
            let mut entry = entry.map_err(|e| self.malformed(e))?;
            let kind = entry.header().entry_type();
            if kind.is_gnu_longname() {
                long_name = Some(self.long_name(&mut entry)?);
                continue;
            }
            if kind.is_gnu_longlink() {
                long_link = Some(self.long_name(&mut entry)?);
                continue;
            }
            let name = long_name
                .take()
                .unwrap_or_else(|| entry.header().path_bytes().into_owned());
            let shown = String::from_utf8_lossy(&name).into_owned();
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(self.too_large(
                    "max_entries",
                    format!("more than {} entries", self.limits.max_entries),
                ));
            }
            let path = entry_path(&name).map_err(|reason| self.unsafe_entry(&shown, reason))?;
            let link = long_link.take();
            self.entry(&mut entry, kind, &path, link, &shown)?;
        }
        self.finish_links()
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        path: &Path,
        long_link: Option<Vec<u8>>,
        shown: &str,
    ) -> Result<(), ArtifactError> {
        let refuse = |reason: &str| self.unsafe_entry(shown, reason.to_string());
        let is_root = path.as_os_str().is_empty();
        if let Some(first) = path.components().next()
            && reserved(&first.as_os_str().to_string_lossy())
            && path.components().count() == 1
        {
            return Err(refuse(
                "Convoy writes that name into a version directory itself",
            ));
        }
        let kind_problem = match kind {
            tar::EntryType::Regular | tar::EntryType::Directory | tar::EntryType::Symlink => None,
            tar::EntryType::Link => Some("it is a hard link"),
            tar::EntryType::Char | tar::EntryType::Block => Some("it is a device file"),
            tar::EntryType::Fifo => Some("it is a named pipe"),
            tar::EntryType::GNUSparse => Some("it is a sparse file"),
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {
                Some("it is a pax header, which `convoy build` never writes")
            }
            _ => Some("it is not a file, directory or symlink"),
        };
        if let Some(reason) = kind_problem {
            return Err(refuse(reason));
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match kind {
            tar::EntryType::Directory if is_root => Ok(()),
            _ if is_root => Err(refuse("it names the artifact's root")),
            tar::EntryType::Directory => {
                self.tree
                    .add(path, Node::Dir)
                    .map_err(|r| self.unsafe_entry(shown, r))?;
                self.dir
                    .create_dir_all(path)
                    .and_then(|()| {
                        // The owner keeps rwx, or the version could never be deleted again.
                        self.dir
                            .set_permissions(path, Permissions::from_mode(mode | 0o700))
                    })
                    .map_err(|e| self.write_error(shown, e))
            }
            tar::EntryType::Symlink => {
                let target = match long_link {
                    Some(target) => target,
                    None => entry
                        .header()
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                };
                if target.is_empty() {
                    return Err(refuse("it is a symlink without a target"));
                }
                if target.contains(&0) {
                    return Err(refuse("its target contains a NUL byte"));
                }
                let target = PathBuf::from(<std::ffi::OsString as OsStringExt>::from_vec(target));
                self.tree
                    .add(path, Node::Link(target))
                    .map_err(|r| self.unsafe_entry(shown, r))
            }
            _ => self.file(entry, path, mode, shown),
        }
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        mode: u32,
        shown: &str,
    ) -> Result<(), ArtifactError> {
        let size = entry.header().entry_size().map_err(|e| self.malformed(e))?;
        let total = self.bytes.saturating_add(size);
        if total > self.limits.max_size {
            return Err(self.too_large(
                "max_size",
                format!(
                    "`{shown}` brings the files to {total} bytes, over {}",
                    self.limits.max_size
                ),
            ));
        }
        self.bytes = total;
        self.tree
            .add(path, Node::File)
            .map_err(|r| self.unsafe_entry(shown, r))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dir
                .create_dir_all(parent)
                .map_err(|e| self.write_error(shown, e))?;
        }
        // create_new is O_CREAT|O_EXCL: it fails on anything standing there, links included,
        // and never follows one.
        let mut file = self
            .dir
            .open_with(path, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| self.write_error(shown, e))?;
        let copied = std::io::copy(&mut entry.take(size), &mut file)
            .map_err(|e| self.write_error(shown, e))?;
        if copied != size {
            return Err(self.unsafe_entry(shown, "the archive ends inside it".to_string()));
        }
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| self.write_error(shown, e))
    }

    /// A GNU long name or long link target, bounded; without its trailing NUL.
    fn long_name<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Vec<u8>, ArtifactError> {
        let size = entry.header().entry_size().map_err(|e| self.malformed(e))?;
        if size > MAX_NAME_BYTES {
            let shown = format!("#{}", self.index);
            return Err(self.unsafe_entry(
                &shown,
                format!("it names a path of {size} bytes, over {MAX_NAME_BYTES}"),
            ));
        }
        let mut name = Vec::with_capacity(size as usize);
        entry
            .take(MAX_NAME_BYTES)
            .read_to_end(&mut name)
            .map_err(|e| self.malformed(e))?;
        while name.last() == Some(&0) {
            name.pop();
        }
        Ok(name)
    }

    /// Every link resolved against the whole tree, then created: none exists before all are
    /// known to stay inside.
    fn finish_links(&self) -> Result<(), ArtifactError> {
        for (link, target) in self.tree.links() {
            if let Some(reason) = self.tree.escape(link, target) {
                let shown = link.display().to_string();
                return Err(self.unsafe_entry(
                    &shown,
                    format!("a symlink to `{}`: {reason}", target.display()),
                ));
            }
        }
        for (link, target) in self.tree.links() {
            if let Some(parent) = link.parent().filter(|p| !p.as_os_str().is_empty()) {
                self.dir
                    .create_dir_all(parent)
                    .map_err(|e| self.write_error(&link.display().to_string(), e))?;
            }
            self.dir
                .symlink(target, link)
                .map_err(|e| self.write_error(&link.display().to_string(), e))?;
        }
        Ok(())
    }

    fn unsafe_entry(&self, entry: &str, reason: String) -> ArtifactError {
        ArtifactError::UnsafeEntry {
            archive: self.archive.to_path_buf(),
            entry: entry.to_string(),
            reason,
        }
    }

    fn too_large(&self, limit: &'static str, detail: String) -> ArtifactError {
        ArtifactError::TooLarge {
            archive: self.archive.to_path_buf(),
            limit,
            detail,
        }
    }

    fn malformed(&self, source: std::io::Error) -> ArtifactError {
        ArtifactError::Malformed {
            archive: self.archive.to_path_buf(),
            entry: self.index,
            source,
        }
    }

    fn write_error(&self, entry: &str, source: std::io::Error) -> ArtifactError {
        ArtifactError::Io {
            action: "extract into",
            path: self.dest.join(entry),
            source,
        }
    }
}

/// The entry's path relative to the destination, `.` parts dropped; empty for the root itself.
fn entry_path(name: &[u8]) -> Result<PathBuf, String> {
    if name.is_empty() {
        return Err("it has no name".to_string());
    }
    if name.contains(&0) {
        return Err("its name contains a NUL byte".to_string());
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut clean = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains `..`".to_string()),
            Component::RootDir | Component::Prefix(_) => return Err("it is absolute".to_string()),
        }
    }
    Ok(clean)
}

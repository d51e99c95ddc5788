//! The reproducible tarball: sorted entries, owner 0 with empty names, modes 0644/0755 by the
//! executable bit, directories 0755, symlinks kept, mtimes = commit time, and a gzip header
//! without timestamp or file name. The same tree always gives the same bytes.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{BuildError, io};

/// Size and sha256 of a written tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged {
    pub size: u64,
    pub sha256: String,
}

/// Refuses output paths that are absolute or climb with `..` (checked before anything runs).
pub fn check_outputs(service: &str, outputs: &[String]) -> Result<(), BuildError> {
    for output in outputs {
        let refuse = |reason| BuildError::BadOutput {
            service: service.to_string(),
            output: output.clone(),
            reason,
        };
        let path = Path::new(output);
        if output.is_empty() {
            return Err(refuse("it is empty"));
        }
        if path.is_absolute() {
            return Err(refuse("it is absolute"));
        }
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(refuse("it climbs out of the service's directory with `..`"));
        }
    }
    Ok(())
}

/// Packages `outputs` (relative to `service_dir`) into `dest`. A single directory output forms
/// the archive's root (`output: dist` puts `dist/bin/run` at `bin/run`); several outputs keep
/// their paths. No outputs packages the whole service directory.
pub fn package(
    service: &str,
    service_dir: &Path,
    outputs: &[String],
    mtime: u64,
    dest: &Path,
) -> Result<Packaged, BuildError> {
    check_outputs(service, outputs)?;
    let entries = collect(service, service_dir, outputs)?;
    let file = std::fs::File::create(dest).map_err(io("create", dest))?;
    let hashing = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        size: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(hashing, flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    for (name, path) in &entries {
        append(&mut builder, name, path, mtime).map_err(io("package", path))?;
    }
    let gz = builder.into_inner().map_err(io("write", dest))?;
    let mut hashing = gz.finish().map_err(io("write", dest))?;
    hashing.inner.flush().map_err(io("write", dest))?;
    Ok(Packaged {
        size: hashing.size,
        sha256: hex::encode(hashing.hasher.finalize()),
    })
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    path: &Path,
    mtime: u64,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::symlink_metadata(path)?;
    let mut header = tar::Header::new_gnu();
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("")?;
    header.set_groupname("")?;
    header.set_mtime(mtime);
    let kind = metadata.file_type();
    if kind.is_symlink() {
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder.append_link(&mut header, name, std::fs::read_link(path)?)
    } else if kind.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        builder.append_data(&mut header, format!("{name}/"), std::io::empty())
    } else {
        let executable = metadata.permissions().mode() & 0o111 != 0;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_size(metadata.len());
        builder.append_data(&mut header, name, std::fs::File::open(path)?)
    }
}

/// `(name in the archive, path on disk)`, sorted by name, without duplicates.
fn collect(
    service: &str,
    service_dir: &Path,
    outputs: &[String],
) -> Result<Vec<(String, PathBuf)>, BuildError> {
    let outputs: Vec<String> = if outputs.is_empty() {
        vec![".".to_string()]
    } else {
        outputs.to_vec()
    };
    let base = service_dir
        .canonicalize()
        .map_err(io("resolve", service_dir))?;
    let mut entries = Vec::new();
    for output in &outputs {
        let path = service_dir.join(output);
        let refuse = |reason| BuildError::BadOutput {
            service: service.to_string(),
            output: output.clone(),
            reason,
        };
        let resolved = path
            .canonicalize()
            .map_err(|_| refuse("it does not exist after the build"))?;
        if !resolved.starts_with(&base) {
            return Err(refuse(
                "it leads out of the service's directory through a symlink",
            ));
        }
        let single_dir = outputs.len() == 1 && resolved.is_dir();
        let name = normalize(output);
        if single_dir {
            walk(&path, "", &mut entries)?;
        } else if path.symlink_metadata().map_err(io("read", &path))?.is_dir() {
            entries.push((name.clone(), path.clone()));
            walk(&path, &name, &mut entries)?;
        } else {
            entries.push((name, path));
        }
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    entries.dedup_by(|a, b| a.0 == b.0);
    Ok(entries)
}

/// `./dist/` → `dist`.
fn normalize(output: &str) -> String {
    Path::new(output)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(dir: &Path, prefix: &str, entries: &mut Vec<(String, PathBuf)>) -> Result<(), BuildError> {
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let name = if prefix.is_empty() {
            file_name
        } else {
            format!("{prefix}/{file_name}")
        };
        let path = entry.path();
        let is_dir = entry.file_type().map_err(io("list", dir))?.is_dir();
        entries.push((name.clone(), path.clone()));
        if is_dir {
            walk(&path, &name, entries)?;
        }
    }
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.join("dist/bin")).unwrap();
        std::fs::write(dir.join("dist/VERSION"), "1\n").unwrap();
        std::fs::write(dir.join("dist/bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.join("dist/bin/run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink("bin/run", dir.join("dist/start")).unwrap();
    }

    #[test]
    fn same_tree_same_bytes_and_a_single_dir_is_the_root() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        tree(one.path());
        tree(two.path());
        let a = package(
            "api",
            one.path(),
            &["dist".into()],
            1_700_000_000,
            &one.path().join("a.tgz"),
        )
        .unwrap();
        let b = package(
            "api",
            two.path(),
            &["./dist/".into()],
            1_700_000_000,
            &two.path().join("b.tgz"),
        )
        .unwrap();
        assert_eq!(a, b);
        let out = one.path().join("out");
        crate::artifacts::unpack(&one.path().join("a.tgz"), &out).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(out.join("start")).unwrap(),
            Path::new("bin/run")
        );
        assert_eq!(std::fs::read_to_string(out.join("VERSION")).unwrap(), "1\n");
    }

    #[test]
    fn absolute_and_parent_outputs_are_refused() {
        for output in ["/etc", "../other", "dist/../../x"] {
            let error = check_outputs("api", &[output.to_string()]).unwrap_err();
            assert!(
                matches!(error, BuildError::BadOutput { .. }),
                "{output}: {error}"
            );
            assert!(error.to_string().contains(output), "{error}");
        }
    }

    #[test]
    fn a_missing_output_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = package(
            "api",
            dir.path(),
            &["dist".into()],
            0,
            &dir.path().join("a.tgz"),
        )
        .unwrap_err();
        assert!(error.to_string().contains("`dist`"), "{error}");
    }
}

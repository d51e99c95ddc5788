//! Safe extraction of an artifact: nothing lands outside the destination.

use std::path::{Component, Path, PathBuf};

use super::error::{ArtifactError, io};

/// Extracts `tar_gz` into `dest_dir`, keeping file modes and symlinks. Refuses absolute paths,
/// `..`, links that point outside `dest_dir`, hard links and device files.
pub fn unpack(tar_gz: &Path, dest_dir: &Path) -> Result<(), ArtifactError> {
    let file = std::fs::File::open(tar_gz).map_err(io("read", tar_gz))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    std::fs::create_dir_all(dest_dir).map_err(io("create", dest_dir))?;
    let unsafe_entry = |entry: &Path, reason| ArtifactError::UnsafeEntry {
        archive: tar_gz.to_path_buf(),
        entry: entry.display().to_string(),
        reason,
    };
    for entry in archive.entries().map_err(io("read", tar_gz))? {
        let mut entry = entry.map_err(io("read", tar_gz))?;
        let path: PathBuf = entry.path().map_err(io("read", tar_gz))?.into_owned();
        if let Some(reason) = path_problem(&path) {
            return Err(unsafe_entry(&path, reason));
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io("read", tar_gz))?
                    .ok_or_else(|| unsafe_entry(&path, "a symlink without a target"))?;
                if !link_stays_inside(&path, &target) {
                    return Err(unsafe_entry(
                        &path,
                        "a symlink pointing outside the artifact",
                    ));
                }
            }
            _ => return Err(unsafe_entry(&path, "not a file, directory or symlink")),
        }
        // unpack_in also refuses to write through a symlinked parent that leaves dest_dir.
        let inside = {
            let _writing = crate::spawn::writing();
            entry
                .unpack_in(dest_dir)
                .map_err(io("extract into", dest_dir))?
        };
        if !inside {
            return Err(unsafe_entry(
                &path,
                "it would be written outside the destination",
            ));
        }
    }
    Ok(())
}

fn path_problem(path: &Path) -> Option<&'static str> {
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Some("it contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Some("it is absolute"),
        }
    }
    None
}

/// Whether a symlink at `link` (relative to the root) pointing to `target` resolves inside.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(dir: &Path, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        let bytes = builder.into_inner().unwrap();
        let path = dir.join("a.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        gz.finish().unwrap();
        path
    }

    fn symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, path, target).unwrap();
    }

    #[test]
    fn keeps_modes_and_inner_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = archive(dir.path(), |b| {
            let mut header = tar::Header::new_gnu();
            header.set_size(3);
            header.set_mode(0o755);
            b.append_data(&mut header, "bin/run", &b"abc"[..]).unwrap();
            symlink(b, "run", "bin/run");
        });
        let dest = dir.path().join("out");
        unpack(&path, &dest).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            std::fs::read_link(dest.join("run")).unwrap(),
            Path::new("bin/run")
        );
    }

    #[test]
    fn refuses_symlinks_that_escape() {
        let dir = tempfile::tempdir().unwrap();
        for target in ["../../etc/passwd", "/etc/passwd", "a/../../../x"] {
            let path = archive(dir.path(), |b| symlink(b, "sub/link", target));
            let error = unpack(&path, &dir.path().join("out")).unwrap_err();
            assert!(
                matches!(error, ArtifactError::UnsafeEntry { .. }),
                "{target}: {error}"
            );
        }
    }

    #[test]
    fn refuses_parent_dir_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.tar.gz");
        // tar::Builder refuses `..` itself, so write the name into the header by hand.
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        bytes.extend_from_slice(&[0; 1024]);
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        gz.finish().unwrap();
        let error = unpack(&path, &dir.path().join("out")).unwrap_err();
        assert!(error.to_string().contains("`..`"), "{error}");
        assert!(!dir.path().join("escape").exists());
    }
}

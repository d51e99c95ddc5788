//! The files Convoy itself writes into a version directory (`convoy-values.json`, the
//! `.convoy-*` markers, env files): written through a handle on the directory, never through a
//! symlink, and refused when one stands at the name — a version directory holds an artifact's
//! files, and on EC2 the agent writing them runs as root.

use std::io::Write;
use std::path::Path;

use cap_std::fs::{Dir, OpenOptions};

/// Writes `bytes` to `name` in `dir`: a new temporary file (`O_CREAT | O_EXCL`, which follows no
/// link), then a rename over `name` (which replaces a directory entry, never what a link points
/// to). Refused when `name` is a symlink or a directory.
pub(crate) fn write_in(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    single_name(name)?;
    let dir = Dir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    match dir.symlink_metadata(name) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(refused(name, "a symlink")),
        Ok(meta) if meta.is_dir() => return Err(refused(name, "a directory")),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let temp = format!(".{name}.{}.tmp", std::process::id());
    let _ = dir.remove_file(&temp);
    let mut file = dir.open_with(&temp, OpenOptions::new().write(true).create_new(true))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let renamed = written.and_then(|()| dir.rename(&temp, &dir, name));
    if renamed.is_err() {
        let _ = dir.remove_file(&temp);
    }
    renamed
}

/// Whether `name` in `dir` is a regular file — a marker Convoy wrote, not a link to one.
pub(crate) fn is_file_in(dir: &Path, name: &str) -> bool {
    std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_file())
}

fn single_name(name: &str) -> std::io::Result<()> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(_)), None) => Ok(()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{name}` is not a plain file name"),
        )),
    }
}

fn refused(name: &str, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!(
            "{what} stands at `{name}` in the version directory; Convoy never writes through one"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_a_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        write_in(dir.path(), "convoy-values.json", b"1").unwrap();
        write_in(dir.path(), "convoy-values.json", b"2").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("convoy-values.json")).unwrap(),
            b"2"
        );
        assert!(is_file_in(dir.path(), "convoy-values.json"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn refuses_a_symlink_at_the_name_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "untouched").unwrap();
        let version = dir.path().join("v1");
        std::fs::create_dir(&version).unwrap();
        for name in [
            "convoy-values.json",
            ".convoy-prepared",
            ".convoy-last-live",
        ] {
            std::os::unix::fs::symlink(&outside, version.join(name)).unwrap();
            let error = write_in(&version, name, b"overwritten").unwrap_err();
            assert!(error.to_string().contains("a symlink stands at"), "{error}");
            assert!(!is_file_in(&version, name), "a link is not a marker");
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
    }

    #[test]
    fn refuses_paths_that_are_not_one_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["../x", "a/b", "/etc/x", ""] {
            assert!(write_in(dir.path(), name, b"x").is_err(), "{name}");
        }
    }
}

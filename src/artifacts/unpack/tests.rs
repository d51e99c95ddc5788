//! Hostile archives, each built byte by byte (`tar::Builder` refuses most of them), each refused
//! with nothing changed outside the destination.

use std::path::{Path, PathBuf};

use super::*;

/// One raw tar entry: a GNU header with `name` and `link` written as given, then `data`.
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    size: u64,
    link: Vec<u8>,
    data: Vec<u8>,
    mode: u32,
}

fn entry(name: &str, kind: tar::EntryType) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind,
        size: 0,
        link: Vec::new(),
        data: Vec::new(),
        mode: 0o644,
    }
}

fn file(name: &str, data: &str) -> Raw {
    Raw {
        size: data.len() as u64,
        data: data.as_bytes().to_vec(),
        ..entry(name, tar::EntryType::Regular)
    }
}

fn dir(name: &str) -> Raw {
    Raw {
        mode: 0o755,
        ..entry(name, tar::EntryType::Directory)
    }
}

fn link(name: &str, target: &str) -> Raw {
    Raw {
        link: target.as_bytes().to_vec(),
        mode: 0o777,
        ..entry(name, tar::EntryType::Symlink)
    }
}

/// A GNU long-name (or long-link) entry carrying `text`, as GNU tar writes before an entry
/// whose name does not fit the 100 bytes of a header.
fn long(kind: tar::EntryType, text: &[u8]) -> Raw {
    let mut data = text.to_vec();
    data.push(0);
    Raw {
        size: data.len() as u64,
        data,
        ..entry("././@LongLink", kind)
    }
}

fn tar_bytes(entries: &[Raw]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for raw in entries {
        let mut prefix = Vec::new();
        if raw.name.len() > 100 {
            prefix.push(long(tar::EntryType::GNULongName, &raw.name));
        }
        if raw.link.len() > 100 {
            prefix.push(long(tar::EntryType::GNULongLink, &raw.link));
        }
        if !prefix.is_empty() {
            let written = tar_bytes(&prefix);
            bytes.extend_from_slice(&written[..written.len() - 1024]);
        }
        let mut header = tar::Header::new_gnu();
        {
            let old = header.as_old_mut();
            let name = &raw.name[..raw.name.len().min(100)];
            let link = &raw.link[..raw.link.len().min(100)];
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(raw.kind);
        header.set_size(raw.size);
        header.set_mode(raw.mode);
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&raw.data);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    }
    bytes.extend_from_slice(&[0; 1024]);
    bytes
}

fn gzip(bytes: &[u8], path: &Path) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap();
}

/// A temporary directory with a sentinel file outside the destination, like a host root with
/// another service's files beside the version being unpacked.
struct Sandbox {
    dir: tempfile::TempDir,
}

const SENTINEL: &str = "untouched\n";

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/sentinel"), SENTINEL).unwrap();
        Sandbox { dir }
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("srv/api/versions/.v1.partial")
    }

    fn sentinel(&self) -> PathBuf {
        self.dir.path().join("outside/sentinel")
    }

    fn unpack(&self, entries: &[Raw], limits: &UnpackLimits) -> Result<(), ArtifactError> {
        let archive = self.dir.path().join("a.tar.gz");
        gzip(&tar_bytes(entries), &archive);
        // Each attempt starts from an empty destination, as the host target's does.
        let _ = std::fs::remove_dir_all(self.dest());
        unpack_with(&archive, &self.dest(), limits)
    }

    /// Everything under the sandbox that is outside the destination: only what `new` made and
    /// the archive itself.
    fn assert_nothing_outside_changed(&self) {
        assert_eq!(std::fs::read_to_string(self.sentinel()).unwrap(), SENTINEL);
        let mut found: Vec<String> = walk(self.dir.path())
            .into_iter()
            .filter(|p| !p.starts_with(self.dest()))
            .map(|p| {
                p.strip_prefix(self.dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                "a.tar.gz",
                "outside",
                "outside/sentinel",
                "srv",
                "srv/api",
                "srv/api/versions"
            ]
        );
    }

    fn refuses(&self, entries: &[Raw], why: &str) -> ArtifactError {
        let error = self.unpack(entries, &UnpackLimits::default()).unwrap_err();
        assert!(
            error.to_string().contains(why),
            "expected `{why}` in: {error}"
        );
        self.assert_nothing_outside_changed();
        error
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.symlink_metadata().unwrap().is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

/// `../` repeated until the filesystem root, from the destination, then `path` without its `/`.
fn climb_to(from: &Path, path: &Path) -> String {
    let depth = from.components().count() + 16;
    let up = "../".repeat(depth);
    format!("{up}{}", path.strip_prefix("/").unwrap().display())
}

#[test]
fn regression_issue_18_a_link_to_dot_then_a_chain_out_is_refused() {
    // The exploit from issue 18: `./a → .`, then a link whose text descends through `a` 16
    // times and climbs 16 times plus enough to reach `/`, then the absolute path of a file
    // outside. Lexically it never leaves; through `a → .` it does.
    let sandbox = Sandbox::new();
    let down = "a/".repeat(16);
    let target = format!("./{down}{}", climb_to(&sandbox.dest(), &sandbox.sentinel()));
    for name in ["./convoy-values.json", "./values.json"] {
        sandbox.refuses(&[link("./a", "."), link(name, &target)], "unsafe entry");
        assert!(!sandbox.dest().join("a").exists(), "no link is created");
    }
    let error = sandbox.refuses(
        &[link("./a", "."), link("./values.json", &target)],
        "leads outside the artifact",
    );
    assert!(matches!(error, ArtifactError::UnsafeEntry { .. }));
}

#[test]
fn keeps_modes_and_inner_symlinks_and_accepts_dot_slash_names() {
    let sandbox = Sandbox::new();
    let mut run = file("./bin/run", "abc");
    run.mode = 0o4755; // setuid: dropped
    let entries = [
        dir("./"),
        dir("./bin/"),
        run,
        link("./run", "bin/run"),
        link("./bin/self", "../bin/./run"),
        link("./here", "."),
        link("./bin/up", ".."),
    ];
    sandbox.unpack(&entries, &UnpackLimits::default()).unwrap();
    let dest = sandbox.dest();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dest.join("bin/run"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_link(dest.join("run")).unwrap(),
        Path::new("bin/run")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("here/bin/up/run")).unwrap(),
        "abc"
    );
    sandbox.assert_nothing_outside_changed();
}

#[test]
fn refuses_names_that_climb_or_are_absolute() {
    let sandbox = Sandbox::new();
    sandbox.refuses(&[file("../escape", "x")], "`..`");
    sandbox.refuses(&[file("./a/../../escape", "x")], "`..`");
    sandbox.refuses(&[file("/tmp/escape", "x")], "absolute");
    sandbox.refuses(&[link("./", "x")], "root");
}

#[test]
fn refuses_links_that_leave_through_dot_dot_chains() {
    let sandbox = Sandbox::new();
    sandbox.refuses(&[link("d/l", "../d/../..")], "leads outside");
    sandbox.refuses(&[link("l", "./.././x")], "leads outside");
    sandbox.refuses(&[link("l", "a/b/../../..")], "leads outside");
}

#[test]
fn refuses_links_that_leave_only_through_other_links() {
    let sandbox = Sandbox::new();
    // Each looks inside on its own: `up` is the root, and `x` climbs one level above `d1`.
    sandbox.refuses(
        &[
            dir("d1/"),
            dir("d1/d2/"),
            link("d1/up", ".."),
            link("d1/d2/x", "../up/.."),
        ],
        "leads outside",
    );
    // A link to a link that is absolute; order does not matter: links are checked at the end.
    sandbox.refuses(&[link("a", "b"), link("b", "/etc")], "absolute");
    // A cycle is bounded.
    sandbox.refuses(&[link("a", "b/x"), link("b", "a/y")], "too many symlinks");
}

#[test]
fn refuses_absolute_links() {
    let sandbox = Sandbox::new();
    sandbox.refuses(&[link("l", "/etc/passwd")], "absolute");
    let sentinel = sandbox.sentinel().display().to_string();
    sandbox.refuses(&[link("sub/l", &sentinel)], "absolute");
}

#[test]
fn refuses_hard_links_devices_pipes_sparse_files_and_pax_headers() {
    let sandbox = Sandbox::new();
    let mut hard = entry("h", tar::EntryType::Link);
    hard.link = sandbox.sentinel().display().to_string().into_bytes();
    sandbox.refuses(&[hard], "hard link");
    sandbox.refuses(&[entry("c", tar::EntryType::Char)], "device");
    sandbox.refuses(&[entry("b", tar::EntryType::Block)], "device");
    sandbox.refuses(&[entry("p", tar::EntryType::Fifo)], "named pipe");
    sandbox.refuses(&[entry("s", tar::EntryType::GNUSparse)], "sparse");
    sandbox.refuses(&[entry("x", tar::EntryType::XHeader)], "pax");
}

#[test]
fn refuses_duplicate_entries() {
    let sandbox = Sandbox::new();
    sandbox.refuses(&[file("f", "1"), file("f", "2")], "already made it a file");
    sandbox.refuses(
        &[file("./f", "1"), file("f", "2")],
        "already made it a file",
    );
    sandbox.refuses(&[dir("d/"), dir("d/")], "already made it a directory");
    sandbox.refuses(
        &[link("l", "f"), file("l", "x")],
        "already made it a symlink",
    );
}

#[test]
fn refuses_an_entry_that_replaces_a_directory_with_a_link() {
    let sandbox = Sandbox::new();
    let outside = sandbox.dir.path().join("outside").display().to_string();
    sandbox.refuses(
        &[
            dir("d/"),
            file("d/f", "x"),
            link("d", &outside),
            file("d/sentinel", "overwritten"),
        ],
        "already made it a directory",
    );
    // Implied directories count too: `d/f` made `d`.
    sandbox.refuses(
        &[file("d/f", "x"), link("d", "..")],
        "already made it a directory",
    );
    // And nothing is written under a link, even one that stays inside.
    sandbox.refuses(
        &[dir("real/"), link("d", "real"), file("d/f", "x")],
        "is a symlink",
    );
    sandbox.refuses(&[file("f", "x"), file("f/g", "y")], "is a file");
}

#[test]
fn refuses_huge_entries_before_reading_them() {
    let sandbox = Sandbox::new();
    let mut huge = file("big", "");
    huge.size = 1 << 40; // declared only: the archive holds no such data
    sandbox.refuses(&[huge], "artifacts.limits.max_size");
    let small = UnpackLimits {
        max_size: 10,
        max_entries: 3,
    };
    let error = sandbox
        .unpack(&[file("a", "123456"), file("b", "123456")], &small)
        .unwrap_err();
    assert!(
        matches!(
            error,
            ArtifactError::TooLarge {
                limit: "max_size",
                ..
            }
        ),
        "{error}"
    );
    let many: Vec<Raw> = (0..4).map(|i| file(&format!("f{i}"), "")).collect();
    let error = sandbox.unpack(&many, &small).unwrap_err();
    assert!(
        matches!(
            error,
            ArtifactError::TooLarge {
                limit: "max_entries",
                ..
            }
        ),
        "{error}"
    );
    sandbox.assert_nothing_outside_changed();
}

#[test]
fn long_names_are_read_bounded() {
    let sandbox = Sandbox::new();
    let name = format!("{}/f", "d".repeat(200));
    sandbox
        .unpack(&[file(&name, "ok")], &UnpackLimits::default())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.dest().join(&name)).unwrap(),
        "ok"
    );

    let sandbox = Sandbox::new();
    let mut endless = entry("././@LongLink", tar::EntryType::GNULongName);
    endless.size = 1 << 40;
    sandbox.refuses(&[endless], "over 4096");
}

#[test]
fn refuses_names_convoy_writes_itself() {
    let sandbox = Sandbox::new();
    sandbox.refuses(&[file(".convoy-prepared", "")], "Convoy writes that name");
    sandbox.refuses(
        &[file("./convoy-values.json", "{}")],
        "Convoy writes that name",
    );
    // Deeper down they are ordinary names.
    sandbox
        .unpack(
            &[file("etc/convoy-values.json", "{}")],
            &UnpackLimits::default(),
        )
        .unwrap();
}

#[test]
fn a_truncated_or_garbled_archive_is_an_error_naming_the_entry() {
    let sandbox = Sandbox::new();
    let mut bytes = tar_bytes(&[file("a", "hello")]);
    bytes[148] ^= 0x55; // the header checksum
    let archive = sandbox.dir.path().join("a.tar.gz");
    gzip(&bytes, &archive);
    let error = unpack(&archive, &sandbox.dest()).unwrap_err();
    assert!(
        matches!(error, ArtifactError::Malformed { entry: 0, .. }),
        "{error}"
    );
    let bytes = tar_bytes(&[file("a", &"x".repeat(2000))]);
    gzip(&bytes[..1024], &archive);
    let error = unpack(&archive, &sandbox.dest()).unwrap_err();
    assert!(error.to_string().contains("`a`"), "{error}");
    sandbox.assert_nothing_outside_changed();
}

//! The tree an archive describes, kept in memory while it is unpacked, so that every symlink is
//! resolved against what the archive really builds — through other links, `.` and `..` — and
//! never by looking at the path text alone.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// How many links one resolution may follow (Linux's own limit is 40).
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    Dir,
    File,
    Link(PathBuf),
}

impl Node {
    fn describe(&self) -> &'static str {
        match self {
            Node::Dir => "a directory",
            Node::File => "a file",
            Node::Link(_) => "a symlink",
        }
    }
}

/// Every path the archive made so far (relative, normalized), with what it is.
#[derive(Debug, Default)]
pub(super) struct Tree {
    nodes: BTreeMap<PathBuf, Node>,
    /// Paths an entry of their own made (not only implied as a parent).
    explicit: BTreeSet<PathBuf>,
}

impl Tree {
    /// Records `node` at `path`; refuses a path that exists already (a duplicate entry, or an
    /// entry replacing a directory with a link) and a path under anything but a directory (a
    /// file, or a symlink the writer would have to follow).
    pub(super) fn add(&mut self, path: &Path, node: Node) -> Result<(), String> {
        let mut parent = PathBuf::new();
        let parts: Vec<_> = path.components().collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            parent.push(part);
            match self.nodes.get(&parent) {
                None => {
                    self.nodes.insert(parent.clone(), Node::Dir);
                }
                Some(Node::Dir) => {}
                Some(other) => {
                    return Err(format!(
                        "its parent `{}` is {}",
                        parent.display(),
                        other.describe()
                    ));
                }
            }
        }
        match self.nodes.get(path) {
            // `a/b` created `a` implicitly; an explicit `a/` entry after it is the same thing.
            Some(Node::Dir) if node == Node::Dir && !self.explicit.contains(path) => {}
            Some(existing) => {
                return Err(format!(
                    "the archive already made it {}",
                    existing.describe()
                ));
            }
            None => {}
        }
        self.nodes.insert(path.to_path_buf(), node);
        self.explicit.insert(path.to_path_buf());
        Ok(())
    }

    /// Why the link at `link` with target `target` leaves the tree, if it does: the target is
    /// resolved from the link's directory, following every link of the archive on the way.
    pub(super) fn escape(&self, link: &Path, target: &Path) -> Option<String> {
        let mut at: Vec<OsString> = link
            .parent()
            .map(|p| p.iter().map(|c| c.to_os_string()).collect())
            .unwrap_or_default();
        let mut pending = steps(target);
        let mut hops = 0;
        while let Some(step) = pending.pop_front() {
            match step {
                Step::Root => return Some("it points to an absolute path".to_string()),
                Step::Up => {
                    if at.pop().is_none() {
                        return Some(format!("`{}` leads outside the artifact", target.display()));
                    }
                }
                Step::Name(name) => {
                    at.push(name);
                    let here: PathBuf = at.iter().collect();
                    match self.nodes.get(&here) {
                        Some(Node::Link(next)) => {
                            hops += 1;
                            if hops > MAX_HOPS {
                                return Some("it goes through too many symlinks".to_string());
                            }
                            if next.has_root() {
                                return Some(format!(
                                    "it goes through `{}`, which points to an absolute path",
                                    here.display()
                                ));
                            }
                            at.pop();
                            // The link's own target first, then what was left after it.
                            let mut spliced = steps(next);
                            spliced.append(&mut pending);
                            pending = spliced;
                        }
                        Some(Node::File) if !pending.is_empty() => {
                            return Some(format!("it goes through the file `{}`", here.display()));
                        }
                        _ => {}
                    }
                }
            }
        }
        None
    }

    /// The links recorded, for the final check.
    pub(super) fn links(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.nodes.iter().filter_map(|(path, node)| match node {
            Node::Link(target) => Some((path.as_path(), target.as_path())),
            _ => None,
        })
    }
}

/// One step of a path being resolved; `.` steps are dropped.
enum Step {
    Root,
    Up,
    Name(OsString),
}

fn steps(path: &Path) -> VecDeque<Step> {
    path.components()
        .filter_map(|part| match part {
            Component::CurDir => None,
            Component::RootDir | Component::Prefix(_) => Some(Step::Root),
            Component::ParentDir => Some(Step::Up),
            Component::Normal(name) => Some(Step::Name(name.to_os_string())),
        })
        .collect()
}

//! Git through git2: the commit a ref names, each service's sub-tree ids, its cache key, the
//! version (the oldest first-parent ancestor with the same key) and clean exports.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use sha2::{Digest, Sha256};

use super::error::{BuildError, git, io};
use crate::config::{PROJECT_FILE, Project, Service};

/// Characters of the commit hash that make a version.
pub const VERSION_LEN: usize = 10;

/// What a ref resolves to, per service; cheap (no store, no recipes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Full id of the commit `rev` names.
    pub commit: String,
    /// Uncommitted changes under the project root (they are not part of any build).
    pub dirty: bool,
    /// In the project's service order (by name).
    pub services: Vec<ServiceVersion>,
}

/// One service at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceVersion {
    pub service: String,
    /// Short id of `commit`.
    pub version: String,
    /// sha256 of the service's tree ids and recipe.
    pub key: String,
    /// Full id of the oldest first-parent ancestor of the requested commit with the same key:
    /// the commit that is built, so one version always builds to the same bytes.
    pub commit: String,
    /// The service's sub-tree id.
    pub tree: String,
}

/// Where the project sits inside its repository.
pub(crate) struct Location {
    pub repo_dir: PathBuf,
    /// The project root relative to the repository's work tree (`""` at the top).
    pub prefix: PathBuf,
}

pub(crate) fn locate(project: &Project) -> Result<(Repository, Location), BuildError> {
    let no_repo = |source| BuildError::NoRepository {
        root: project.root.clone(),
        source,
    };
    let repo = Repository::discover(&project.root).map_err(no_repo)?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| no_repo(git2::Error::from_str("the repository is bare")))?;
    let workdir = workdir.canonicalize().map_err(io("resolve", workdir))?;
    let root = project
        .root
        .canonicalize()
        .map_err(io("resolve", &project.root))?;
    let prefix = root
        .strip_prefix(&workdir)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let repo_dir = repo.path().to_path_buf();
    Ok((repo, Location { repo_dir, prefix }))
}

/// Resolves `rev` and each service's version. See [`ServiceVersion`].
pub fn resolve_versions(project: &Project, rev: &str) -> Result<Resolved, BuildError> {
    let (repo, location) = locate(project)?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .map_err(|source| BuildError::BadRevision {
            rev: rev.to_string(),
            source,
        })?;
    let dirty = is_dirty(&repo, &location.prefix)?;
    let recipes: BTreeMap<String, Service> = project.services.clone();
    let start = keys_at(&commit, &location.prefix, &recipes)?;
    let mut services = Vec::new();
    let mut origin: BTreeMap<String, Oid> = BTreeMap::new();
    for (name, state) in &start {
        let Some((key, tree)) = state else {
            let service = &project.services[name];
            return Err(BuildError::MissingPath {
                service: name.clone(),
                path: service.path.clone(),
                commit: commit.id().to_string(),
            });
        };
        origin.insert(name.clone(), commit.id());
        services.push((name.clone(), key.clone(), *tree));
    }
    walk_back(
        &repo,
        &commit,
        &location.prefix,
        project,
        &start,
        &mut origin,
    )?;
    let services = services
        .into_iter()
        .map(|(service, key, tree)| {
            let commit = origin[&service].to_string();
            ServiceVersion {
                version: commit[..VERSION_LEN].to_string(),
                service,
                key,
                commit,
                tree: tree.to_string(),
            }
        })
        .collect();
    Ok(Resolved {
        commit: commit.id().to_string(),
        dirty,
        services,
    })
}

type Keys = BTreeMap<String, Option<(String, Oid)>>;

/// Follows first parents while a service's key is unchanged, moving its origin back.
fn walk_back(
    repo: &Repository,
    start: &git2::Commit<'_>,
    prefix: &Path,
    project: &Project,
    start_keys: &Keys,
    origin: &mut BTreeMap<String, Oid>,
) -> Result<(), BuildError> {
    let mut open: Vec<String> = origin.keys().cloned().collect();
    let mut recipes_by_blob: HashMap<Option<Oid>, Option<BTreeMap<String, Service>>> =
        HashMap::new();
    let mut current = start.clone();
    while !open.is_empty() {
        let Ok(parent) = current.parent(0) else { break };
        let tree = parent.tree().map_err(git("reading a tree"))?;
        let blob = tree
            .get_path(&prefix.join(PROJECT_FILE))
            .ok()
            .map(|e| e.id());
        let recipes = recipes_by_blob
            .entry(blob)
            .or_insert_with(|| committed_recipes(repo, blob, project))
            .clone();
        let Some(recipes) = recipes else { break };
        let wanted: BTreeMap<String, Service> = open
            .iter()
            .filter_map(|name| recipes.get(name).map(|s| (name.clone(), s.clone())))
            .collect();
        let keys = keys_at(&parent, prefix, &wanted)?;
        open.retain(|name| {
            let same = keys
                .get(name)
                .is_some_and(|k| k.is_some() && *k == start_keys[name]);
            if same {
                origin.insert(name.clone(), parent.id());
            }
            same
        });
        current = parent;
    }
    Ok(())
}

/// The services of the project file in a past commit; `None` when absent or unreadable there.
fn committed_recipes(
    repo: &Repository,
    blob: Option<Oid>,
    project: &Project,
) -> Option<BTreeMap<String, Service>> {
    let blob = repo.find_blob(blob?).ok()?;
    let text = String::from_utf8(blob.content().to_vec()).ok()?;
    Project::from_text(&project.file, text)
        .ok()
        .map(|p| p.services)
}

/// Each service's key and tree at `commit`; `None` when its path is missing there.
fn keys_at(
    commit: &git2::Commit<'_>,
    prefix: &Path,
    services: &BTreeMap<String, Service>,
) -> Result<Keys, BuildError> {
    let tree = commit.tree().map_err(git("reading a tree"))?;
    let id_of = |path: &str| {
        tree.get_path(&prefix.join(path))
            .ok()
            .map(|entry| entry.id())
    };
    let mut keys = BTreeMap::new();
    for (name, service) in services {
        let Some(service_tree) = id_of(&service.path) else {
            keys.insert(name.clone(), None);
            continue;
        };
        let mut material = format!("convoy-key-v1\npath {} {service_tree}\n", service.path);
        for extra in &service.extra_paths {
            let id = id_of(extra).map_or_else(|| "missing".to_string(), |id| id.to_string());
            material.push_str(&format!("extra {extra} {id}\n"));
        }
        for command in &service.build {
            material.push_str(&format!("build {}\n", command.replace('\n', "\\n")));
        }
        for output in &service.output {
            material.push_str(&format!("output {output}\n"));
        }
        let key = hex::encode(Sha256::digest(material.as_bytes()));
        keys.insert(name.clone(), Some((key, service_tree)));
    }
    Ok(keys)
}

fn is_dirty(repo: &Repository, prefix: &Path) -> Result<bool, BuildError> {
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        .exclude_submodules(true);
    if !prefix.as_os_str().is_empty() {
        options.pathspec(prefix);
    }
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(git("reading the status"))?;
    Ok(!statuses.is_empty())
}

/// The commit's author, message and time, for meta.json.
pub(crate) struct CommitInfo {
    pub author: String,
    pub message: String,
    pub time: i64,
}

pub(crate) fn commit_info(repo: &Repository, commit: &str) -> Result<CommitInfo, BuildError> {
    let oid = Oid::from_str(commit).map_err(git("parsing a commit id"))?;
    let commit = repo
        .find_commit(oid)
        .map_err(git(format!("reading commit {oid}")))?;
    let author = commit.author();
    Ok(CommitInfo {
        author: format!(
            "{} <{}>",
            author.name().unwrap_or(""),
            author.email().unwrap_or("")
        ),
        message: commit.message().unwrap_or("").trim_end().to_string(),
        time: commit.time().seconds(),
    })
}

/// Writes the trees at `paths` (relative to `prefix`) of `commit` under `dest`, at the same
/// relative places; keeps executable bits and symlinks. Submodules become empty directories.
pub(crate) fn export(
    repo: &Repository,
    commit: &str,
    prefix: &Path,
    paths: &[&str],
    dest: &Path,
) -> Result<(), BuildError> {
    let oid = Oid::from_str(commit).map_err(git("parsing a commit id"))?;
    let tree = repo
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(git(format!("reading commit {oid}")))?;
    for path in paths {
        let Ok(entry) = tree.get_path(&prefix.join(path)) else {
            continue; // a missing extra path is part of the key, not an error
        };
        write_entry(repo, &entry, &dest.join(path))?;
    }
    Ok(())
}

fn write_entry(
    repo: &Repository,
    entry: &git2::TreeEntry<'_>,
    dest: &Path,
) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    match entry.filemode() {
        0o040000 => {
            std::fs::create_dir_all(dest).map_err(io("create", dest))?;
            let tree = repo.find_tree(entry.id()).map_err(git("reading a tree"))?;
            for child in tree.iter() {
                let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                    child.name_bytes(),
                );
                write_entry(repo, &child, &dest.join(name))?;
            }
        }
        0o120000 => {
            let blob = repo
                .find_blob(entry.id())
                .map_err(git("reading a symlink"))?;
            let target =
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(blob.content());
            std::os::unix::fs::symlink(target, dest).map_err(io("create the symlink", dest))?;
        }
        0o160000 => std::fs::create_dir_all(dest).map_err(io("create", dest))?,
        mode => {
            let blob = repo.find_blob(entry.id()).map_err(git("reading a file"))?;
            let _writing = crate::spawn::writing();
            std::fs::write(dest, blob.content()).map_err(io("write", dest))?;
            let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
                .map_err(io("set the mode of", dest))?;
        }
    }
    Ok(())
}

/// The project's configuration — its file, values and templates — as committed at `commit`,
/// written under `dest`. Returns the project file there. Nothing is read from the work tree.
pub fn export_config(project: &Project, commit: &str, dest: &Path) -> Result<PathBuf, BuildError> {
    let (repo, location) = locate(project)?;
    let file = project
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(PROJECT_FILE);
    let paths = [
        file,
        crate::config::values::VALUES_DIR,
        crate::render::templates::PROJECT_TEMPLATES,
    ];
    export(&repo, commit, &location.prefix, &paths, dest)?;
    Ok(dest.join(file))
}

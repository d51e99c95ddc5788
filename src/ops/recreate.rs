//! Revisions a rollback returns to that the target no longer runs, made again from their release
//! records: the project's configuration as committed at the recorded commit (read through git,
//! never from the work tree), the recorded `--set` flags, and secrets read from their sources as
//! they are now. A revision that cannot be made exactly as it ran is refused — except for a
//! rotated secret, which is taken as it is now (an old credential may well be revoked).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::config::Project;
use crate::execute::{Event, Reporter};
use crate::plan::revision::Revision;
use crate::render::revision::{RevisionInput, revision};
use crate::render::{SecretMode, ServiceVersion, resolve_values};
use crate::targets::{Backend, RevisionSpec};

/// The specs of re-created revisions, by revision id, and the exported configurations they
/// render from (kept on disk while the rollback runs).
#[derive(Default)]
pub struct Recreated {
    pub specs: BTreeMap<String, RevisionSpec>,
    pub exports: Vec<tempfile::TempDir>,
}

/// Makes each of `wanted` again in `environment` of `project` (the project as it is now; only
/// where its repository and secrets are is taken from it).
pub async fn recreate(
    project: &Project,
    environment: &str,
    backend: &dyn Backend,
    wanted: &[Revision],
    reporter: &dyn Reporter,
) -> Result<Recreated, Error> {
    let mut recreated = Recreated::default();
    if wanted.is_empty() {
        return Ok(recreated);
    }
    let mode = match backend.needs_secrets() {
        true => SecretMode::Reveal,
        false => SecretMode::Mask,
    };
    let key = backend.digest_key().await?;
    let mut at_commit: BTreeMap<&str, Arc<Project>> = BTreeMap::new();
    for recorded in wanted {
        let refuse = |reason: String| Error::Recreate {
            service: recorded.service.clone(),
            revision: recorded.id.clone(),
            commit: recorded.commit.clone(),
            reason,
        };
        let then = match at_commit.get(recorded.commit.as_str()) {
            Some(then) => then.clone(),
            None => {
                let dir = tempfile::tempdir().map_err(|e| refuse(e.to_string()))?;
                let then = project_at(project, &recorded.commit, dir.path()).map_err(&refuse)?;
                recreated.exports.push(dir);
                at_commit.insert(&recorded.commit, then.clone());
                then
            }
        };
        let services = [recorded.service.clone()];
        let values = resolve_values(&then, environment, &services, &recorded.sets, mode)
            .map_err(|e| refuse(describe(&e)))?;
        let Some(values) = values.get(&recorded.service) else {
            continue;
        };
        let artifact = ServiceVersion {
            version: recorded.version.clone(),
            commit: recorded.artifact_commit.clone(),
            ..ServiceVersion::default()
        };
        let input = RevisionInput {
            project: &then,
            environment,
            service: &recorded.service,
            artifact: &artifact,
            values,
            sets: &recorded.sets,
            key: &key,
            commit: &recorded.commit,
            dirty: recorded.dirty,
        };
        let (made, mut version) = revision(&input).map_err(|e| refuse(describe(&e)))?;
        if let Some(reason) = differs(recorded, &made) {
            return Err(refuse(reason));
        }
        if made.secrets != recorded.secrets {
            let keys: Vec<&str> = changed_keys(&recorded.secrets, &made.secrets);
            reporter.report(&Event::Warning {
                message: format!(
                    "{}: secret(s) {} changed since revision {} ran; it is re-created with their values as they are now",
                    recorded.service,
                    keys.join(", "),
                    recorded.id
                ),
            });
        }
        // Named as recorded: the release returns to the revision it recorded.
        version.revision = Some(recorded.id.clone());
        let spec = RevisionSpec {
            service: recorded.service.clone(),
            version,
            project: then.clone(),
            sets: recorded.sets.clone(),
            values: values.clone(),
        };
        recreated.specs.insert(recorded.id.clone(), spec);
    }
    Ok(recreated)
}

/// The project's configuration as committed at `commit`, its secrets read from where they are
/// read now.
fn project_at(
    project: &Project,
    commit: &str,
    dir: &std::path::Path,
) -> Result<Arc<Project>, String> {
    let file = crate::build::export_config(project, commit, dir).map_err(|e| describe(&e))?;
    let mut then = Project::load(&file).map_err(|e| describe(&e))?;
    then.secrets_root = project.secrets_root.clone();
    Ok(Arc::new(then))
}

/// Why `made` is not the revision `recorded` (beyond its secrets), if it is not.
fn differs(recorded: &Revision, made: &Revision) -> Option<String> {
    let dirty = match recorded.dirty {
        true => " (it was deployed from a work tree with uncommitted changes)",
        false => "",
    };
    let values = changed_keys(&recorded.values, &made.values);
    if !values.is_empty() {
        return Some(format!(
            "its values at that commit differ from what ran{dirty}: {}",
            values.join(", ")
        ));
    }
    // Objects name the secrets' digest (a rotated secret makes a new Secret): compare the rest.
    let objects = |r: &Revision| -> Vec<String> {
        let secretless = r.objects.keys().filter(|k| !k.starts_with("Secret/"));
        secretless
            .map(|k| format!("{k}={}", r.objects[k]))
            .collect()
    };
    let rotated = made.secrets != recorded.secrets;
    if !rotated && objects(recorded) != objects(made) || made.templates != recorded.templates {
        return Some(format!(
            "its rendered objects differ from what ran{dirty} (the templates changed, or Convoy's built-in ones did)"
        ));
    }
    None
}

fn changed_keys<'a, V: PartialEq>(
    old: &'a BTreeMap<String, V>,
    new: &'a BTreeMap<String, V>,
) -> Vec<&'a str> {
    let keys = old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)));
    keys.filter(|k| old.get(*k) != new.get(*k))
        .map(String::as_str)
        .collect()
}

fn describe(error: &dyn std::error::Error) -> String {
    crate::diagnostic::chain(error)
        .trim_end()
        .replace('\n', "; ")
}

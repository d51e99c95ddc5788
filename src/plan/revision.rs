//! A revision is what actually runs of a service: its artifact version plus the digest of its
//! resolved configuration. A code change and a configuration change both make a new revision,
//! which rolls out side by side like any other; a release record keeps each revision's
//! configuration, so a rollback never reads today's tree. Pure data and pure comparisons.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Characters of the configuration digest in a revision id: a service has few revisions at a
/// time, and names must stay short (Kubernetes and AWS limits reserve room for them).
pub const DIGEST_LEN: usize = 6;

/// The id of `version` run with configuration `digest`: `<version>-<digest[..6]>`.
pub fn revision_id(version: &str, digest: &str) -> String {
    format!("{version}-{}", &digest[..digest.len().min(DIGEST_LEN)])
}

/// The artifact version of revision `id`: the id less its configuration digest (an id with
/// none, from before revisions, is a version itself).
pub fn artifact_of(id: &str) -> &str {
    match id.rsplit_once('-') {
        Some((version, digest))
            if digest.len() == DIGEST_LEN && digest.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            version
        }
        _ => id,
    }
}

/// Everything a revision was made of, as recorded with the release that deployed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// `<version>-<digest>`: what targets name and select by.
    pub id: String,
    pub service: String,
    /// The artifact version.
    pub version: String,
    /// The commit the artifact was built from (its objects name it).
    #[serde(default)]
    pub artifact_commit: String,
    /// sha256 of the resolved configuration (values, secrets by keyed hash, objects, templates).
    pub digest: String,
    /// The project commit it was deployed from, and whether the work tree had other changes.
    pub commit: String,
    #[serde(default)]
    pub dirty: bool,
    /// `--set` flags as given.
    #[serde(default)]
    pub sets: Vec<String>,
    /// Every value after layering and `--set`, secrets masked, by dotted key.
    #[serde(default)]
    pub values: BTreeMap<String, serde_json::Value>,
    /// Where each value was set (`values/production.yaml:3:5`, `--set`).
    #[serde(default)]
    pub origins: BTreeMap<String, String>,
    /// Each secret's keyed hash, by dotted key: a rotation shows, its value never does.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Each rendered object (`Kind/name`, secrets masked) and a digest of it.
    #[serde(default)]
    pub objects: BTreeMap<String, String>,
    /// Digest of the template set the objects came from.
    #[serde(default)]
    pub templates: String,
    /// The container image, where there is one.
    #[serde(default)]
    pub image: Option<String>,
}

/// Why a service's revision changes, for `plan`, `deploy --dry-run` and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Not running yet.
    New,
    /// Another artifact: the commits between.
    Code {
        from: String,
        to: String,
        #[serde(default)]
        commits: Vec<String>,
    },
    /// A value changed, appeared or went away (`None`), and where the new one was set.
    Value {
        key: String,
        from: Option<serde_json::Value>,
        to: Option<serde_json::Value>,
        origin: Option<String>,
    },
    /// A secret's value changed (its key only; never the value).
    Secret { key: String },
    /// The template set changed.
    Template,
    Image {
        from: Option<String>,
        to: Option<String>,
    },
    /// A `--set` flag differs from the one the live revision was deployed with.
    Set { flag: String },
    /// Nothing recorded about the live revision (deployed before revisions were recorded).
    Unrecorded,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<serde_json::Value>| match v {
            Some(v) => v.to_string(),
            None => "(unset)".to_string(),
        };
        match self {
            Reason::New => write!(f, "new service"),
            Reason::Code { from, to, commits } => {
                write!(f, "code {from} → {to}")?;
                if !commits.is_empty() {
                    write!(f, " ({} commit(s): {})", commits.len(), commits.join("; "))?;
                }
                Ok(())
            }
            Reason::Value {
                key,
                from,
                to,
                origin,
            } => {
                write!(f, "value {key}: {} → {}", shown(from), shown(to))?;
                if let Some(origin) = origin {
                    write!(f, " (set by {origin})")?;
                }
                Ok(())
            }
            Reason::Secret { key } => write!(f, "secret {key} changed"),
            Reason::Template => write!(f, "templates changed"),
            Reason::Image { from, to } => write!(
                f,
                "image {} → {}",
                from.as_deref().unwrap_or("(none)"),
                to.as_deref().unwrap_or("(none)")
            ),
            Reason::Set { flag } => write!(f, "--set {flag}"),
            Reason::Unrecorded => write!(f, "the live revision has no record to compare with"),
        }
    }
}

/// Why `new` differs from `old` (the live revision's record), most telling first. `commits`:
/// the commit subjects between the two artifacts, when the code changed.
pub fn reasons(old: Option<&Revision>, new: &Revision, commits: Vec<String>) -> Vec<Reason> {
    let Some(old) = old else {
        return vec![Reason::Unrecorded];
    };
    let mut found = Vec::new();
    if old.version != new.version {
        found.push(Reason::Code {
            from: old.version.clone(),
            to: new.version.clone(),
            commits,
        });
    }
    if old.image != new.image {
        found.push(Reason::Image {
            from: old.image.clone(),
            to: new.image.clone(),
        });
    }
    found.extend(value_changes(old, new));
    for key in changed_keys(&old.secrets, &new.secrets) {
        found.push(Reason::Secret { key });
    }
    for flag in &new.sets {
        if !old.sets.contains(flag) {
            found.push(Reason::Set { flag: flag.clone() });
        }
    }
    if old.templates != new.templates {
        found.push(Reason::Template);
    }
    found
}

fn value_changes(old: &Revision, new: &Revision) -> Vec<Reason> {
    changed_keys(&old.values, &new.values)
        .into_iter()
        .map(|key| Reason::Value {
            from: old.values.get(&key).cloned(),
            to: new.values.get(&key).cloned(),
            origin: new.origins.get(&key).cloned(),
            key,
        })
        .collect()
}

/// Keys whose entry differs, appears or disappears between `old` and `new`.
fn changed_keys<V: PartialEq>(old: &BTreeMap<String, V>, new: &BTreeMap<String, V>) -> Vec<String> {
    let mut keys: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
    keys.sort();
    keys
}

/// A value tree as dotted keys to leaves (`database.host`), for recording and comparing.
pub fn flatten(tree: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    flatten_into(tree, "", &mut out);
    out
}

fn flatten_into(
    tree: &serde_json::Value,
    prefix: &str,
    out: &mut BTreeMap<String, serde_json::Value>,
) {
    match tree {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(value, &path, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn revision(version: &str, values: serde_json::Value) -> Revision {
        Revision {
            id: revision_id(version, "abcdef0123"),
            service: "api".into(),
            version: version.into(),
            values: flatten(&values),
            ..Revision::default()
        }
    }

    #[test]
    fn the_artifact_of_a_revision_is_its_version() {
        assert_eq!(artifact_of("1a2b3c4d5e-0f1e2d"), "1a2b3c4d5e");
        assert_eq!(artifact_of("1.4.0"), "1.4.0");
        assert_eq!(artifact_of("release-candidate"), "release-candidate");
    }

    #[test]
    fn a_revision_id_is_the_version_and_a_short_digest() {
        assert_eq!(
            revision_id("1a2b3c4d5e", "0f1e2d3c4b5a"),
            "1a2b3c4d5e-0f1e2d"
        );
    }

    #[test]
    fn a_values_only_change_names_each_key_with_old_new_and_origin() {
        let old = revision(
            "v1",
            json!({"replicas": 2, "db": {"host": "a"}, "gone": true}),
        );
        let mut new = revision("v1", json!({"replicas": 3, "db": {"host": "a", "pool": 5}}));
        new.origins
            .insert("replicas".into(), "values/common.yaml:1:11".into());
        let found = reasons(Some(&old), &new, Vec::new());
        assert_eq!(
            found,
            vec![
                Reason::Value {
                    key: "db.pool".into(),
                    from: None,
                    to: Some(json!(5)),
                    origin: None
                },
                Reason::Value {
                    key: "gone".into(),
                    from: Some(json!(true)),
                    to: None,
                    origin: None
                },
                Reason::Value {
                    key: "replicas".into(),
                    from: Some(json!(2)),
                    to: Some(json!(3)),
                    origin: Some("values/common.yaml:1:11".into())
                },
            ]
        );
        assert_eq!(
            found[2].to_string(),
            "value replicas: 2 → 3 (set by values/common.yaml:1:11)"
        );
    }

    #[test]
    fn code_secrets_sets_and_templates_are_told_apart() {
        let mut old = revision("v1", json!({}));
        old.secrets.insert("db.password".into(), "h1".into());
        old.templates = "t1".into();
        let mut new = revision("v2", json!({}));
        new.secrets.insert("db.password".into(), "h2".into());
        new.templates = "t2".into();
        new.sets = vec!["replicas=3".into()];
        let found = reasons(Some(&old), &new, vec!["fix the cart".into()]);
        assert!(matches!(&found[0], Reason::Code { commits, .. } if commits.len() == 1));
        assert!(found.contains(&Reason::Secret {
            key: "db.password".into()
        }));
        assert!(found.contains(&Reason::Set {
            flag: "replicas=3".into()
        }));
        assert!(found.contains(&Reason::Template));
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(!text.join(" ").contains("h2"), "{text:?}");
    }

    #[test]
    fn nothing_recorded_says_so() {
        assert_eq!(
            reasons(None, &revision("v1", json!({})), Vec::new()),
            vec![Reason::Unrecorded]
        );
    }
}

//! `convoy diff`: each rendered object against what the cluster would store if it were applied
//! now (a server-side dry run, so defaults and other managers' fields appear on both sides), with
//! secret values masked on both sides.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::marker::MASK;

use super::KubeError;
use super::apply::Applier;
use super::objects::VersionObjects;

/// How one object differs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum Difference {
    /// Not in the cluster.
    Added { yaml: String },
    /// In the cluster but being deleted (a `deletionTimestamp`; finalizers hold it): it is about
    /// to vanish, so a deploy waits for it to go and creates it again — `yaml` is what it renders.
    Deleting { yaml: String },
    /// In the cluster, and applying would change it: a unified diff (secrets masked).
    Changed { diff: String },
    /// Only secret values differ (not shown).
    SecretsChanged,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectDiff {
    pub service: String,
    pub object: String,
    #[serde(flatten)]
    pub difference: Difference,
}

/// The differences of every object of `objects` (service → its objects); equal ones are left out.
pub async fn diff(
    applier: &Applier,
    objects: &BTreeMap<String, VersionObjects>,
) -> Result<Vec<ObjectDiff>, KubeError> {
    let mut found = Vec::new();
    for (service, version) in objects {
        for object in version.all() {
            let live = applier.get(&object.resource, &object.name()).await?;
            if live
                .as_ref()
                .is_some_and(|l| l.metadata.deletion_timestamp.is_some())
            {
                let rendered = serde_json::to_value(&object.object).unwrap_or_default();
                let secret = object.kind() == "Secret";
                found.push(ObjectDiff {
                    service: service.clone(),
                    object: object.describe(),
                    difference: Difference::Deleting {
                        yaml: to_yaml(&masked(&normalize(rendered, secret), secret)),
                    },
                });
                continue;
            }
            // As a switch applies it: the stable Service's selector is Convoy's to set.
            let would = if object.kind() == "Service" {
                applier
                    .apply_owning(object, super::traffic::SELECTOR_FIELD, true)
                    .await?
            } else if object.kind() == "Deployment"
                && let Some(live) = &live
            {
                // As a provision re-applies it: at the count it has (see `VersionObjects`).
                let count = live.data["spec"]["replicas"].as_i64();
                applier
                    .apply(&object.clone().with_replicas(count), true)
                    .await?
            } else {
                applier.apply(object, true).await?
            };
            let secret = object.kind() == "Secret";
            let would = normalize(serde_json::to_value(&would).unwrap_or_default(), secret);
            let difference = match live {
                None => Some(Difference::Added {
                    yaml: to_yaml(&masked(&would, secret)),
                }),
                Some(live) => {
                    let live = normalize(serde_json::to_value(&live).unwrap_or_default(), secret);
                    compare(&live, &would, secret)
                }
            };
            if let Some(difference) = difference {
                found.push(ObjectDiff {
                    service: service.clone(),
                    object: object.describe(),
                    difference,
                });
            }
        }
    }
    Ok(found)
}

/// Compares two normalized objects.
pub fn compare(live: &Value, would: &Value, secret: bool) -> Option<Difference> {
    if live == would {
        return None;
    }
    let (before, after) = (
        to_yaml(&masked(live, secret)),
        to_yaml(&masked(would, secret)),
    );
    if before == after {
        return Some(Difference::SecretsChanged);
    }
    let diff = similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("live", "rendered")
        .to_string();
    Some(Difference::Changed { diff })
}

/// Drops what the server keeps for itself: status, bookkeeping metadata, and for Secrets the
/// `stringData` the server folds into `data`.
pub fn normalize(mut object: Value, secret: bool) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if secret {
            map.remove("stringData");
        }
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            metadata.remove(key);
        }
        // Which release last applied an object is bookkeeping, not configuration.
        if let Some(labels) = metadata.get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove(super::records::RELEASE_LABEL);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    object
}

/// The object with every value under a Secret's `data` replaced by the mask.
fn masked(object: &Value, secret: bool) -> Value {
    let mut object = object.clone();
    if secret && let Some(data) = object.get_mut("data").and_then(Value::as_object_mut) {
        for value in data.values_mut() {
            *value = Value::String(MASK.to_string());
        }
    }
    object
}

fn to_yaml(value: &Value) -> String {
    yaml_serde::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_bookkeeping_is_not_a_difference() {
        let live = normalize(
            json!({"metadata": {"name": "a", "resourceVersion": "7", "uid": "u", "managedFields": []},
                   "spec": {"replicas": 2}, "status": {"replicas": 2}}),
            false,
        );
        let would = normalize(
            json!({"metadata": {"name": "a", "resourceVersion": "8"}, "spec": {"replicas": 2}}),
            false,
        );
        assert_eq!(compare(&live, &would, false), None);
    }

    #[test]
    fn a_changed_field_is_a_unified_diff() {
        let live = json!({"metadata": {"name": "a"}, "spec": {"replicas": 2}});
        let would = json!({"metadata": {"name": "a"}, "spec": {"replicas": 3}});
        let Some(Difference::Changed { diff }) = compare(&live, &would, false) else {
            panic!("expected a diff");
        };
        assert!(
            diff.contains("-  replicas: 2") && diff.contains("+  replicas: 3"),
            "{diff}"
        );
    }

    #[test]
    fn secret_values_never_show() {
        let live = json!({"kind": "Secret", "data": {"PASSWORD": "b2xk"}});
        let would = json!({"kind": "Secret", "data": {"PASSWORD": "bmV3"}});
        assert_eq!(
            compare(&live, &would, true),
            Some(Difference::SecretsChanged)
        );
        let would = json!({"kind": "Secret", "data": {"PASSWORD": "bmV3", "TOKEN": "eA=="}});
        let Some(Difference::Changed { diff }) = compare(&live, &would, true) else {
            panic!("expected a diff");
        };
        assert!(!diff.contains("bmV3") && !diff.contains("eA=="), "{diff}");
        assert!(diff.contains("TOKEN"));
    }
}

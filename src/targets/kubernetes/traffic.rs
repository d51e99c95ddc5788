//! Where traffic goes: the stable Service's selector, and for canary steps the replica share of
//! each version. Pure: the target applies what these functions decide.

use std::collections::BTreeMap;

/// The label every version of a service shares (the canary selector).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The label telling versions apart (the blue/green selector).
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
/// The share of traffic a version's Deployment was last given, as a percentage: a label, not an
/// annotation. A Deployment's generation moves with every change of its annotations (the
/// controller copies them to the ReplicaSets), so a share kept as an annotation made each
/// switch a rollout the controller had to observe — and a warm revision's switch back wait for
/// it. Labels leave the generation alone.
pub const TRAFFIC_LABEL: &str = "convoy.dev/traffic";
/// Where releases before the label kept the share; read when the label is absent, and removed
/// by the next write of the share.
pub const TRAFFIC_ANNOTATION: &str = "convoy.dev/traffic";
/// The stable Service's selector, as the API server names the field: an atomic map, so a hand
/// edit of any key (`kubectl edit`, `kubectl patch`) takes the whole selector from Convoy's field
/// manager. Moving traffic is what a switch is for, so a switch takes it back (see
/// [`super::Applier::apply_owning`]).
pub const SELECTOR_FIELD: &str = ".spec.selector";

/// The Service selector: one version, or every version of the service (canary).
pub fn selector(service: &str, version: Option<&str>) -> BTreeMap<String, String> {
    let mut selector = BTreeMap::from([(NAME_LABEL.to_string(), service.to_string())]);
    if let Some(version) = version {
        selector.insert(VERSION_LABEL.to_string(), version.to_string());
    }
    selector
}

/// The merge patch giving a version's Deployment its traffic `share` (and dropping the share
/// an older release kept as an annotation; a no-op when there is none).
pub fn share_patch(share: u8) -> serde_json::Value {
    serde_json::json!({"metadata": {
        "labels": {TRAFFIC_LABEL: share.to_string()},
        "annotations": {TRAFFIC_ANNOTATION: null},
    }})
}

/// A label selector string (`k=v,k=v`) for list and watch calls.
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The new version's replicas at each canary step over `total` replicas: the share rounded up,
/// at least one more than the step before (so every step changes something), and short of all
/// of them until 100 %.
pub fn canary_counts(total: i32, steps: &[u8]) -> Vec<i32> {
    let total = total.max(1);
    let mut counts = Vec::with_capacity(steps.len());
    let mut previous = 0;
    for &percent in steps {
        let count = if percent >= 100 {
            total
        } else {
            let share = crate::plan::canary::share(total, percent);
            let ceiling = if total > 1 { total - 1 } else { total };
            share.max(previous + 1).clamp(1, ceiling)
        };
        counts.push(count);
        previous = count;
    }
    counts
}

/// The new version's replicas at step `percent` of `steps` (the share rounded up when the
/// percentage is not one of the policy's steps).
pub fn canary_count(total: i32, steps: &[u8], percent: u8) -> i32 {
    match steps.iter().position(|&p| p == percent) {
        Some(index) => canary_counts(total, steps)[index],
        None => canary_counts(total, &[percent])[0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_shares_round_up_and_every_step_changes_something() {
        assert_eq!(canary_counts(10, &[10, 50, 100]), vec![1, 5, 10]);
        assert_eq!(canary_counts(4, &[10, 50, 100]), vec![1, 2, 4]);
        // Fewer replicas than steps: a step may repeat the share before it.
        assert_eq!(canary_counts(3, &[10, 20, 100]), vec![1, 2, 3]);
        assert_eq!(canary_counts(2, &[10, 50, 100]), vec![1, 1, 2]);
    }

    #[test]
    fn a_canary_step_short_of_100_never_takes_every_replica() {
        assert_eq!(canary_counts(2, &[90, 100]), vec![1, 2]);
        assert_eq!(canary_counts(1, &[50, 100]), vec![1, 1]);
    }

    #[test]
    fn a_percentage_outside_the_steps_is_its_share() {
        assert_eq!(canary_count(10, &[10, 100], 30), 3);
        assert_eq!(canary_count(10, &[10, 100], 10), 1);
    }

    #[test]
    fn selectors_pin_a_version_or_span_them_all() {
        assert_eq!(
            selector_string(&selector("api", Some("a1"))),
            "app.kubernetes.io/name=api,app.kubernetes.io/version=a1"
        );
        assert_eq!(
            selector_string(&selector("api", None)),
            "app.kubernetes.io/name=api"
        );
    }
}

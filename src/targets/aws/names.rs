//! Pure naming and arithmetic of the AWS target: group and template names, Convoy's tags, how a
//! traffic share becomes instance counts, and the calls each plan step makes (for `--dry-run`).

use crate::plan::{Action, Step};

pub const TAG_PROJECT: &str = "convoy:project";
pub const TAG_SERVICE: &str = "convoy:service";
pub const TAG_VERSION: &str = "convoy:version";
pub const TAG_RELEASE: &str = "convoy:release";
pub const TAG_ENV: &str = "convoy:env";
/// The share of the service's traffic this group takes, 0–100 (kept by the switch).
pub const TAG_TRAFFIC: &str = "convoy:traffic";
/// The capacity the group was provisioned with: what a rollback resizes it back to.
pub const TAG_CAPACITY: &str = "convoy:capacity";
/// The launch-template version the group launches from, pinned by number.
pub const TAG_TEMPLATE_VERSION: &str = "convoy:launch-template-version";

/// `<project>-<service>-<version>`: one Auto Scaling group per version, side by side.
pub fn group_name(project: &str, service: &str, version: &str) -> String {
    format!("{project}-{service}-{version}")
}

/// One launch template per service and environment; each version of the service is a version
/// of the template.
pub fn template_name(project: &str, environment: &str, service: &str) -> String {
    format!("{project}-{environment}-{service}")
}

/// How a version is found again among a template's versions (idempotent resumes).
pub fn template_version_description(version: &str) -> String {
    format!("convoy {version}")
}

/// Instances the new group runs for `percent` of `total`: at least one, so every step changes
/// something and a 1 % canary still gets an instance.
pub fn canary_split(total: i32, percent: u8) -> (i32, i32) {
    let total = total.max(1);
    if percent >= 100 {
        return (total, 0);
    }
    let new = crate::plan::canary::share(total, percent);
    let new = new.clamp(1, total);
    (new, (total - new).max(1))
}

/// The AWS operations one plan step performs, in order, for `convoy plan` on this target:
/// `with_target_groups` when the service has target groups (else it switches by scaling).
pub fn calls_for(step: &Step, with_target_groups: bool) -> Vec<&'static str> {
    let mut calls = vec!["AutoScaling.DescribeAutoScalingGroups"];
    match &step.action {
        Action::Provision { .. } => calls.extend([
            "EC2.DescribeLaunchTemplates",
            "EC2.DescribeLaunchTemplateVersions",
            "EC2.CreateLaunchTemplateVersion",
            "AutoScaling.DescribeLifecycleHooks",
            "AutoScaling.CreateAutoScalingGroup",
            "AutoScaling.DescribePolicies",
            "AutoScaling.PutScalingPolicy (each of the old group's)",
            "AutoScaling.DescribeScheduledActions",
            "AutoScaling.PutScheduledUpdateGroupAction (each future one of the old group's)",
            "AutoScaling.DescribeAutoScalingGroups (until InService and Healthy)",
        ]),
        Action::Switch { percent, from, .. } => {
            calls.push("AutoScaling.UpdateAutoScalingGroup (size the new group)");
            calls.push("AutoScaling.DescribeAutoScalingGroups (until InService and Healthy)");
            if with_target_groups {
                calls.push("AutoScaling.AttachLoadBalancerTargetGroups");
                calls.push("ElasticLoadBalancingv2.DescribeTargetHealth (until healthy)");
                if from.is_some() {
                    calls.push(if *percent >= 100 {
                        "AutoScaling.DetachLoadBalancerTargetGroups (old group)"
                    } else {
                        "AutoScaling.UpdateAutoScalingGroup (shrink the old group)"
                    });
                }
            } else if from.is_some() {
                calls.push("AutoScaling.UpdateAutoScalingGroup (shrink the old group)");
            }
            if from.is_some() && *percent >= 100 {
                calls.push("AutoScaling.DescribeScheduledActions (old group, prewarm)");
                calls.push(
                    "AutoScaling.BatchPutScheduledUpdateGroupAction + BatchDeleteScheduledAction (prewarm actions moved, if any)",
                );
            }
            calls.push("AutoScaling.CreateOrUpdateTags (traffic shares)");
        }
        Action::Task { .. } => {}
        Action::Retire { .. } | Action::Remove { .. } => {
            if with_target_groups {
                calls.push("AutoScaling.DetachLoadBalancerTargetGroups");
            }
            calls.extend([
                "AutoScaling.UpdateAutoScalingGroup (to 0)",
                "AutoScaling.DeleteAutoScalingGroup (force)",
                "EC2.DescribeLaunchTemplates",
                "EC2.DeleteLaunchTemplateVersions (when no group uses it)",
            ]);
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_split_gives_each_step_at_least_one_instance_and_keeps_the_total() {
        assert_eq!(canary_split(4, 10), (1, 3));
        assert_eq!(canary_split(4, 50), (2, 2));
        assert_eq!(canary_split(4, 100), (4, 0));
        assert_eq!(canary_split(10, 25), (3, 7));
        // One instance: the old group keeps one until the final step.
        assert_eq!(canary_split(1, 50), (1, 1));
        assert_eq!(canary_split(0, 50), (1, 1));
    }

    #[test]
    fn names_follow_the_documented_scheme() {
        assert_eq!(group_name("shop", "web", "v1"), "shop-web-v1");
        assert_eq!(template_name("shop", "prod", "web"), "shop-prod-web");
    }

    #[test]
    fn a_switch_without_target_groups_scales_instead_of_attaching() {
        let step = Step {
            id: crate::plan::StepId(0),
            phase: crate::plan::Phase::Switch,
            service: "worker".into(),
            action: Action::Switch {
                from: Some("a".into()),
                to: "b".into(),
                percent: 100,
                bake: crate::config::Dur::secs(0),
            },
            after: vec![],
            timeout: crate::config::Dur::secs(60),
            not_before: None,
        };
        let calls = calls_for(&step, false);
        assert!(
            calls.iter().all(|c| !c.contains("TargetGroups")),
            "{calls:?}"
        );
        assert!(calls_for(&step, true).iter().any(|c| c.contains("Detach")));
    }
}

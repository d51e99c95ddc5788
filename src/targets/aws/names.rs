//! Pure naming and arithmetic of the AWS target: group, template and parameter names, Convoy's
//! tags and who owns what by them, how a traffic share becomes instance counts, and the calls each
//! plan step makes (for `--dry-run`).
//!
//! Every name of a revision's resources takes its revision id (`<version>-<digest>`). Project, environment and service names are at most
//! [`MAX_NAME_LEN`](crate::config::names::MAX_NAME_LEN) characters, so with [`MAX_REVISION_LEN`]
//! reserved every name fits AWS's limits (checked below, at compile time).

use std::collections::BTreeMap;

use crate::config::names::MAX_NAME_LEN;
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
/// On a group: its instances pass Convoy's launch hook (value: the hook's name), so only
/// instances the agent reported healthy count. Groups made before the hook have no such tag.
pub const TAG_GATE: &str = "convoy:gate";
/// A random id of one group's life, propagated to its instances: a group deleted and made again
/// under the same name (a failed revision retried) must not count the old one's instances.
pub const TAG_INCARNATION: &str = "convoy:incarnation";
/// On an instance, written by the agent: `passed`, or `failed: <reason>`.
pub const TAG_HEALTH: &str = "convoy:health";
pub const HEALTH_PASSED: &str = "passed";

/// The launch lifecycle hook on every group Convoy creates: an instance takes traffic only after
/// the agent completed it with CONTINUE (its `prepare` and health command passed).
pub const LAUNCH_HOOK: &str = "convoy-launch";

/// Room reserved for a revision id in every name (a version is at most 12 characters).
pub const MAX_REVISION_LEN: usize = 64;
/// AWS's limits: Auto Scaling group names, launch template names, tag values, parameter names.
const MAX_GROUP_NAME: usize = 255;
const MAX_TEMPLATE_NAME: usize = 128;
const MAX_PARAMETER_NAME: usize = 1011 - "arn:aws:ssm:ap-southeast-1:123456789012:parameter".len();
/// An environment variable's name as a parameter's last segment: generous, and still checked.
pub const MAX_VARIABLE_LEN: usize = 128;

const _: () = {
    let group = 3 * MAX_NAME_LEN + 3 + MAX_REVISION_LEN;
    // Group names are tag values too (`Name`), whose limit, 256, is larger.
    assert!(group <= MAX_GROUP_NAME);
    assert!(3 * MAX_NAME_LEN + 2 <= MAX_TEMPLATE_NAME);
    let parameter = "/convoy".len() + 3 * (1 + MAX_NAME_LEN) + 1 + MAX_REVISION_LEN;
    assert!(parameter + 1 + MAX_VARIABLE_LEN <= MAX_PARAMETER_NAME);
};

/// `<project>-<environment>-<service>-<revision>`: one Auto Scaling group per revision, side by
/// side, and never the same name in two environments of a project (the tags decide who owns a
/// group all the same: `a-b` + `c` and `a` + `b-c` would meet).
pub fn group_name(project: &str, environment: &str, service: &str, revision: &str) -> String {
    format!("{project}-{environment}-{service}-{revision}")
}

/// One launch template per service and environment; each revision of the service is a version
/// of the template.
pub fn template_name(project: &str, environment: &str, service: &str) -> String {
    format!("{project}-{environment}-{service}")
}

/// How a revision is found again among a template's versions (idempotent resumes).
pub fn template_version_description(revision: &str) -> String {
    format!("convoy {revision}")
}

/// `/convoy/<project>/<environment>/<service>/<revision>`: the SSM path under which a revision's
/// secrets are kept, one SecureString per environment variable. Names cannot hold `/`, so two
/// environments or projects never share a path.
pub fn parameter_path(project: &str, environment: &str, service: &str, revision: &str) -> String {
    format!("/convoy/{project}/{environment}/{service}/{revision}")
}

/// `/convoy/<project>/<environment>/flags`: the SSM String parameter holding the environment's
/// live flags as one JSON object (a service named `flags` keeps its secrets a level deeper).
pub fn flags_parameter(project: &str, environment: &str) -> String {
    format!("/convoy/{project}/{environment}/flags")
}

/// Where the agent on an instance keeps `<service>/versions/<v>` and `flags.json`.
pub fn instance_root(project: &str) -> String {
    format!("/srv/{project}")
}

/// The service's environment file on an instance (mode 0600, written by the agent).
pub fn instance_env_file(service: &str) -> String {
    format!("/etc/convoy/{service}.env")
}

/// Whether a revision id fits the room the names reserve for it.
pub fn revision_fits(revision: &str) -> bool {
    !revision.is_empty() && revision.len() <= MAX_REVISION_LEN
}

/// Who made a resource, from its tags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub project: Option<String>,
    pub environment: Option<String>,
    pub release: Option<u64>,
}

impl Owner {
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Owner {
        Owner {
            project: tags.get(TAG_PROJECT).cloned(),
            environment: tags.get(TAG_ENV).cloned(),
            release: tags.get(TAG_RELEASE).and_then(|r| r.parse().ok()),
        }
    }

    /// Made by this project's environment: the only resources Convoy changes or deletes.
    pub fn is(&self, project: &str, environment: &str) -> bool {
        self.project.as_deref() == Some(project) && self.environment.as_deref() == Some(environment)
    }

    /// For messages: `project shop, environment production`, or that it has no Convoy tags.
    pub fn describe(&self) -> String {
        match (&self.project, &self.environment) {
            (Some(project), Some(environment)) => {
                format!("project `{project}`, environment `{environment}`")
            }
            (Some(project), None) => format!("project `{project}` (no `{TAG_ENV}` tag)"),
            _ => "no Convoy tags".to_string(),
        }
    }
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
        Action::Task { .. } => calls.extend([
            "EC2.DescribeInstances (the group's instances the agent passed)",
            "SSM.ListCommands (a resumed task already sent)",
            "SSM.SendCommand (AWS-RunShellScript: convoy host task, on one instance)",
            "SSM.GetCommandInvocation (until Success, Failed, TimedOut or Cancelled)",
        ]),
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
        assert_eq!(group_name("shop", "prod", "web", "v1"), "shop-prod-web-v1");
        assert_eq!(template_name("shop", "prod", "web"), "shop-prod-web");
        assert_eq!(
            parameter_path("shop", "prod", "web", "v1"),
            "/convoy/shop/prod/web/v1"
        );
    }

    /// Two environments of a project, or two projects, never meet in a name; and where the
    /// hyphens could make them meet, the tags still tell them apart.
    #[test]
    fn names_include_the_environment_and_tags_decide_the_owner() {
        assert_ne!(
            group_name("shop", "staging", "web", "v1"),
            group_name("shop", "production", "web", "v1")
        );
        assert_eq!(
            group_name("a-b", "c", "web", "v1"),
            group_name("a", "b-c", "web", "v1")
        );
        let tags = BTreeMap::from([
            (TAG_PROJECT.to_string(), "a".to_string()),
            (TAG_ENV.to_string(), "b-c".to_string()),
            (TAG_RELEASE.to_string(), "7".to_string()),
        ]);
        let owner = Owner::from_tags(&tags);
        assert!(owner.is("a", "b-c"));
        assert!(!owner.is("a-b", "c"));
        assert_eq!(owner.release, Some(7));
        assert_eq!(Owner::default().describe(), "no Convoy tags");
    }

    #[test]
    fn the_longest_names_fit_aws_limits() {
        let long = "a".repeat(MAX_NAME_LEN);
        let revision = "r".repeat(MAX_REVISION_LEN);
        assert!(group_name(&long, &long, &long, &revision).len() <= MAX_GROUP_NAME);
        assert!(template_name(&long, &long, &long).len() <= MAX_TEMPLATE_NAME);
        assert!(revision_fits(&revision));
        assert!(!revision_fits(&format!("{revision}r")));
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
            after_all_below: None,
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

//! Provision: a launch-template version for the service version (pinned by number), a new group
//! `<project>-<service>-<version>` beside the old one, sized like it, with its lifecycle hooks,
//! scaling policies and scheduled actions copied; then wait until it is healthy — or delete it,
//! so a failure leaves no debris, and say why from the group's scaling activities.

use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleHookSpecification};
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
};

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;
use crate::targets::aws::groups::{Group, group_tag};
use crate::targets::aws::names::*;

/// What a new group is made from.
struct NewGroup<'a> {
    service: &'a str,
    version: &'a str,
    name: &'a str,
    /// The group serving now, whose size, settings and hooks the new one copies.
    old: Option<&'a Group>,
    template_version: i64,
    release: u64,
    hooks: Vec<LifecycleHookSpecification>,
}

/// A health-check grace period for a first group, when there is no old group to copy.
const DEFAULT_GRACE: i32 = 300;

impl AwsTarget {
    pub(super) async fn provision(
        &self,
        service: &str,
        version: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        let name = self.group_name(service, version);
        let groups = self.groups_of(service).await?;
        if groups.iter().any(|g| g.name == name) {
            // A resumed provision: the group is there; only its health gate is left.
            return self.wait_or_delete(service, version, &name, budget).await;
        }
        if let Some(existing) = self.deleted_or_foreign(service, &name, budget).await? {
            return Err(self.failed(
                service,
                format!("provision of {version}"),
                format!(
                    "group {name} already exists for environment `{}`; group names are per project, so two environments cannot share one account and region",
                    existing.environment
                ),
            ));
        }
        let old = groups
            .iter()
            .filter(|g| g.traffic > 0)
            .max_by_key(|g| g.traffic);
        // Hooks go into the creation itself: one added after it would miss the first launches.
        let hooks = match old {
            Some(old) => self.lifecycle_hooks(service, &old.name).await?,
            None => Vec::new(),
        };
        let release = self.release_number().await;
        let template_version = self.template_version(service, version, release).await?;
        let created = self
            .create_group(NewGroup {
                service,
                version,
                name: &name,
                old,
                template_version,
                release,
                hooks,
            })
            .await;
        if let Err(error) = created {
            // No group points at the new template version: it is debris unless removed now.
            let _ = self
                .delete_template_version(service, template_version)
                .await;
            return Err(error);
        }
        if let Some(old) = old {
            self.copy_scaling(service, &old.name, &name).await?;
        }
        self.wait_or_delete(service, version, &name, budget).await
    }

    /// A group of that name that belongs to another environment; a group of ours still being
    /// deleted (a version retired a moment ago and now provisioned again) is waited out.
    async fn deleted_or_foreign(
        &self,
        service: &str,
        name: &str,
        budget: Duration,
    ) -> Result<Option<Group>, TargetError> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            match self.group(service, name).await? {
                Some(group) if group.deleting && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(self.poll).await;
                }
                Some(group) if group.deleting => {
                    return Err(self.failed(
                        service,
                        format!("provision of {}", group.version),
                        format!("group {name} is still being deleted; try again in a few minutes"),
                    ));
                }
                other => return Ok(other),
            }
        }
    }

    /// Waits for the group's health; a group that never becomes healthy is deleted at once.
    async fn wait_or_delete(
        &self,
        service: &str,
        version: &str,
        name: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        let Err(detail) = self.wait_ready(name, budget, true).await else {
            return Ok(());
        };
        let cleanup = match self.delete_group(service, version).await {
            Ok(()) => "the group was deleted".to_string(),
            Err(error) => format!("deleting the group failed too: {error}"),
        };
        Err(TargetError::Unhealthy {
            service: service.to_string(),
            version: version.to_string(),
            detail: format!("group {name} did not become healthy: {detail}; {cleanup}"),
        })
    }

    /// The template version for `version`: found again by its description when a resumed
    /// provision already made it, created otherwise.
    async fn template_version(
        &self,
        service: &str,
        version: &str,
        release: u64,
    ) -> Result<i64, TargetError> {
        let template = template_name(&self.project, &self.environment, service);
        let description = template_version_description(version);
        let action = || format!("launch template {template} for {version}");
        let exists = match self
            .clients
            .ec2
            .describe_launch_templates()
            .launch_template_names(&template)
            .send()
            .await
        {
            Ok(output) => !output.launch_templates.unwrap_or_default().is_empty(),
            Err(error) if error.code().is_some_and(|c| c.contains("NotFound")) => false,
            Err(error) => return Err(self.failed(service, action(), describe(&error))),
        };
        if exists {
            let mut pages = self
                .clients
                .ec2
                .describe_launch_template_versions()
                .launch_template_name(&template)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| self.failed(service, action(), describe(&e)))?;
                let found = page
                    .launch_template_versions
                    .unwrap_or_default()
                    .into_iter()
                    .find(|v| v.version_description.as_deref() == Some(description.as_str()));
                if let Some(number) = found.and_then(|v| v.version_number) {
                    return Ok(number);
                }
            }
        }
        let script = self
            .user_data
            .user_data(service, version, release)
            .await
            .map_err(|detail| self.failed(service, format!("user data of {version}"), detail))?;
        let data = self.template_data(service, version, release, &script);
        let number = if exists {
            let output = self
                .clients
                .ec2
                .create_launch_template_version()
                .launch_template_name(&template)
                .version_description(&description)
                .launch_template_data(data)
                .send()
                .await
                .map_err(|e| self.failed(service, action(), describe(&e)))?;
            output
                .launch_template_version
                .and_then(|v| v.version_number)
        } else {
            let output = self
                .clients
                .ec2
                .create_launch_template()
                .launch_template_name(&template)
                .version_description(&description)
                .launch_template_data(data)
                .send()
                .await
                .map_err(|e| self.failed(service, action(), describe(&e)))?;
            output.launch_template.and_then(|t| t.latest_version_number)
        };
        number
            .ok_or_else(|| self.failed(service, action(), "no version number in the answer".into()))
    }

    fn template_data(
        &self,
        service: &str,
        version: &str,
        release: u64,
        script: &str,
    ) -> RequestLaunchTemplateData {
        let tag = |key: &str, value: &str| {
            aws_sdk_ec2::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
        };
        let tags = LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(ResourceType::Instance)
            .tags(tag("Name", &self.group_name(service, version)))
            .tags(tag(TAG_PROJECT, &self.project))
            .tags(tag(TAG_SERVICE, service))
            .tags(tag(TAG_VERSION, version))
            .tags(tag(TAG_RELEASE, &release.to_string()))
            .tags(tag(TAG_ENV, &self.environment))
            .build();
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(&self.resolved.ami)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .set_security_group_ids(
                (!self.resolved.security_groups.is_empty())
                    .then(|| self.resolved.security_groups.clone()),
            )
            .user_data(aws_smithy_types::base64::encode(script))
            .tag_specifications(tags);
        if let Some(profile) = &self.instance_profile {
            let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
            let spec = if profile.starts_with("arn:") {
                spec.arn(profile)
            } else {
                spec.name(profile)
            };
            data = data.iam_instance_profile(spec.build());
        }
        data.build()
    }

    async fn create_group(&self, group: NewGroup<'_>) -> Result<(), TargetError> {
        let NewGroup {
            service,
            version,
            name,
            old,
            template_version,
            release,
            hooks,
        } = group;
        let first = self.capacity.get(service).copied().unwrap_or(1).max(1);
        let capacity = old.map_or(first, |o| o.desired.max(1));
        // A canary's new group starts at the first step's size, not at full size only to be
        // shrunk a minute later; the capacity tag keeps the full size for the last step.
        let desired = match (old, self.first_step) {
            (Some(_), Some(percent)) => canary_split(capacity, percent).0,
            _ => capacity,
        };
        let max = match old {
            Some(old) => old.max.max(capacity),
            None => self.max_capacity.unwrap_or(capacity).max(capacity),
        };
        let min = old.map_or(desired, |o| o.min.min(desired));
        let subnets = self.resolved.subnets.join(",");
        let health_check = old
            .and_then(|o| o.health_check_type.clone())
            .unwrap_or_else(|| {
                if self.target_groups(service).is_empty() {
                    "EC2"
                } else {
                    "ELB"
                }
                .to_string()
            });
        let tags = [
            (TAG_PROJECT, self.project.clone(), true),
            (TAG_SERVICE, service.to_string(), true),
            (TAG_VERSION, version.to_string(), true),
            (TAG_RELEASE, release.to_string(), true),
            (TAG_ENV, self.environment.clone(), true),
            (TAG_TRAFFIC, "0".to_string(), false),
            (TAG_CAPACITY, capacity.to_string(), false),
            (TAG_TEMPLATE_VERSION, template_version.to_string(), false),
        ];
        let template = LaunchTemplateSpecification::builder()
            .launch_template_name(template_name(&self.project, &self.environment, service))
            .version(template_version.to_string())
            .build();
        self.clients
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(template)
            .min_size(min)
            .max_size(max)
            .desired_capacity(desired)
            .vpc_zone_identifier(old.and_then(|o| o.subnets.clone()).unwrap_or(subnets))
            .health_check_type(health_check)
            .health_check_grace_period(old.and_then(|o| o.grace).unwrap_or(DEFAULT_GRACE))
            .set_lifecycle_hook_specification_list((!hooks.is_empty()).then_some(hooks))
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v, propagate)| group_tag(name, k, v, *propagate))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| self.failed(service, format!("create group {name}"), describe(&e)))?;
        Ok(())
    }

    /// The old group's lifecycle hooks, as specifications for the new group's creation.
    async fn lifecycle_hooks(
        &self,
        service: &str,
        from: &str,
    ) -> Result<Vec<LifecycleHookSpecification>, TargetError> {
        let output = self
            .clients
            .autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(from)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    service,
                    format!("copy lifecycle hooks from {from}"),
                    describe(&e),
                )
            })?;
        Ok(output
            .lifecycle_hooks
            .unwrap_or_default()
            .into_iter()
            .map(|hook| {
                LifecycleHookSpecification::builder()
                    .set_lifecycle_hook_name(hook.lifecycle_hook_name)
                    .set_lifecycle_transition(hook.lifecycle_transition)
                    .set_notification_metadata(hook.notification_metadata)
                    .set_heartbeat_timeout(hook.heartbeat_timeout)
                    .set_default_result(hook.default_result)
                    .set_notification_target_arn(hook.notification_target_arn)
                    .set_role_arn(hook.role_arn)
                    .build()
            })
            .collect())
    }

    /// The old group's scaling policies and its future scheduled actions, on the new group:
    /// without them the new version would not scale like the old one did.
    async fn copy_scaling(&self, service: &str, from: &str, to: &str) -> Result<(), TargetError> {
        let fail =
            |what: &str, e: String| self.failed(service, format!("copy {what} from {from}"), e);
        let policies = self
            .clients
            .autoscaling
            .describe_policies()
            .auto_scaling_group_name(from)
            .send()
            .await
            .map_err(|e| fail("scaling policies", describe(&e)))?;
        for policy in policies.scaling_policies.unwrap_or_default() {
            self.clients
                .autoscaling
                .put_scaling_policy()
                .auto_scaling_group_name(to)
                .set_policy_name(policy.policy_name)
                .set_policy_type(policy.policy_type)
                .set_adjustment_type(policy.adjustment_type)
                .set_min_adjustment_magnitude(policy.min_adjustment_magnitude)
                .set_scaling_adjustment(policy.scaling_adjustment)
                .set_cooldown(policy.cooldown)
                .set_step_adjustments(policy.step_adjustments)
                .set_metric_aggregation_type(policy.metric_aggregation_type)
                .set_estimated_instance_warmup(policy.estimated_instance_warmup)
                .set_target_tracking_configuration(policy.target_tracking_configuration)
                .set_enabled(policy.enabled)
                .set_predictive_scaling_configuration(policy.predictive_scaling_configuration)
                .send()
                .await
                .map_err(|e| fail("a scaling policy", describe(&e)))?;
        }
        let actions = self
            .clients
            .autoscaling
            .describe_scheduled_actions()
            .auto_scaling_group_name(from)
            .send()
            .await
            .map_err(|e| fail("scheduled actions", describe(&e)))?;
        let now = self.clock.now().as_second();
        for action in actions.scheduled_update_group_actions.unwrap_or_default() {
            let start = action.start_time.filter(|t| t.secs() > now);
            if start.is_none() && action.recurrence.is_none() {
                continue; // a one-off action that has fired already
            }
            self.clients
                .autoscaling
                .put_scheduled_update_group_action()
                .auto_scaling_group_name(to)
                .set_scheduled_action_name(action.scheduled_action_name)
                .set_start_time(start)
                .set_end_time(action.end_time)
                .set_recurrence(action.recurrence)
                .set_min_size(action.min_size)
                .set_max_size(action.max_size)
                .set_desired_capacity(action.desired_capacity)
                .set_time_zone(action.time_zone)
                .send()
                .await
                .map_err(|e| fail("a scheduled action", describe(&e)))?;
        }
        Ok(())
    }
}

//! The old group's settings that a new group must share to behave like it: mixed-instances
//! policy (pointed at the new template version), termination policies, capacity rebalance,
//! default instance warmup, instance maintenance policy, cooldown, maximum instance lifetime,
//! scale-in protection, the operator's own tags, and its warm pool. Read from the old group's
//! description as a plain value; applied to the new group's creation, the warm pool after it.

use aws_sdk_autoscaling::operation::create_auto_scaling_group::builders::CreateAutoScalingGroupFluentBuilder;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, InstanceMaintenancePolicy, LaunchTemplate, LaunchTemplateSpecification,
    MixedInstancesPolicy, WarmPoolConfiguration,
};

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;

/// What is copied from the group serving now. `Default` is a first group's: nothing to copy.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Settings {
    pub mixed_instances: Option<MixedInstancesPolicy>,
    pub termination_policies: Option<Vec<String>>,
    pub capacity_rebalance: Option<bool>,
    pub default_instance_warmup: Option<i32>,
    pub instance_maintenance: Option<InstanceMaintenancePolicy>,
    pub default_cooldown: Option<i32>,
    pub max_instance_lifetime: Option<i32>,
    pub protected_from_scale_in: Option<bool>,
    /// The operator's tags (not Convoy's `convoy:…`, not AWS's `aws:…`): key, value, propagate.
    pub tags: Vec<(String, String, bool)>,
    pub warm_pool: Option<WarmPoolConfiguration>,
}

impl Settings {
    pub fn of(old: &AutoScalingGroup) -> Settings {
        let tags = old
            .tags()
            .iter()
            .filter_map(|t| {
                let key = t.key.clone()?;
                let ours = key.starts_with("convoy:") || key.starts_with("aws:");
                (!ours).then(|| {
                    let value = t.value.clone().unwrap_or_default();
                    (key, value, t.propagate_at_launch.unwrap_or(false))
                })
            })
            .collect();
        Settings {
            mixed_instances: old.mixed_instances_policy.clone(),
            termination_policies: old.termination_policies.clone(),
            capacity_rebalance: old.capacity_rebalance,
            default_instance_warmup: old.default_instance_warmup,
            instance_maintenance: old.instance_maintenance_policy.clone(),
            default_cooldown: old.default_cooldown,
            max_instance_lifetime: old.max_instance_lifetime,
            protected_from_scale_in: old.new_instances_protected_from_scale_in,
            tags,
            warm_pool: old.warm_pool_configuration.clone(),
        }
    }

    /// The new group's creation with these settings, launching from `template`: as the
    /// mixed-instances policy's template when the old group had one (its overrides and
    /// instances distribution kept), as the group's template otherwise.
    pub fn apply(
        &self,
        create: CreateAutoScalingGroupFluentBuilder,
        template: LaunchTemplateSpecification,
    ) -> CreateAutoScalingGroupFluentBuilder {
        let create = match &self.mixed_instances {
            Some(mixed) => {
                let overrides = mixed
                    .launch_template
                    .as_ref()
                    .and_then(|t| t.overrides.clone());
                let launch = LaunchTemplate::builder()
                    .launch_template_specification(template)
                    .set_overrides(overrides)
                    .build();
                let policy = MixedInstancesPolicy::builder()
                    .launch_template(launch)
                    .set_instances_distribution(mixed.instances_distribution.clone())
                    .build();
                create.mixed_instances_policy(policy)
            }
            None => create.launch_template(template),
        };
        create
            .set_termination_policies(self.termination_policies.clone())
            .set_capacity_rebalance(self.capacity_rebalance)
            .set_default_instance_warmup(self.default_instance_warmup)
            .set_instance_maintenance_policy(self.instance_maintenance.clone())
            .set_default_cooldown(self.default_cooldown)
            .set_max_instance_lifetime(self.max_instance_lifetime)
            .set_new_instances_protected_from_scale_in(self.protected_from_scale_in)
    }
}

impl AwsTarget {
    /// The old group as AWS describes it, for its settings.
    pub(super) async fn settings_of(
        &self,
        service: &str,
        name: &str,
    ) -> Result<Settings, TargetError> {
        let output = self
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| self.failed(service, format!("read {name}'s settings"), describe(&e)))?;
        Ok(output
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
            .map(Settings::of)
            .unwrap_or_default())
    }

    /// The old group's warm pool, on the new group (right after its creation).
    pub(super) async fn copy_warm_pool(
        &self,
        service: &str,
        settings: &Settings,
        to: &str,
    ) -> Result<(), TargetError> {
        let Some(pool) = &settings.warm_pool else {
            return Ok(());
        };
        let put = self
            .clients
            .autoscaling
            .put_warm_pool()
            .auto_scaling_group_name(to)
            .set_max_group_prepared_capacity(pool.max_group_prepared_capacity)
            .set_min_size(pool.min_size)
            .set_pool_state(pool.pool_state.clone())
            .set_instance_reuse_policy(pool.instance_reuse_policy.clone());
        self.settled(|| put.clone().send()).await.map_err(|e| {
            self.failed(service, format!("copy the warm pool to {to}"), describe(&e))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_autoscaling::types::{
        InstancesDistribution, LaunchTemplateOverrides, TagDescription,
    };

    #[test]
    fn the_operators_tags_are_copied_and_convoys_and_aws_are_not() {
        let tag = |key: &str, propagate: bool| {
            TagDescription::builder()
                .key(key)
                .value("v")
                .propagate_at_launch(propagate)
                .build()
        };
        let old = AutoScalingGroup::builder()
            .tags(tag("team", true))
            .tags(tag("convoy:version", true))
            .tags(tag("aws:cloudformation:stack-name", false))
            .tags(tag("cost-center", false))
            .capacity_rebalance(true)
            .default_instance_warmup(120)
            .build();
        let settings = Settings::of(&old);
        assert_eq!(
            settings.tags,
            vec![
                ("team".to_string(), "v".to_string(), true),
                ("cost-center".to_string(), "v".to_string(), false)
            ]
        );
        assert_eq!(
            (
                settings.capacity_rebalance,
                settings.default_instance_warmup
            ),
            (Some(true), Some(120))
        );
    }

    #[test]
    fn a_mixed_instances_policy_launches_from_the_new_template_version() {
        let old_template = LaunchTemplateSpecification::builder()
            .launch_template_name("shop-prod-web")
            .version("3")
            .build();
        let mixed = MixedInstancesPolicy::builder()
            .launch_template(
                LaunchTemplate::builder()
                    .launch_template_specification(old_template)
                    .overrides(
                        LaunchTemplateOverrides::builder()
                            .instance_type("m7g.large")
                            .build(),
                    )
                    .build(),
            )
            .instances_distribution(
                InstancesDistribution::builder()
                    .on_demand_percentage_above_base_capacity(25)
                    .build(),
            )
            .build();
        let settings = Settings {
            mixed_instances: Some(mixed),
            ..Settings::default()
        };
        let new_template = LaunchTemplateSpecification::builder()
            .launch_template_name("shop-prod-web")
            .version("4")
            .build();
        let config = aws_sdk_autoscaling::Config::builder()
            .behavior_version(aws_sdk_autoscaling::config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_autoscaling::Client::from_conf(config);
        let create = settings.apply(client.create_auto_scaling_group(), new_template);
        let policy = create.get_mixed_instances_policy().clone().unwrap();
        let launch = policy.launch_template.unwrap();
        assert_eq!(
            launch.launch_template_specification.and_then(|s| s.version),
            Some("4".to_string())
        );
        assert_eq!(launch.overrides.unwrap().len(), 1);
        assert_eq!(
            policy
                .instances_distribution
                .and_then(|d| d.on_demand_percentage_above_base_capacity),
            Some(25)
        );
        assert!(create.get_launch_template().is_none(), "not both");
    }
}

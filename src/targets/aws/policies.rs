//! What makes a new group scale and launch like the old one: its scaling policies, its future
//! scheduled actions and the operator's lifecycle hooks, plus Convoy's own launch hook.
//! Target-tracking and predictive policies are copied as they are (AWS makes their alarms);
//! step and simple scaling policies act only through CloudWatch alarms, which Convoy does not
//! copy, so a group carrying one is refused before anything changes rather than copied into a
//! policy that would never fire.

use aws_sdk_autoscaling::types::{LifecycleHookSpecification, ScalingPolicy};

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::{AwsError, describe};
use crate::targets::aws::names::LAUNCH_HOOK;

/// The policy types that need alarms of their own.
const NEEDS_ALARMS: [&str; 2] = ["SimpleScaling", "StepScaling"];

/// The first policy that cannot be copied, if any.
pub(super) fn uncopyable(group: &str, policies: &[ScalingPolicy]) -> Option<AwsError> {
    policies.iter().find_map(|policy| {
        // A policy without a type is a simple one: that is AWS's default.
        let kind = policy
            .policy_type
            .clone()
            .unwrap_or_else(|| "SimpleScaling".to_string());
        NEEDS_ALARMS
            .contains(&kind.as_str())
            .then(|| AwsError::UncopyablePolicy {
                group: group.to_string(),
                policy: policy.policy_name.clone().unwrap_or_default(),
                policy_type: kind,
            })
    })
}

impl AwsTarget {
    /// The old group's scaling policies, all of them copyable, or the error that stops the
    /// provision before it changes anything.
    pub(super) async fn copyable_policies(
        &self,
        service: &str,
        from: &str,
    ) -> Result<Vec<ScalingPolicy>, TargetError> {
        let output = self
            .clients
            .autoscaling
            .describe_policies()
            .auto_scaling_group_name(from)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    service,
                    format!("read the scaling policies of {from}"),
                    describe(&e),
                )
            })?;
        let policies = output.scaling_policies.unwrap_or_default();
        match uncopyable(from, &policies) {
            Some(error) => Err(TargetError::failed(
                service,
                &format!("copy the scaling policies of {from}"),
                error,
            )),
            None => Ok(policies),
        }
    }

    /// Convoy's launch hook, and the old group's other hooks, for the new group's creation:
    /// a hook added after it would miss the first launches.
    pub(super) async fn lifecycle_hooks(
        &self,
        service: &str,
        from: Option<&str>,
    ) -> Result<Vec<LifecycleHookSpecification>, TargetError> {
        let heartbeat = i32::try_from(self.launch_timeout.as_secs()).unwrap_or(7200);
        let mut hooks = vec![
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name(LAUNCH_HOOK)
                .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                .heartbeat_timeout(heartbeat.clamp(30, 7200))
                .default_result("ABANDON")
                .build(),
        ];
        let Some(from) = from else {
            return Ok(hooks);
        };
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
        for hook in output.lifecycle_hooks.unwrap_or_default() {
            if hook.lifecycle_hook_name.as_deref() == Some(LAUNCH_HOOK) {
                continue; // ours, made afresh above
            }
            let spec = LifecycleHookSpecification::builder()
                .set_lifecycle_hook_name(hook.lifecycle_hook_name)
                .set_lifecycle_transition(hook.lifecycle_transition)
                .set_notification_metadata(hook.notification_metadata)
                .set_heartbeat_timeout(hook.heartbeat_timeout)
                .set_default_result(hook.default_result)
                .set_notification_target_arn(hook.notification_target_arn)
                .set_role_arn(hook.role_arn)
                .build();
            hooks.push(spec);
        }
        Ok(hooks)
    }

    /// `policies` (checked copyable) and the old group's future scheduled actions, on the new
    /// group: without them the new revision would not scale like the old one did.
    pub(super) async fn copy_scaling(
        &self,
        service: &str,
        from: &str,
        to: &str,
        policies: Vec<ScalingPolicy>,
    ) -> Result<(), TargetError> {
        let fail =
            |what: &str, e: String| self.failed(service, format!("copy {what} from {from}"), e);
        for policy in policies {
            let put = self
                .clients
                .autoscaling
                .put_scaling_policy()
                .auto_scaling_group_name(to)
                .set_policy_name(policy.policy_name)
                .set_policy_type(policy.policy_type)
                .set_estimated_instance_warmup(policy.estimated_instance_warmup)
                .set_target_tracking_configuration(policy.target_tracking_configuration)
                .set_enabled(policy.enabled)
                .set_predictive_scaling_configuration(policy.predictive_scaling_configuration);
            // The group was created a moment ago: it may not be visible to this call yet.
            self.settled(|| put.clone().send())
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
            let put = self
                .clients
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
                .set_time_zone(action.time_zone);
            self.settled(|| put.clone().send())
                .await
                .map_err(|e| fail("a scheduled action", describe(&e)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, kind: Option<&str>) -> ScalingPolicy {
        ScalingPolicy::builder()
            .policy_name(name)
            .set_policy_type(kind.map(str::to_string))
            .build()
    }

    #[test]
    fn step_and_simple_policies_are_refused_and_target_tracking_ones_are_not() {
        let fine = [
            policy("cpu", Some("TargetTrackingScaling")),
            policy("forecast", Some("PredictiveScaling")),
        ];
        assert!(uncopyable("g", &fine).is_none());
        for (kind, shown) in [
            (Some("StepScaling"), "StepScaling"),
            (Some("SimpleScaling"), "SimpleScaling"),
            (None, "SimpleScaling"),
        ] {
            let mut policies = fine.to_vec();
            policies.push(policy("add-one", kind));
            let error = uncopyable("shop-prod-web-v1", &policies).expect("refused");
            let text = error.to_string();
            assert!(text.contains(shown) && text.contains("`add-one`"), "{text}");
            let help = crate::diagnostic::Diagnose::help(&error).unwrap();
            assert!(help.contains("target-tracking"), "{help}");
            assert!(help.contains("delete-policy --auto-scaling-group-name shop-prod-web-v1"));
        }
    }
}

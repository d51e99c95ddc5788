//! `Faults`: an SDK interceptor of the tests' own that rewrites moto's answers for chosen
//! groups, because moto reports every instance InService and Healthy at once, records no scaling
//! activities and never throttles. Test infrastructure, not product.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_autoscaling::operation::create_auto_scaling_group::CreateAutoScalingGroupInput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::{
    DescribeAutoScalingGroupsInput, DescribeAutoScalingGroupsOutput,
};
use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
use aws_sdk_autoscaling::types::{Activity, ScalingActivityStatusCode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Answers rewritten for chosen groups: instances Unhealthy, a failed scaling activity; and a
/// signal when an operation is about to be called (to kill a run at a chosen point).
#[derive(Clone, Default)]
pub(super) struct Faults {
    pub(super) sick: Arc<Mutex<BTreeMap<String, Option<String>>>>,
    pub(super) watch: Arc<Mutex<Option<Watch>>>,
    /// Groups whose instances report Unhealthy for this many more reads by name (slow to warm up).
    pub(super) slow: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Failed scaling activities from long ago, of otherwise healthy groups.
    pub(super) stale: Arc<Mutex<BTreeMap<String, String>>>,
    /// Lifecycle hooks each group was created with (moto ignores them in CreateAutoScalingGroup).
    pub(super) created_hooks: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    /// Operations answered `Throttling` (HTTP 400) this many more times.
    pub(super) throttle: Arc<Mutex<BTreeMap<String, u32>>>,
}

/// Marks a DescribeAutoScalingGroups by name in the operation's config bag.
#[derive(Debug, Clone)]
struct ByName;

impl aws_smithy_types::config_bag::Storable for ByName {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// An operation to watch for, and whom to tell.
type Watch = (String, Arc<tokio::sync::Notify>);

impl Faults {
    /// Instances of `group` report Unhealthy; with `cause`, a failed scaling activity too.
    pub(super) fn sicken(&self, group: &str, cause: Option<&str>) {
        self.sick
            .lock()
            .unwrap()
            .insert(group.to_string(), cause.map(str::to_string));
    }

    /// Notified when `operation` (e.g. `AttachLoadBalancerTargetGroups`) is about to be sent.
    pub(super) fn on(&self, operation: &str) -> Arc<tokio::sync::Notify> {
        let notify = Arc::new(tokio::sync::Notify::new());
        *self.watch.lock().unwrap() = Some((operation.to_string(), notify.clone()));
        notify
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "convoy-test-faults"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let by_name = context
            .input()
            .downcast_ref::<DescribeAutoScalingGroupsInput>()
            .is_some_and(|input| input.auto_scaling_group_names.is_some());
        if let Some(create) = context
            .input()
            .downcast_ref::<CreateAutoScalingGroupInput>()
        {
            let hooks = create
                .lifecycle_hook_specification_list
                .iter()
                .flatten()
                .filter_map(|hook| hook.lifecycle_hook_name.clone())
                .collect();
            let group = create.auto_scaling_group_name.clone().unwrap_or_default();
            self.created_hooks.lock().unwrap().insert(group, hooks);
        }
        if by_name {
            // The input is gone by completion time: leave a note for it.
            cfg.interceptor_state().store_put(ByName);
        }
        let name = cfg.load::<Metadata>().map(|m| m.name().to_string());
        if let Some((operation, notify)) = self.watch.lock().unwrap().as_ref()
            && name.as_deref() == Some(operation.as_str())
        {
            notify.notify_one();
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(name) = cfg.load::<Metadata>().map(|m| m.name().to_string()) else {
            return Ok(());
        };
        let mut throttle = self.throttle.lock().unwrap();
        if let Some(left) = throttle.get_mut(&name).filter(|left| **left > 0) {
            *left -= 1;
            // What the Query APIs answer when the account's request bucket is empty.
            let body = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                <Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>";
            let response = context.response_mut();
            *response.status_mut() = 400u16.try_into().expect("a status");
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(body);
        }
        Ok(())
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let sick = self.sick.lock().unwrap().clone();
        // Slow groups warm up over reads by name (the health waits), not over listings.
        let by_name = cfg.load::<ByName>().is_some();
        let Some(Ok(output)) = context.output_or_error_mut() else {
            return Ok(());
        };
        if let Some(out) = output.downcast_mut::<DescribeAutoScalingGroupsOutput>() {
            for group in out.auto_scaling_groups.iter_mut().flatten() {
                let name = group.auto_scaling_group_name.clone().unwrap_or_default();
                let mut slow = self.slow.lock().unwrap();
                let warming = slow
                    .get_mut(&name)
                    .filter(|left| by_name && **left > 0)
                    .map(|left| {
                        *left -= 1;
                    });
                if sick.contains_key(&name) || warming.is_some() {
                    for instance in group.instances.iter_mut().flatten() {
                        instance.health_status = Some("Unhealthy".to_string());
                    }
                }
            }
        }
        if let Some(out) = output.downcast_mut::<DescribeScalingActivitiesOutput>() {
            let stale = self.stale.lock().unwrap().clone();
            let failures = sick
                .iter()
                .filter_map(|(group, cause)| Some((group, cause.as_ref()?)))
                .chain(stale.iter());
            for (group, cause) in failures {
                let activity = Activity::builder()
                    .activity_id("injected")
                    .auto_scaling_group_name(group)
                    .cause(cause)
                    .status_code(ScalingActivityStatusCode::Failed)
                    .status_message("Launching a new EC2 instance failed")
                    .start_time(aws_smithy_types::DateTime::from_secs(0))
                    .build();
                out.activities.get_or_insert_with(Vec::new).push(activity);
            }
        }
        Ok(())
    }
}

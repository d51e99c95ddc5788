//! `Faults`: an SDK interceptor of the tests' own that rewrites moto's answers for chosen
//! groups, because moto reports every instance InService and Healthy at once, records no scaling
//! activities, never throttles, is consistent at once, never drains a target and keeps no
//! lifecycle timeouts. Test infrastructure, not product.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_autoscaling::operation::create_auto_scaling_group::CreateAutoScalingGroupInput;
use aws_sdk_autoscaling::operation::delete_auto_scaling_group::DeleteAutoScalingGroupInput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::{
    DescribeAutoScalingGroupsInput, DescribeAutoScalingGroupsOutput,
};
use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
use aws_sdk_autoscaling::operation::detach_load_balancer_target_groups::DetachLoadBalancerTargetGroupsInput;
use aws_sdk_autoscaling::types::{
    Activity, AutoScalingGroup, LifecycleState, ScalingActivityStatusCode,
};
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
};
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextMut,
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
    /// Every group's creation as sent.
    pub(super) created: Arc<Mutex<BTreeMap<String, CreateAutoScalingGroupInput>>>,
    /// Operations answered "does not exist" (a `ValidationError`) this many more times, without
    /// reaching moto: what AWS answers about a resource created a moment ago.
    pub(super) not_found: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Groups left out of this many more reads by name, as if not visible yet.
    pub(super) invisible: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Groups whose instances stay `draining` in their target groups for this many reads of
    /// target health after they were detached.
    pub(super) draining: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Groups deleted while their instances were still draining.
    pub(super) deleted_while_draining: Arc<Mutex<Vec<String>>>,
    /// Groups whose instances wait in `Pending:Wait` (the launch hook never completed) for this
    /// many reads by name; after that, their launches fail with the hook's heartbeat timeout.
    pub(super) hook_timeout: Arc<Mutex<BTreeMap<String, u32>>>,
    /// Groups whose instances the (stand-in) agent abandons, with its reason.
    pub(super) abandon: Arc<Mutex<BTreeMap<String, String>>>,
    /// Groups whose instances the (stand-in) agent has not reported yet.
    pub(super) unreported: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Settings moto does not keep, shown on a group's descriptions (Some fields only).
    pub(super) settings: Arc<Mutex<BTreeMap<String, AutoScalingGroup>>>,
    /// Every command invocation read answers this status, exit code and error output (moto
    /// reports every command Success without running anything).
    pub(super) invocation: Arc<Mutex<Option<(String, i32, String)>>>,
    /// The instances last seen in each group.
    instances: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    /// Groups detached from their target groups (draining starts there).
    detached: Arc<Mutex<Vec<String>>>,
}

/// What Auto Scaling says of a launch abandoned by the hook's heartbeat timeout.
pub(super) const HEARTBEAT_TIMEOUT: &str = "Instance failed to complete user's Lifecycle Action: \
    Lifecycle Action with token 1234 was abandoned: Heartbeat Timeout";

/// Marks a DescribeAutoScalingGroups by name in the operation's config bag.
#[derive(Debug, Clone)]
struct ByName;

impl aws_smithy_types::config_bag::Storable for ByName {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Marks a call answered "does not exist" in the operation's config bag.
#[derive(Debug, Clone)]
struct NotFound;

impl aws_smithy_types::config_bag::Storable for NotFound {
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
            self.created_hooks
                .lock()
                .unwrap()
                .insert(group.clone(), hooks);
            self.created.lock().unwrap().insert(group, create.clone());
        }
        if let Some(detach) = context
            .input()
            .downcast_ref::<DetachLoadBalancerTargetGroupsInput>()
        {
            let group = detach.auto_scaling_group_name.clone().unwrap_or_default();
            self.detached.lock().unwrap().push(group);
        }
        if let Some(delete) = context
            .input()
            .downcast_ref::<DeleteAutoScalingGroupInput>()
        {
            let group = delete.auto_scaling_group_name.clone().unwrap_or_default();
            let left = self.draining.lock().unwrap().get(&group).copied();
            if left.is_some_and(|n| n > 0) {
                self.deleted_while_draining.lock().unwrap().push(group);
            }
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

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(name) = cfg.load::<Metadata>().map(|m| m.name().to_string()) else {
            return Ok(());
        };
        let mut not_found = self.not_found.lock().unwrap();
        if let Some(left) = not_found.get_mut(&name).filter(|left| **left > 0) {
            *left -= 1;
            // Never reaches moto as itself: the action is renamed (same length) to one moto
            // refuses, and the answer is rewritten below.
            let request = context.request_mut();
            let body = request.body().bytes().unwrap_or_default().to_vec();
            let text = String::from_utf8_lossy(&body).replacen(
                &format!("Action={name}"),
                &format!("Action=X{}", &name[1..]),
                1,
            );
            *request.body_mut() = aws_smithy_types::body::SdkBody::from(text);
            cfg.interceptor_state().store_put(NotFound);
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
        if cfg.load::<NotFound>().is_some() {
            let body = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>\
                <Message>The specified resource for {name} does not exist.</Message></Error>\
                <RequestId>x</RequestId></ErrorResponse>"
            );
            let response = context.response_mut();
            *response.status_mut() = 400u16.try_into().expect("a status");
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(body);
            return Ok(());
        }
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
            self.groups_answer(out, &sick, by_name);
        }
        if let Some(out) = output.downcast_mut::<DescribeTargetHealthOutput>() {
            self.draining_answer(out);
        }
        if let Some(out) = output.downcast_mut::<GetCommandInvocationOutput>()
            && let Some((status, code, stderr)) = self.invocation.lock().unwrap().clone()
        {
            out.status = Some(status.as_str().into());
            out.response_code = code;
            out.standard_error_content = Some(stderr);
        }
        if let Some(out) = output.downcast_mut::<DescribeScalingActivitiesOutput>() {
            let stale = self.stale.lock().unwrap().clone();
            let timed_out: BTreeMap<String, String> = self
                .hook_timeout
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, left)| **left == 0)
                .map(|(group, _)| (group.clone(), HEARTBEAT_TIMEOUT.to_string()))
                .collect();
            let failures = sick
                .iter()
                .filter_map(|(group, cause)| Some((group, cause.as_ref()?)))
                .chain(stale.iter())
                .chain(timed_out.iter());
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

impl Faults {
    /// A DescribeAutoScalingGroups answer as the faults want it.
    fn groups_answer(
        &self,
        out: &mut DescribeAutoScalingGroupsOutput,
        sick: &BTreeMap<String, Option<String>>,
        by_name: bool,
    ) {
        if by_name && let Some(groups) = out.auto_scaling_groups.as_mut() {
            let mut invisible = self.invisible.lock().unwrap();
            groups.retain(|group| {
                let name = group.auto_scaling_group_name.clone().unwrap_or_default();
                match invisible.get_mut(&name).filter(|left| **left > 0) {
                    Some(left) => {
                        *left -= 1;
                        false
                    }
                    None => true,
                }
            });
        }
        for group in out.auto_scaling_groups.iter_mut().flatten() {
            let name = group.auto_scaling_group_name.clone().unwrap_or_default();
            let ids = group
                .instances()
                .iter()
                .filter_map(|i| i.instance_id.clone())
                .collect();
            self.instances.lock().unwrap().insert(name.clone(), ids);
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
            let mut timeouts = self.hook_timeout.lock().unwrap();
            if let Some(left) = timeouts.get_mut(&name) {
                if by_name && *left > 0 {
                    *left -= 1;
                }
                for instance in group.instances.iter_mut().flatten() {
                    instance.lifecycle_state = Some(LifecycleState::PendingWait);
                }
            }
            if let Some(extra) = self.settings.lock().unwrap().get(&name) {
                group.termination_policies = extra
                    .termination_policies
                    .clone()
                    .or(group.termination_policies.take());
                group.capacity_rebalance = extra.capacity_rebalance.or(group.capacity_rebalance);
                group.default_instance_warmup = extra
                    .default_instance_warmup
                    .or(group.default_instance_warmup);
                group.instance_maintenance_policy = extra
                    .instance_maintenance_policy
                    .clone()
                    .or(group.instance_maintenance_policy.take());
            }
        }
    }

    /// Instances of detached groups shown `draining` while their count lasts.
    fn draining_answer(&self, out: &mut DescribeTargetHealthOutput) {
        let detached = self.detached.lock().unwrap().clone();
        let mut draining = self.draining.lock().unwrap();
        for group in detached {
            let Some(left) = draining.get_mut(&group).filter(|left| **left > 0) else {
                continue;
            };
            *left -= 1;
            let ids = self.instances.lock().unwrap().get(&group).cloned();
            for id in ids.unwrap_or_default() {
                let description = TargetHealthDescription::builder()
                    .target(TargetDescription::builder().id(id).port(80).build())
                    .target_health(
                        TargetHealth::builder()
                            .state(TargetHealthStateEnum::Draining)
                            .build(),
                    )
                    .build();
                out.target_health_descriptions
                    .get_or_insert_with(Vec::new)
                    .push(description);
            }
        }
    }
}

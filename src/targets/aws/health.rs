//! Health gates against the API: a group's instances InService and Healthy — on a group with
//! Convoy's launch hook, also reported `passed` by the agent in their `convoy:health` tag — and
//! its instances healthy in every target group of the service. Waits poll on tokio's clock; a
//! failed scaling activity or an instance the agent abandoned fails the wait at once, with its
//! cause (the reason a launch failed, the agent's reason).

use std::time::Duration;

use aws_sdk_autoscaling::types::ScalingActivityStatusCode;

use crate::execute::TargetError;
use crate::targets::aws::agent_reports::with_agent_reports;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::consistency::SETTLE_ATTEMPTS;
use crate::targets::aws::error::describe;
use crate::targets::aws::groups::{self, Group};

/// Scaling activities are read on the first poll and then every this many polls.
const ACTIVITIES_EVERY: u32 = 4;

impl AwsTarget {
    /// Until the group's desired instances are InService and Healthy, or `budget` is spent;
    /// the error says what was wrong.
    /// `fresh`: the group was just created, so every scaling activity is ours; otherwise only
    /// activities from this wait on count (an old group keeps weeks of them, and yesterday's
    /// failed launch says nothing about today's resize).
    pub(super) async fn wait_ready(
        &self,
        name: &str,
        budget: Duration,
        fresh: bool,
    ) -> Result<(), String> {
        // Seconds of clock skew between this machine and AWS that an activity may show.
        const SKEW: i64 = 30;
        let since = (!fresh).then(|| self.clock.now().as_second() - SKEW);
        let deadline = tokio::time::Instant::now() + budget;
        let mut polls = 0u32;
        loop {
            let Some(group) = groups::group(&self.clients, name).await? else {
                // Just created, it may not be visible yet: a bounded number of looks.
                if fresh && polls + 1 < SETTLE_ATTEMPTS {
                    polls += 1;
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
                return Err(format!("group {name} is gone"));
            };
            let group = with_agent_reports(&self.clients, group, since).await?;
            if group.is_ready() {
                return Ok(());
            }
            let abandoned = group.abandoned();
            if !abandoned.is_empty() {
                let reasons: Vec<String> = abandoned
                    .iter()
                    .map(|(id, reason)| format!("{id}: {reason}"))
                    .collect();
                let ready = group.ready_instances().len();
                return Err(format!(
                    "the agent abandoned {} ({ready}/{} instances passed)",
                    groups::listed(&reasons, "; "),
                    group.desired,
                ));
            }
            let out_of_time = tokio::time::Instant::now() >= deadline;
            if polls.is_multiple_of(ACTIVITIES_EVERY) || out_of_time {
                let failures = self.scaling_failures(name, since).await?;
                if !failures.is_empty() {
                    return Err(format!(
                        "{}; failed scaling activities: {}",
                        group.health_summary(),
                        failures.join("; ")
                    ));
                }
            }
            if out_of_time {
                return Err(format!(
                    "{} after {}",
                    group.health_summary(),
                    humantime::format_duration(budget)
                ));
            }
            polls += 1;
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The causes of the group's failed or cancelled scaling activities, newest first.
    async fn scaling_failures(
        &self,
        name: &str,
        since: Option<i64>,
    ) -> Result<Vec<String>, String> {
        let output = self
            .clients
            .autoscaling
            .describe_scaling_activities()
            .auto_scaling_group_name(name)
            .send()
            .await
            .map_err(|e| format!("DescribeScalingActivities: {}", describe(&e)))?;
        Ok(output
            .activities
            .unwrap_or_default()
            .into_iter()
            .filter(|a| match (since, a.start_time) {
                (Some(since), Some(start)) => start.secs() >= since,
                _ => true,
            })
            .filter(|a| {
                matches!(
                    a.status_code,
                    Some(ScalingActivityStatusCode::Failed | ScalingActivityStatusCode::Cancelled)
                )
            })
            .map(|a| {
                let message = a.status_message.unwrap_or_default();
                let cause = a.cause.unwrap_or_default();
                match (message.is_empty(), cause.is_empty()) {
                    (false, false) => format!("{message} ({cause})"),
                    (false, true) => message,
                    _ => cause,
                }
            })
            .collect())
    }

    /// `None` when every instance of the group is healthy in every target group of the
    /// service; otherwise what is not.
    pub(super) async fn targets_healthy(
        &self,
        service: &str,
        group: &Group,
    ) -> Result<Option<String>, TargetError> {
        let mut problems = Vec::new();
        for arn in self.target_groups(service) {
            if !group.target_groups.contains(arn) {
                continue; // not attached (yet, or any more): nothing to check there
            }
            let output = self
                .clients
                .elb
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| self.failed(service, "read target health", describe(&e)))?;
            let states: Vec<(String, String)> = output
                .target_health_descriptions
                .unwrap_or_default()
                .into_iter()
                .filter_map(|d| {
                    let id = d.target?.id?;
                    let state = d
                        .target_health
                        .and_then(|h| h.state)
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unknown".to_string());
                    Some((id, state))
                })
                .collect();
            for instance in &group.instances {
                let state = states
                    .iter()
                    .find(|(id, _)| id == &instance.id)
                    .map_or("not registered", |(_, s)| s.as_str());
                if state != "healthy" {
                    let short = arn.rsplit(':').next().unwrap_or(arn);
                    problems.push(format!("{} {state} in {short}", instance.id));
                }
            }
        }
        Ok((!problems.is_empty()).then(|| problems.join(", ")))
    }

    /// Until the group's instances are healthy in every attached target group.
    pub(super) async fn wait_targets(
        &self,
        service: &str,
        name: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let group = self
                .group(service, name)
                .await?
                .ok_or_else(|| self.failed(service, "switch", format!("group {name} is gone")))?;
            let Some(problem) = self.targets_healthy(service, &group).await? else {
                return Ok(());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(TargetError::Unhealthy {
                    service: service.to_string(),
                    version: group.version.clone(),
                    detail: format!(
                        "not healthy in the target groups after {}: {problem}",
                        humantime::format_duration(budget)
                    ),
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

//! Draining: a group that served traffic is deleted only once the load balancer has let its
//! connections finish — none of its instances still registered or `draining` in the service's
//! target groups — bounded by the target groups' deregistration delay (plus a few polls), after
//! which the load balancer has cut them anyway. Scaling an attached group in needs nothing of
//! ours: Auto Scaling deregisters and waits out the delay before it terminates an instance.

use std::time::Duration;

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;
use crate::targets::aws::groups::Group;

/// What AWS uses when a target group does not say.
const DEFAULT_DEREGISTRATION_DELAY: u64 = 300;

impl AwsTarget {
    /// Until no instance of `group` is registered in any of the service's target groups (or in
    /// those the group is attached to), or the longest deregistration delay has passed.
    pub(super) async fn drain(&self, service: &str, group: &Group) -> Result<(), TargetError> {
        let mut arns: Vec<String> = self.target_groups(service).to_vec();
        arns.extend(group.target_groups.iter().cloned());
        arns.sort();
        arns.dedup();
        if arns.is_empty() || group.instances.is_empty() {
            return Ok(());
        }
        let mut still = self.registered(service, group, &arns).await?;
        if still.is_empty() {
            return Ok(());
        }
        let delay = self.deregistration_delay(service, &arns).await?;
        let started = tokio::time::Instant::now();
        let deadline = started + delay + self.poll * 4;
        while !still.is_empty() {
            if tokio::time::Instant::now() >= deadline {
                self.warn(format!(
                    "{service}: {} still registered after the deregistration delay ({}); deleting {} anyway",
                    still.join(", "),
                    humantime::format_duration(delay),
                    group.name
                ));
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
            still = self.registered(service, group, &arns).await?;
        }
        Ok(())
    }

    /// The group's instances still in a target group, as `i-… draining in shop-web`.
    async fn registered(
        &self,
        service: &str,
        group: &Group,
        arns: &[String],
    ) -> Result<Vec<String>, TargetError> {
        let mut found = Vec::new();
        for arn in arns {
            let output = self
                .clients
                .elb
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| self.failed(service, "read target health", describe(&e)))?;
            let short = arn.rsplit(':').next().unwrap_or(arn);
            for description in output.target_health_descriptions.unwrap_or_default() {
                let Some(id) = description.target.and_then(|t| t.id) else {
                    continue;
                };
                let state = description
                    .target_health
                    .and_then(|h| h.state)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                if state != "unused" && group.instances.iter().any(|i| i.id == id) {
                    found.push(format!("{id} {state} in {short}"));
                }
            }
        }
        Ok(found)
    }

    /// The longest `deregistration_delay.timeout_seconds` of the target groups.
    async fn deregistration_delay(
        &self,
        service: &str,
        arns: &[String],
    ) -> Result<Duration, TargetError> {
        let mut longest = 0;
        for arn in arns {
            let output = self
                .clients
                .elb
                .describe_target_group_attributes()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| self.failed(service, "read the deregistration delay", describe(&e)))?;
            let seconds = output
                .attributes()
                .iter()
                .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                .and_then(|a| a.value()?.parse().ok())
                .unwrap_or(DEFAULT_DEREGISTRATION_DELAY);
            longest = longest.max(seconds);
        }
        Ok(Duration::from_secs(longest))
    }
}

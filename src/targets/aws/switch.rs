//! Switch: size the new group for its share, wait until healthy, attach it to the service's
//! target groups and wait until its targets are healthy, then detach the old group (or, for a
//! canary step, shrink it). Workers, without target groups, switch by scaling alone. A rollback
//! is the same switch in the other direction: the old group is resized and re-attached. The
//! prewarm's scheduled actions follow the traffic to the group taking all of it.

use std::time::Duration;

use crate::execute::TargetError;
use crate::plan::prewarm;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;
use crate::targets::aws::groups::{Group, group_tag};
use crate::targets::aws::names::{TAG_TRAFFIC, canary_split};
use crate::targets::aws::scheduled::move_actions;

impl AwsTarget {
    pub(super) async fn switch(
        &self,
        service: &str,
        from: Option<&str>,
        to: &str,
        percent: u8,
        budget: Duration,
    ) -> Result<(), TargetError> {
        // One budget for the whole step: both waits share it.
        let started = tokio::time::Instant::now();
        let groups = self.groups_of(service).await?;
        let find = |version: &str| groups.iter().find(|g| g.version == version);
        let new = find(to).ok_or_else(|| {
            self.failed(
                service,
                format!("switch to {to}"),
                format!(
                    "there is no group {}; was it provisioned?",
                    self.group_name(service, to)
                ),
            )
        })?;
        let old = from.and_then(find);
        // With nothing to share traffic with (a first release), the new group takes it all.
        let percent = if old.is_some() { percent.min(100) } else { 100 };
        // A switch during a prewarm window (a deploy's, or a rollback's to a group kept warm
        // since before it) serves at the prewarmed size.
        let floor = prewarm::floor(&self.prewarm, service, self.clock.now())
            .map_or(0, |f| i32::try_from(f).unwrap_or(i32::MAX));
        let (new_size, old_size) = canary_split(new.capacity.max(floor), percent);
        self.resize(service, new, new_size).await?;
        if let Err(detail) = self.wait_ready(&new.name, budget, false).await {
            return Err(TargetError::Unhealthy {
                service: service.to_string(),
                version: to.to_string(),
                detail,
            });
        }
        let target_groups = self.target_groups(service).to_vec();
        if !target_groups.is_empty() {
            if !target_groups.iter().all(|t| new.target_groups.contains(t)) {
                self.attach(service, &new.name, &target_groups).await?;
            }
            let left = budget.saturating_sub(started.elapsed());
            self.wait_targets(service, &new.name, left).await?;
        }
        if let Some(old) = old {
            if target_groups.is_empty() || percent < 100 {
                self.resize(service, old, old_size).await?;
            }
            if !target_groups.is_empty() && percent >= 100 && !old.target_groups.is_empty() {
                // Kept at its size, out of the target groups: warm for an instant rollback.
                self.detach(service, &old.name, &old.target_groups).await?;
            }
        }
        if let Some(old) = old.filter(|_| percent >= 100) {
            move_actions(&self.clients, &old.name, &new.name, self.clock.now())
                .await
                .map_err(|e| {
                    self.failed(
                        service,
                        format!("move the prewarm's scheduled actions to {}", new.name),
                        e.to_string(),
                    )
                })?;
        }
        let mut shares = vec![(new.name.as_str(), percent)];
        shares.extend(old.map(|old| (old.name.as_str(), 100 - percent)));
        self.set_traffic(service, &shares).await
    }

    /// Desired capacity `size`, widening min and max as needed (0 is allowed: a worker's old
    /// group after the switch).
    pub(super) async fn resize(
        &self,
        service: &str,
        group: &Group,
        size: i32,
    ) -> Result<(), TargetError> {
        if group.desired == size && group.min <= size && group.max >= size {
            return Ok(());
        }
        self.clients
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&group.name)
            .min_size(group.min.min(size))
            .max_size(group.max.max(size))
            .desired_capacity(size)
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    service,
                    format!("resize {} to {size}", group.name),
                    describe(&e),
                )
            })?;
        Ok(())
    }

    async fn attach(&self, service: &str, name: &str, arns: &[String]) -> Result<(), TargetError> {
        self.clients
            .autoscaling
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(name)
            .set_target_group_arns(Some(arns.to_vec()))
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    service,
                    format!("attach {name} to its target groups"),
                    describe(&e),
                )
            })?;
        Ok(())
    }

    pub(super) async fn detach(
        &self,
        service: &str,
        name: &str,
        arns: &[String],
    ) -> Result<(), TargetError> {
        self.clients
            .autoscaling
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(name)
            .set_target_group_arns(Some(arns.to_vec()))
            .send()
            .await
            .map_err(|e| {
                self.failed(
                    service,
                    format!("detach {name} from its target groups"),
                    describe(&e),
                )
            })?;
        Ok(())
    }

    /// The traffic-share tags `convoy status` and `observe` read, in one call.
    async fn set_traffic(&self, service: &str, shares: &[(&str, u8)]) -> Result<(), TargetError> {
        let tags = shares
            .iter()
            .map(|(name, percent)| group_tag(name, TAG_TRAFFIC, &percent.to_string(), false))
            .collect();
        self.clients
            .autoscaling
            .create_or_update_tags()
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| self.failed(service, "tag the traffic shares", describe(&e)))?;
        Ok(())
    }
}

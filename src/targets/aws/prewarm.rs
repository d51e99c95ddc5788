//! Pre-warming on AWS: the schedule as `prewarm.json` beside the lock and the release records
//! (written with `If-Match` on its ETag), and each service's live group given the schedule's
//! future as scheduled actions `convoy-prewarm-<n>`: the cloud fires them, so nothing has to run
//! at the time. What is due already is done at once with `UpdateAutoScalingGroup`.
//!
//! A group's level is its desired capacity and its maximum; an action sets the minimum and the
//! desired capacity to the level (so autoscaling cannot take the prewarmed capacity away) and
//! the maximum to the level's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::execute::Clock;
use crate::plan::prewarm::{Change, Level, PrewarmError, Reason, Schedule};
use crate::plan::prewarm_actions::{ScheduledAction, remaining_actions};
use crate::targets::TargetsError;
use crate::targets::aws::agent_reports::with_agent_reports;
use crate::targets::aws::connection::Clients;
use crate::targets::aws::error::{AwsError, describe};
use crate::targets::aws::groups::{self, Group};
use crate::targets::aws::scheduled::replace_actions;
use crate::targets::aws::state::{Condition, StateLocation};
use crate::targets::prewarm::{Capacity, Prewarmer, RaisedBy, SetsCapacity, Stored, enforce_due};

pub struct AwsPrewarm {
    clients: Clients,
    project: String,
    location: StateLocation,
    /// How often `--now` asks whether the instances are InService yet.
    poll: Duration,
}

pub(super) fn call(operation: &'static str, message: String) -> TargetsError {
    TargetsError::Aws(AwsError::Call { operation, message })
}

/// A group's level: its minimum and maximum, and the desired capacity between them.
fn level(group: &Group) -> Level {
    Level {
        replicas: count(group.min),
        max: Some(count(group.max)),
        desired: Some(count(group.desired)),
    }
}

pub(super) fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

pub(super) fn size(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl AwsPrewarm {
    pub fn new(clients: Clients, project: &str, location: StateLocation, poll: Duration) -> Self {
        AwsPrewarm {
            clients,
            project: project.to_string(),
            location,
            poll,
        }
    }

    fn key(&self) -> String {
        format!("{}/prewarm.json", self.location.root)
    }

    /// The environment's groups, not being deleted.
    async fn groups(&self) -> Result<Vec<Group>, TargetsError> {
        let all =
            groups::environment_groups(&self.clients, &self.project, &self.location.environment)
                .await
                .map_err(|message| call("DescribeAutoScalingGroups", message))?;
        Ok(all.into_iter().filter(|g| !g.deleting).collect())
    }

    /// Each service's live group (the one the AWS target's observe calls live).
    fn live(groups: &[Group]) -> BTreeMap<String, &Group> {
        let services: Vec<String> = groups
            .iter()
            .map(|g| g.service.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        groups::service_states(groups, &services)
            .into_iter()
            .filter_map(|(service, state)| {
                let live = state.live?;
                let group = groups
                    .iter()
                    .find(|g| g.service == service && g.version == live)?;
                Some((service, group))
            })
            .collect()
    }

    /// The actions each live group should carry from `now` on; an error (before anything is
    /// sent) when AWS would refuse them or they could fire too late.
    fn wanted(
        schedule: &Schedule,
        live: &BTreeMap<String, &Group>,
        now: Timestamp,
    ) -> Result<BTreeMap<String, Vec<ScheduledAction>>, PrewarmError> {
        let mut wanted = BTreeMap::new();
        for (service, group) in live {
            let baseline = schedule
                .baselines
                .get(service)
                .copied()
                .unwrap_or_else(|| level(group));
            let actions = remaining_actions(schedule, service, &group.name, baseline, now)?;
            wanted.insert(group.name.clone(), actions);
        }
        Ok(wanted)
    }
}

#[async_trait]
impl SetsCapacity for AwsPrewarm {
    async fn set(&self, change: &Change) -> Result<(), TargetsError> {
        let groups = self.groups().await?;
        let live = Self::live(&groups);
        let Some(group) = live.get(&change.service) else {
            return Ok(());
        };
        let to = change.to;
        let max = to.max.map_or(group.max, size);
        let desired = match change.reason {
            // Never below what autoscaling already runs.
            Reason::Raise(_) => group.desired.clamp(size(to.desired_or_min()), max),
            Reason::Pause(_) | Reason::Restore => size(to.desired_or_min()),
        };
        self.clients
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&group.name)
            .min_size(size(to.replicas))
            .max_size(max)
            .desired_capacity(desired)
            .send()
            .await
            .map_err(|e| {
                call(
                    "UpdateAutoScalingGroup",
                    format!("{}: {}", group.name, describe(&e)),
                )
            })?;
        Ok(())
    }
}

#[async_trait]
impl Prewarmer for AwsPrewarm {
    fn raised_by(&self) -> RaisedBy {
        RaisedBy::ScheduledActions
    }

    fn location(&self) -> String {
        self.location.url(&self.key())
    }

    async fn load(&self) -> Result<Stored, TargetsError> {
        let found = self
            .location
            .get(&self.key())
            .await
            .map_err(|e| call("GetObject", format!("{}: {e}", self.location())))?;
        let Some((bytes, etag)) = found else {
            return Ok(Stored::default());
        };
        let schedule =
            serde_json::from_slice(&bytes).map_err(|e| TargetsError::CorruptSchedule {
                location: self.location(),
                detail: e.to_string(),
            })?;
        Ok(Stored {
            schedule,
            token: Some(etag),
        })
    }

    async fn save(&self, schedule: &Schedule, token: Option<&str>) -> Result<String, TargetsError> {
        let bytes = serde_json::to_vec_pretty(schedule).unwrap_or_default();
        let condition = match token {
            Some(etag) => Condition::Unchanged(etag),
            None => Condition::Absent,
        };
        let written = self
            .location
            .put(&self.key(), bytes, condition)
            .await
            .map_err(|e| call("PutObject", format!("{}: {e}", self.location())))?;
        written.ok_or_else(|| {
            TargetsError::Aws(AwsError::ScheduleChanged {
                location: self.location(),
            })
        })
    }

    async fn levels(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, Capacity>, TargetsError> {
        let groups = self.groups().await?;
        let mut levels = BTreeMap::new();
        for (service, group) in Self::live(&groups) {
            if !services.contains(&service) {
                continue;
            }
            // Only instances the agent passed are ready (on a group with the launch hook).
            let group = with_agent_reports(&self.clients, group.clone(), None)
                .await
                .map_err(|e| call("DescribeInstances", e))?;
            let capacity = Capacity {
                version: group.version.clone(),
                level: level(&group),
                desired: count(group.desired),
                ready: u32::try_from(group.ready_instances().len()).unwrap_or(u32::MAX),
            };
            levels.insert(service, capacity);
        }
        Ok(levels)
    }

    async fn check(&self, schedule: &Schedule, now: Timestamp) -> Result<(), TargetsError> {
        let groups = self.groups().await?;
        Self::wanted(schedule, &Self::live(&groups), now)?;
        Ok(())
    }

    /// What is due now is done at once; the rest becomes the live groups' scheduled actions,
    /// and groups no longer live (kept warm after a deploy) lose theirs.
    async fn enforce(&self, stored: Stored, now: Timestamp) -> Result<Vec<Change>, TargetsError> {
        let groups = self.groups().await?;
        Self::wanted(&stored.schedule, &Self::live(&groups), now)?;
        let (changes, stored) = enforce_due(self, stored, now).await?;
        let groups = self.groups().await?;
        let wanted = Self::wanted(&stored.schedule, &Self::live(&groups), now)?;
        for group in &groups {
            let actions = wanted.get(&group.name).map_or(&[][..], Vec::as_slice);
            replace_actions(&self.clients, &group.name, actions).await?;
        }
        Ok(changes)
    }

    async fn wait_ready(
        &self,
        wanted: &BTreeMap<String, u32>,
        _clock: Arc<dyn Clock>,
    ) -> Result<(), TargetsError> {
        let services: Vec<String> = wanted.keys().cloned().collect();
        loop {
            let levels = self.levels(&services).await?;
            let short = wanted
                .iter()
                .any(|(s, n)| levels.get(s).is_some_and(|c| c.ready < *n));
            if !short {
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

//! The AWS target: one Auto Scaling group per service version beside the old one, traffic moved
//! through the service's target groups (or by scaling, for workers), old groups deleted after
//! `keep_warm`, and no group left behind by a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::target::AwsTarget as AwsConfig;
use crate::execute::{Clock, Event, ReleaseStore, Reporter, Target, TargetError};
use crate::plan::{Action, Plan, ServiceState, Step};
use crate::targets::aws::agent_reports::with_agent_reports;
use crate::targets::aws::connection::Clients;
use crate::targets::aws::error::AwsError;
use crate::targets::aws::groups::{self, Group, Lookup};
use crate::targets::aws::lookups::Resolved;
use crate::targets::aws::names::{Owner, group_name};
use crate::targets::aws::retire::Removal;

/// The user-data script of a service version (rendered from `templates/aws/user-data.sh`).
#[async_trait]
pub trait UserData: Send + Sync {
    async fn user_data(&self, service: &str, version: &str, release: u64)
    -> Result<String, String>;
}

pub struct AwsTarget {
    pub clients: Clients,
    /// Where warnings go (a template version that could not be deleted).
    pub reporter: Arc<dyn Reporter>,
    pub project: String,
    pub environment: String,
    pub resolved: Resolved,
    /// The environment's settings as written: instance type, key pair, instance profile, block
    /// devices and metadata options go into the launch template from here.
    pub config: AwsConfig,
    /// Each revision's secrets in clear, by revision id and environment variable: written to SSM Parameter Store
    /// on provision, read there by the agent with the instance's role, never put in user data.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Heartbeat timeout of the launch hook: how long an instance may take to be prepared and
    /// pass its health command before AWS abandons it.
    pub launch_timeout: Duration,
    /// Size of a service's first group (`values.replicas`); later groups take the old one's.
    pub capacity: BTreeMap<String, i32>,
    /// The policy's `max_capacity`, the largest `MaxSize` of a first group.
    pub max_capacity: Option<i32>,
    /// A canary policy's first traffic share: the size a new group starts at.
    pub first_step: Option<u8>,
    pub user_data: Arc<dyn UserData>,
    /// For the `convoy:release` tag: the unfinished release is the one being run.
    pub releases: Option<Arc<dyn ReleaseStore>>,
    pub clock: Arc<dyn Clock>,
    /// How often the API is asked whether instances and targets are healthy yet.
    pub poll: Duration,
    /// The environment's prewarm windows, read when it was opened: a switch during one serves
    /// at the prewarmed size.
    pub prewarm: crate::plan::prewarm::Schedule,
}

impl AwsTarget {
    pub(super) fn group_name(&self, service: &str, version: &str) -> String {
        group_name(&self.project, &self.environment, service, version)
    }

    /// The error for a resource of that name that this environment did not create.
    pub(super) fn not_ours(
        &self,
        service: &str,
        kind: &'static str,
        name: &str,
        owner: Owner,
    ) -> TargetError {
        let error = AwsError::NotOurs {
            kind,
            name: name.to_string(),
            owner: owner.describe(),
            project: self.project.clone(),
            environment: self.environment.clone(),
        };
        TargetError::failed(service, &format!("claim {kind} {name}"), error)
    }

    pub(super) fn warn(&self, message: String) {
        self.reporter.report(&Event::Warning { message });
    }

    pub(super) fn target_groups(&self, service: &str) -> &[String] {
        self.resolved
            .target_groups
            .get(service)
            .map_or(&[], Vec::as_slice)
    }

    pub(super) fn failed(
        &self,
        service: &str,
        action: impl Into<String>,
        detail: String,
    ) -> TargetError {
        TargetError::Action {
            service: service.to_string(),
            action: action.into(),
            detail,
        }
    }

    /// This service's groups in this environment (not being deleted).
    pub(super) async fn groups_of(&self, service: &str) -> Result<Vec<Group>, TargetError> {
        let all = groups::environment_groups(&self.clients, &self.project, &self.environment)
            .await
            .map_err(|detail| self.failed(service, "list groups", detail))?;
        Ok(all
            .into_iter()
            .filter(|g| g.service == service && !g.deleting)
            .collect())
    }

    /// The group of `version`, found by its tags (whatever its name: groups made before names
    /// held the environment are found too).
    pub(super) async fn find(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<Group>, TargetError> {
        let groups = self.groups_of(service).await?;
        Ok(groups.into_iter().find(|g| g.version == version))
    }

    /// A group by name, only if this environment made it; another's is an error.
    pub(super) async fn group(
        &self,
        service: &str,
        name: &str,
    ) -> Result<Option<Group>, TargetError> {
        let found = groups::lookup(&self.clients, name)
            .await
            .map_err(|detail| self.failed(service, format!("read group {name}"), detail))?;
        match found {
            Lookup::Absent => Ok(None),
            Lookup::Convoy(group) if group.is_ours(&self.project, &self.environment) => {
                Ok(Some(*group))
            }
            Lookup::Convoy(group) => {
                let owner = Owner {
                    project: Some(group.project.clone()),
                    environment: Some(group.environment.clone()),
                    release: group.release,
                };
                Err(self.not_ours(service, "Auto Scaling group", name, owner))
            }
            Lookup::Other(owner) => Err(self.not_ours(service, "Auto Scaling group", name, owner)),
        }
    }

    pub(super) async fn release_number(&self) -> u64 {
        let Some(releases) = &self.releases else {
            return 0;
        };
        match releases.latest().await {
            Ok(Some(record)) if record.is_unfinished() => record.number,
            _ => 0,
        }
    }

    /// The health budget inside a step's timeout: most of it, leaving time to delete a group
    /// that never became healthy before the executor gives up on the step.
    pub(super) fn health_budget(step: &Step) -> Duration {
        let bake = match &step.action {
            Action::Switch { bake, .. } => bake.0,
            _ => Duration::ZERO,
        };
        step.timeout.0.saturating_sub(bake).mul_f64(0.8)
    }
}

#[async_trait]
impl Target for AwsTarget {
    fn weighted_traffic(&self) -> bool {
        true // both groups in the target groups, shares by instance counts
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetError> {
        let all = groups::environment_groups(&self.clients, &self.project, &self.environment)
            .await
            .map_err(|detail| TargetError::Action {
                service: services.join(", "),
                action: "observe".to_string(),
                detail,
            })?;
        Ok(groups::service_states(&all, services))
    }

    /// Nothing changes before every new group's name, template and live policies are known
    /// to be this environment's to use (a collision stops the release here).
    async fn preflight(&self, plan: &Plan, _release: u64) -> Result<(), TargetError> {
        self.check_provisions(plan).await
    }

    async fn apply(&self, step: &Step) -> Result<(), TargetError> {
        let service = step.service.as_str();
        let budget = Self::health_budget(step);
        match &step.action {
            Action::Provision { version } => self.provision(service, version, budget).await,
            Action::Switch {
                from, to, percent, ..
            } => {
                self.switch(service, from.as_deref(), to, *percent, budget)
                    .await
            }
            Action::Retire { version } => {
                self.delete_group(service, version, Removal::Retired).await
            }
            Action::Remove { version } => {
                let release = self.release_number().await;
                let removal = Removal::CreatedBy(release);
                self.delete_group(service, version, removal).await
            }
            Action::Task {
                task,
                version,
                command,
                ..
            } => self.task(step, version, task, command).await,
        }
    }

    fn calls(&self, step: &Step) -> Vec<String> {
        let with_target_groups = !self.target_groups(&step.service).is_empty();
        crate::targets::aws::names::calls_for(step, with_target_groups)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let unhealthy = |detail: String| TargetError::Unhealthy {
            service: service.to_string(),
            version: version.to_string(),
            detail,
        };
        let group = self.find(service, version).await?.ok_or_else(|| {
            let name = self.group_name(service, version);
            unhealthy(format!("group {name} is gone"))
        })?;
        let group = with_agent_reports(&self.clients, group, None)
            .await
            .map_err(|detail| self.failed(service, "read the agent's reports", detail))?;
        if !group.is_ready() {
            return Err(unhealthy(group.health_summary()));
        }
        self.targets_healthy(service, &group)
            .await?
            .map_or(Ok(()), |detail| Err(unhealthy(detail)))
    }
}

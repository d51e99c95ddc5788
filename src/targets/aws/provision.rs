//! Provision: the revision's secrets into SSM, a launch-template version for it (pinned by
//! number), and a new group `<project>-<environment>-<service>-<revision>` beside the old one —
//! sized like it, with its settings, scaling policies, scheduled actions and lifecycle hooks
//! copied, and Convoy's launch hook — then wait until its instances passed the agent's health
//! gate, or delete it, so a failure leaves no debris, and say why. A name another environment
//! (or anyone) holds is an error before anything changes, never something to delete.

use std::time::Duration;

use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleHookSpecification};

use crate::execute::TargetError;
use crate::plan::{Action, Plan};
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;
use crate::targets::aws::groups::{Group, group_tag};
use crate::targets::aws::names::*;
use crate::targets::aws::retire::Removal;
use crate::targets::aws::settings::Settings;
use crate::targets::aws::template::Template;

/// What a new group is made from.
struct NewGroup<'a> {
    service: &'a str,
    version: &'a str,
    name: &'a str,
    /// The group serving now, whose size the new one takes.
    old: Option<&'a Group>,
    /// The old group's settings (a first group's defaults otherwise).
    settings: &'a Settings,
    template_version: i64,
    release: u64,
    hooks: Vec<LifecycleHookSpecification>,
}

/// A health-check grace period for a first group, when there is no old group to copy.
const DEFAULT_GRACE: i32 = 300;

/// A new random id for a group's life (see [`TAG_INCARNATION`]).
fn incarnation() -> Result<String, String> {
    let random = crate::targets::new_digest_key().map_err(|e| e.to_string())?;
    Ok(hex::encode(&random[..8]))
}

impl AwsTarget {
    pub(super) async fn provision(
        &self,
        service: &str,
        version: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        let name = self.group_name(service, version);
        let groups = self.groups_of(service).await?;
        if groups.iter().any(|g| g.version == version) {
            // A resumed provision: the group is there; only its health gate is left.
            let release = self.release_number().await;
            return self
                .wait_or_delete(service, version, &name, budget, release)
                .await;
        }
        self.claim(service, version, &name, budget).await?;
        let old = groups
            .iter()
            .filter(|g| g.traffic > 0)
            .max_by_key(|g| g.traffic);
        // Everything read, and refused if it cannot be copied, before the first change.
        let (settings, policies) = match old {
            Some(old) => (
                self.settings_of(service, &old.name).await?,
                self.copyable_policies(service, &old.name).await?,
            ),
            None => (Settings::default(), Vec::new()),
        };
        let hooks = self
            .lifecycle_hooks(service, old.map(|o| o.name.as_str()))
            .await?;
        let release = self.release_number().await;
        self.write_secrets(service, version, release).await?;
        let template_version = self.template_version(service, version, release).await?;
        let created = self
            .create_group(NewGroup {
                service,
                version,
                name: &name,
                old,
                settings: &settings,
                template_version,
                release,
                hooks,
            })
            .await;
        if let Err(error) = created {
            // No group points at the new template version or the secrets: debris unless
            // removed now.
            let _ = self
                .delete_template_version(service, template_version)
                .await;
            let _ = self.delete_secrets(service, version, Some(release)).await;
            return Err(error);
        }
        if let Some(old) = old {
            self.copy_scaling(service, &old.name, &name, policies)
                .await?;
        }
        self.copy_warm_pool(service, &settings, &name).await?;
        self.wait_or_delete(service, version, &name, budget, release)
            .await
    }

    /// Makes sure `name` and the service's template are free for this environment: another's
    /// (or anyone's) is an error; a group of ours still being deleted (a revision retired a
    /// moment ago and now provisioned again) is waited out.
    async fn claim(
        &self,
        service: &str,
        version: &str,
        name: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        if !revision_fits(version) {
            return Err(self.failed(
                service,
                format!("provision of {version}"),
                format!("a revision id is at most {MAX_REVISION_LEN} characters, so that every name fits AWS's limits"),
            ));
        }
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            match self.group(service, name).await? {
                Some(group) if group.deleting && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(self.poll).await;
                }
                Some(_) => {
                    return Err(self.failed(
                        service,
                        format!("provision of {version}"),
                        format!("group {name} is still being deleted; try again in a few minutes"),
                    ));
                }
                None => break,
            }
        }
        match self.template(service).await {
            Ok(Template::NotOurs(owner)) => {
                let template = self.template_name(service);
                Err(self.not_ours(service, "launch template", &template, owner))
            }
            Ok(_) => Ok(()),
            Err(detail) => Err(self.failed(service, "read the launch template", detail)),
        }
    }

    /// Every provision of `plan` checked as [`Self::claim`] and
    /// [`Self::copyable_policies`] would, changing nothing: run before the release is recorded.
    pub(super) async fn check_provisions(&self, plan: &Plan) -> Result<(), TargetError> {
        for step in &plan.steps {
            let Action::Provision { version } = &step.action else {
                continue;
            };
            let service = step.service.as_str();
            let groups = self.groups_of(service).await?;
            if groups.iter().any(|g| g.version == *version) {
                continue;
            }
            let name = self.group_name(service, version);
            self.claim(service, version, &name, Duration::ZERO).await?;
            let live = groups
                .iter()
                .filter(|g| g.traffic > 0)
                .max_by_key(|g| g.traffic);
            if let Some(live) = live {
                self.copyable_policies(service, &live.name).await?;
            }
        }
        Ok(())
    }

    /// Waits for the group's health; a group that never becomes healthy is deleted at once.
    async fn wait_or_delete(
        &self,
        service: &str,
        version: &str,
        name: &str,
        budget: Duration,
        release: u64,
    ) -> Result<(), TargetError> {
        let Err(detail) = self.wait_ready(name, budget, true).await else {
            return Ok(());
        };
        let removal = Removal::CreatedBy(release);
        let cleanup = match self.delete_group(service, version, removal).await {
            Ok(()) => "the group was deleted".to_string(),
            Err(error) => format!("deleting the group failed too: {error}"),
        };
        Err(TargetError::Unhealthy {
            service: service.to_string(),
            version: version.to_string(),
            detail: format!("group {name} did not become healthy: {detail}; {cleanup}"),
        })
    }

    async fn create_group(&self, group: NewGroup<'_>) -> Result<(), TargetError> {
        let NewGroup {
            service,
            version,
            name,
            old,
            settings,
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
        let incarnation =
            incarnation().map_err(|detail| self.failed(service, "make a group id", detail))?;
        let mut tags = vec![
            (TAG_PROJECT, self.project.clone(), true),
            (TAG_SERVICE, service.to_string(), true),
            (TAG_VERSION, version.to_string(), true),
            (TAG_RELEASE, release.to_string(), true),
            (TAG_ENV, self.environment.clone(), true),
            (TAG_TRAFFIC, "0".to_string(), false),
            (TAG_CAPACITY, capacity.to_string(), false),
            (TAG_TEMPLATE_VERSION, template_version.to_string(), false),
            (TAG_GATE, LAUNCH_HOOK.to_string(), false),
            (TAG_INCARNATION, incarnation, true),
        ]
        .into_iter()
        .map(|(k, v, propagate)| group_tag(name, k, &v, propagate))
        .collect::<Vec<_>>();
        tags.extend(
            settings
                .tags
                .iter()
                .map(|(k, v, propagate)| group_tag(name, k, v, *propagate)),
        );
        let template = LaunchTemplateSpecification::builder()
            .launch_template_name(self.template_name(service))
            .version(template_version.to_string())
            .build();
        let create = self
            .clients
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(min)
            .max_size(max)
            .desired_capacity(desired)
            .vpc_zone_identifier(old.and_then(|o| o.subnets.clone()).unwrap_or(subnets))
            .health_check_type(health_check)
            .health_check_grace_period(old.and_then(|o| o.grace).unwrap_or(DEFAULT_GRACE))
            .set_lifecycle_hook_specification_list(Some(hooks))
            .set_tags(Some(tags));
        let create = settings.apply(create, template);
        // The template version was made a moment ago: it may not be visible to this call yet.
        self.settled(|| create.clone().send())
            .await
            .map_err(|e| self.failed(service, format!("create group {name}"), describe(&e)))?;
        Ok(())
    }
}

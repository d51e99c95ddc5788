//! Retire and remove: take a group out of its target groups, let its connections drain, scale
//! it to zero, force-delete it, then delete its launch-template version (once no other group
//! launches from it) and its revision's secrets. Only this environment's groups are found at all
//! (by tags); a removal takes only what this release created, and a group that takes traffic is
//! never retired. Idempotent: a group already gone is done.

use aws_sdk_ec2::error::ProvideErrorMetadata;

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;

/// Why a group is deleted, which decides what may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// An old revision after `keep_warm`: deleted unless it takes traffic again.
    Retired,
    /// Debris of release N (a rollback, or a group that never became healthy): deleted only if
    /// release N created it.
    CreatedBy(u64),
}

impl AwsTarget {
    pub(super) async fn delete_group(
        &self,
        service: &str,
        version: &str,
        removal: Removal,
    ) -> Result<(), TargetError> {
        let Some(group) = self.find(service, version).await? else {
            // Never created, or gone already; the secrets a failed provision wrote may be left.
            self.forget_secrets(service, version, removal).await;
            return Ok(());
        };
        let name = group.name.clone();
        match removal {
            Removal::CreatedBy(release) if group.release != Some(release) => {
                self.warn(format!(
                    "{service}: group {name} was kept: release {} created it, not release {release}",
                    group.release.map_or("(unknown)".to_string(), |r| r.to_string())
                ));
                return Ok(());
            }
            Removal::Retired if group.traffic > 0 => {
                self.warn(format!(
                    "{service}: group {name} was kept: it takes {}% of the traffic",
                    group.traffic
                ));
                return Ok(());
            }
            _ => {}
        }
        if !group.target_groups.is_empty() {
            self.detach(service, &name, &group.target_groups).await?;
        }
        // Force-deleting terminates at once: in-flight requests finish first.
        self.drain(service, &group).await?;
        self.clients
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .min_size(0)
            .max_size(0)
            .desired_capacity(0)
            .send()
            .await
            .map_err(|e| self.failed(service, format!("scale {name} to 0"), describe(&e)))?;
        match self
            .clients
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .force_delete(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code().is_some_and(|c| c.contains("NotFound")) => {}
            Err(e) => return Err(self.failed(service, format!("delete {name}"), describe(&e))),
        }
        if let Some(number) = group.template_version {
            // A template version left behind costs nothing and harms nobody: warn, not fail.
            if let Err(detail) = self.delete_template_version(service, number).await {
                self.warn(format!(
                    "{service}: launch-template version {number} was kept: {detail}"
                ));
            }
        }
        self.forget_secrets(service, version, removal).await;
        Ok(())
    }

    /// Deletes the revision's parameters; one left behind is a warning, not a failure.
    async fn forget_secrets(&self, service: &str, version: &str, removal: Removal) {
        let release = match removal {
            Removal::CreatedBy(release) => Some(release),
            Removal::Retired => None,
        };
        if let Err(detail) = self.delete_secrets(service, version, release).await {
            self.warn(format!(
                "{service}: the secrets of {version} were kept in SSM: {detail}"
            ));
        }
    }
}

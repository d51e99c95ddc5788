//! Retire and remove: take a group out of its target groups, scale it to zero, force-delete it,
//! and delete its launch-template version once no other group launches from it (the whole
//! template once no group of the service is left). Idempotent: a group already gone is done.

use aws_sdk_ec2::error::ProvideErrorMetadata;

use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::describe;
use crate::targets::aws::names::template_name;

impl AwsTarget {
    pub(super) async fn delete_group(
        &self,
        service: &str,
        version: &str,
    ) -> Result<(), TargetError> {
        let name = self.group_name(service, version);
        let Some(group) = self.group(service, &name).await?.filter(|g| !g.deleting) else {
            return Ok(());
        };
        if !group.target_groups.is_empty() {
            self.detach(service, &name, &group.target_groups).await?;
        }
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
                self.reporter.report(&crate::execute::Event::Warning {
                    message: format!(
                        "{service}: launch-template version {number} was kept: {detail}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Deletes template version `number` unless another group launches from it; moves the
    /// template's default version off it first (the default cannot be deleted).
    pub(super) async fn delete_template_version(
        &self,
        service: &str,
        number: i64,
    ) -> Result<(), String> {
        let in_use: Vec<i64> = self
            .groups_of(service)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|g| g.template_version)
            .collect();
        if in_use.contains(&number) {
            return Ok(());
        }
        let template = template_name(&self.project, &self.environment, service);
        if in_use.is_empty() {
            // No group of the service is left (a first release rolled back, say): the whole
            // template goes, so a failure leaves nothing behind.
            return match self
                .clients
                .ec2
                .delete_launch_template()
                .launch_template_name(&template)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code().is_some_and(|c| c.contains("NotFound")) => Ok(()),
                Err(e) => Err(describe(&e)),
            };
        }
        let templates = self
            .clients
            .ec2
            .describe_launch_templates()
            .launch_template_names(&template)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let default = templates
            .launch_templates
            .unwrap_or_default()
            .into_iter()
            .find_map(|t| t.default_version_number);
        if default == Some(number) {
            let other = in_use.iter().max().copied().unwrap_or(number);
            self.clients
                .ec2
                .modify_launch_template()
                .launch_template_name(&template)
                .default_version(other.to_string())
                .send()
                .await
                .map_err(|e| describe(&e))?;
        }
        let output = self
            .clients
            .ec2
            .delete_launch_template_versions()
            .launch_template_name(&template)
            .versions(number.to_string())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        match output
            .unsuccessfully_deleted_launch_template_versions
            .unwrap_or_default()
            .first()
        {
            Some(refused) => Err(refused
                .response_error
                .as_ref()
                .and_then(|e| e.message.clone())
                .unwrap_or_else(|| "refused".to_string())),
            None => Ok(()),
        }
    }
}

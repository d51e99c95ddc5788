//! The service's launch template `<project>-<environment>-<service>`: tagged with its owner when
//! created and used only while its tags say this environment; one version per revision (found
//! again by its description on a resume), with the environment's launch settings — instance type,
//! key pair, instance profile, block devices, IMDSv2 — and the rendered user data, which holds
//! no secret. A version is deleted once no group launches from it, the template with the last.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceMetadataTagsState, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, VolumeType,
};

use crate::config::aws_launch::{BlockDevice, Metadata, Tokens};
use crate::execute::TargetError;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::consistency::not_found;
use crate::targets::aws::error::describe;
use crate::targets::aws::names::*;

/// The service's launch template as found.
pub(super) enum Template {
    Absent,
    Ours { default_version: Option<i64> },
    NotOurs(Owner),
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl AwsTarget {
    pub(super) fn template_name(&self, service: &str) -> String {
        template_name(&self.project, &self.environment, service)
    }

    /// The service's template and whether it is this environment's.
    pub(super) async fn template(&self, service: &str) -> Result<Template, String> {
        let output = self
            .clients
            .ec2
            .describe_launch_templates()
            .launch_template_names(self.template_name(service))
            .send()
            .await;
        let template = match output {
            Ok(output) => output
                .launch_templates
                .unwrap_or_default()
                .into_iter()
                .next(),
            Err(error) if not_found(&error) => None,
            Err(error) => return Err(describe(&error)),
        };
        let Some(template) = template else {
            return Ok(Template::Absent);
        };
        let tags: BTreeMap<String, String> = template
            .tags()
            .iter()
            .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
            .collect();
        let owner = Owner::from_tags(&tags);
        Ok(if owner.is(&self.project, &self.environment) {
            Template::Ours {
                default_version: template.default_version_number,
            }
        } else {
            Template::NotOurs(owner)
        })
    }

    /// The template version for `version`: found again by its description when a resumed
    /// provision already made it, created otherwise (with the template, the first time).
    pub(super) async fn template_version(
        &self,
        service: &str,
        version: &str,
        release: u64,
    ) -> Result<i64, TargetError> {
        let template = self.template_name(service);
        let description = template_version_description(version);
        let action = || format!("launch template {template} for {version}");
        let exists = match self.template(service).await {
            Ok(Template::Absent) => false,
            Ok(Template::Ours { .. }) => true,
            Ok(Template::NotOurs(owner)) => {
                return Err(self.not_ours(service, "launch template", &template, owner));
            }
            Err(detail) => return Err(self.failed(service, action(), detail)),
        };
        if exists && let Some(number) = self.find_template_version(service, &description).await? {
            return Ok(number);
        }
        let script = self
            .user_data
            .user_data(service, version, release)
            .await
            .map_err(|detail| self.failed(service, format!("user data of {version}"), detail))?;
        let data = self.template_data(service, version, release, &script);
        let number = if exists {
            let output = self
                .clients
                .ec2
                .create_launch_template_version()
                .launch_template_name(&template)
                .version_description(&description)
                .launch_template_data(data)
                .send()
                .await
                .map_err(|e| self.failed(service, action(), describe(&e)))?;
            output
                .launch_template_version
                .and_then(|v| v.version_number)
        } else {
            let owner = TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .tags(tag(TAG_PROJECT, &self.project))
                .tags(tag(TAG_ENV, &self.environment))
                .tags(tag(TAG_SERVICE, service))
                .build();
            let output = self
                .clients
                .ec2
                .create_launch_template()
                .launch_template_name(&template)
                .version_description(&description)
                .launch_template_data(data)
                .tag_specifications(owner)
                .send()
                .await
                .map_err(|e| self.failed(service, action(), describe(&e)))?;
            output.launch_template.and_then(|t| t.latest_version_number)
        };
        number
            .ok_or_else(|| self.failed(service, action(), "no version number in the answer".into()))
    }

    async fn find_template_version(
        &self,
        service: &str,
        description: &str,
    ) -> Result<Option<i64>, TargetError> {
        let template = self.template_name(service);
        let mut pages = self
            .clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_name(&template)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                self.failed(service, format!("launch template {template}"), describe(&e))
            })?;
            let found = page
                .launch_template_versions
                .unwrap_or_default()
                .into_iter()
                .find(|v| v.version_description.as_deref() == Some(description));
            if let Some(number) = found.and_then(|v| v.version_number) {
                return Ok(Some(number));
            }
        }
        Ok(None)
    }

    fn template_data(
        &self,
        service: &str,
        version: &str,
        release: u64,
        script: &str,
    ) -> RequestLaunchTemplateData {
        let tags = [
            ("Name", self.group_name(service, version)),
            (TAG_PROJECT, self.project.clone()),
            (TAG_SERVICE, service.to_string()),
            (TAG_VERSION, version.to_string()),
            (TAG_RELEASE, release.to_string()),
            (TAG_ENV, self.environment.clone()),
        ];
        let spec = |kind: ResourceType| {
            let spec = LaunchTemplateTagSpecificationRequest::builder().resource_type(kind);
            tags.iter()
                .fold(spec, |spec, (k, v)| spec.tags(tag(k, v)))
                .build()
        };
        let config = &self.config;
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(&self.resolved.ami)
            .instance_type(InstanceType::from(config.instance_type.as_str()))
            .set_security_group_ids(
                (!self.resolved.security_groups.is_empty())
                    .then(|| self.resolved.security_groups.clone()),
            )
            .user_data(aws_smithy_types::base64::encode(script))
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume))
            .set_key_name(config.key_name.clone())
            .metadata_options(metadata_options(&config.metadata))
            .set_block_device_mappings(
                (!config.block_devices.is_empty())
                    .then(|| config.block_devices.iter().map(block_device).collect()),
            );
        if let Some(profile) = &config.instance_profile {
            let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
            let spec = if profile.starts_with("arn:") {
                spec.arn(profile)
            } else {
                spec.name(profile)
            };
            data = data.iam_instance_profile(spec.build());
        }
        data.build()
    }

    /// Deletes template version `number` unless another group launches from it, or the whole
    /// template once no group of the service is left; moves the template's default version off
    /// it first (the default cannot be deleted). A template that is gone is done; one this
    /// environment did not create is left alone.
    pub(super) async fn delete_template_version(
        &self,
        service: &str,
        number: i64,
    ) -> Result<(), String> {
        let default = match self.template(service).await? {
            Template::Absent => return Ok(()),
            Template::NotOurs(owner) => {
                return Err(format!(
                    "its template is not this environment's ({})",
                    owner.describe()
                ));
            }
            Template::Ours { default_version } => default_version,
        };
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
        let template = self.template_name(service);
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
                Err(e) if not_found(&e) => Ok(()),
                Err(e) => Err(describe(&e)),
            };
        }
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

fn metadata_options(metadata: &Metadata) -> LaunchTemplateInstanceMetadataOptionsRequest {
    let tokens = match metadata.tokens {
        Tokens::Required => LaunchTemplateHttpTokensState::Required,
        Tokens::Optional => LaunchTemplateHttpTokensState::Optional,
    };
    let tags = if metadata.instance_tags {
        LaunchTemplateInstanceMetadataTagsState::Enabled
    } else {
        LaunchTemplateInstanceMetadataTagsState::Disabled
    };
    LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
        .http_tokens(tokens)
        .http_put_response_hop_limit(i32::from(metadata.hop_limit))
        .instance_metadata_tags(tags)
        .build()
}

fn block_device(device: &BlockDevice) -> LaunchTemplateBlockDeviceMappingRequest {
    let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    // gp3's baseline, said out loud: AWS assumes it, some EC2 implementations demand it.
    let gp3 = device.volume_type == crate::config::aws_launch::VolumeType::Gp3;
    let iops = device.iops.or(gp3.then_some(3000));
    let throughput = device.throughput.or(gp3.then_some(125));
    let ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
        .set_volume_size(device.size_gib.map(to_i32))
        .volume_type(VolumeType::from(device.volume_type.as_str()))
        .set_iops(iops.map(to_i32))
        .set_throughput(throughput.map(to_i32))
        .encrypted(device.encrypted)
        .set_kms_key_id(device.kms_key.clone())
        .delete_on_termination(device.delete_on_termination)
        .set_snapshot_id(device.snapshot.clone())
        .build();
    LaunchTemplateBlockDeviceMappingRequest::builder()
        .device_name(&device.device)
        .ebs(ebs)
        .build()
}

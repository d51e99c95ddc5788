//! Resolving what `target.aws` names — AMI, subnets, security groups, target groups — to ids,
//! by id, by name or tag, or from the default VPC. All reads: this is the validation that runs
//! before the first mutation of a release.

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;

use crate::config::target::AwsTarget;
use crate::targets::aws::connection::Clients;
use crate::targets::aws::error::AwsError;

/// `target.aws` with everything looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub ami: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// Target group ARNs per service; services without one (workers) switch by scaling.
    pub target_groups: BTreeMap<String, Vec<String>>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn not_found<E: ProvideErrorMetadata>(error: &E) -> bool {
    error
        .code()
        .is_some_and(|code| code.contains("NotFound") || code.contains("Malformed"))
}

/// Looks up everything the services being deployed need; fails on the first thing missing.
pub async fn resolve(
    clients: &Clients,
    environment: &str,
    config: &AwsTarget,
    services: &[String],
) -> Result<Resolved, AwsError> {
    let ami = ami(clients, environment, config).await?;
    let (subnets, vpc) = subnets(clients, config).await?;
    let security_groups = security_groups(clients, config, &vpc).await?;
    let mut target_groups = BTreeMap::new();
    for service in services {
        if let Some(group) = config.target_groups.get(service) {
            let arn = target_group(clients, config, service, group).await?;
            target_groups.insert(service.clone(), vec![arn]);
        }
    }
    Ok(Resolved {
        ami,
        subnets,
        security_groups,
        target_groups,
    })
}

/// An AMI id as given (checked to exist), or the newest image whose name matches the pattern.
async fn ami(clients: &Clients, environment: &str, config: &AwsTarget) -> Result<String, AwsError> {
    let Some(ami) = config.ami.as_deref() else {
        return Err(AwsError::NoAmi {
            environment: environment.to_string(),
        });
    };
    let missing = || AwsError::AmiNotFound {
        ami: ami.to_string(),
        owners: config.ami_owners.clone(),
    };
    let request = clients.ec2.describe_images();
    let request = if ami.starts_with("ami-") {
        request.image_ids(ami)
    } else {
        let owners = if config.ami_owners.is_empty() {
            vec!["self".to_string()]
        } else {
            config.ami_owners.clone()
        };
        request
            .set_owners(Some(owners))
            .filters(filter("name", ami))
    };
    let images = match request.send().await {
        Ok(output) => output.images.unwrap_or_default(),
        Err(error) if not_found(&error) => return Err(missing()),
        Err(error) => return Err(AwsError::call("DescribeImages", error)),
    };
    // Newest first: creation dates are ISO 8601 and compare as text.
    images
        .into_iter()
        .filter(|image| image.image_id.is_some())
        .max_by(|a, b| a.creation_date.cmp(&b.creation_date))
        .and_then(|image| image.image_id)
        .ok_or_else(missing)
}

/// Subnet ids and their VPC: by id (`subnet-…`), by tag (`key=value`) or `Name` tag, or the
/// default VPC's when none are given.
async fn subnets(clients: &Clients, config: &AwsTarget) -> Result<(Vec<String>, String), AwsError> {
    let region = config.region.clone();
    let mut found = Vec::new();
    if config.subnets.is_empty() {
        let vpcs = clients
            .ec2
            .describe_vpcs()
            .filters(filter("isDefault", "true"))
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeVpcs", e))?;
        let vpc = vpcs
            .vpcs
            .unwrap_or_default()
            .into_iter()
            .find_map(|v| v.vpc_id)
            .ok_or(AwsError::NoDefaultSubnets {
                region: region.clone(),
            })?;
        let output = clients
            .ec2
            .describe_subnets()
            .filters(filter("vpc-id", &vpc))
            .send()
            .await
            .map_err(|e| AwsError::call("DescribeSubnets", e))?;
        found = output.subnets.unwrap_or_default();
        found.sort_by(|a, b| a.availability_zone.cmp(&b.availability_zone));
        if found.is_empty() {
            return Err(AwsError::NoDefaultSubnets { region });
        }
    }
    for wanted in &config.subnets {
        let request = clients.ec2.describe_subnets();
        let request = if wanted.starts_with("subnet-") {
            request.subnet_ids(wanted)
        } else if let Some((key, value)) = wanted.split_once('=') {
            request.filters(filter(&format!("tag:{key}"), value))
        } else {
            request.filters(filter("tag:Name", wanted))
        };
        let missing = || AwsError::SubnetNotFound {
            subnet: wanted.clone(),
            region: region.clone(),
        };
        let subnets = match request.send().await {
            Ok(output) => output.subnets.unwrap_or_default(),
            Err(error) if not_found(&error) => return Err(missing()),
            Err(error) => return Err(AwsError::call("DescribeSubnets", error)),
        };
        if subnets.is_empty() {
            return Err(missing());
        }
        found.extend(subnets);
    }
    let vpc = found
        .iter()
        .find_map(|s| s.vpc_id.clone())
        .unwrap_or_default();
    let mut ids: Vec<String> = found.into_iter().filter_map(|s| s.subnet_id).collect();
    ids.dedup();
    Ok((ids, vpc))
}

/// Security group ids: by id (`sg-…`) or by name within the subnets' VPC.
async fn security_groups(
    clients: &Clients,
    config: &AwsTarget,
    vpc: &str,
) -> Result<Vec<String>, AwsError> {
    let mut ids = Vec::new();
    for wanted in &config.security_groups {
        let request = clients.ec2.describe_security_groups();
        let request = if wanted.starts_with("sg-") {
            request.group_ids(wanted)
        } else {
            request
                .filters(filter("group-name", wanted))
                .filters(filter("vpc-id", vpc))
        };
        let missing = || AwsError::SecurityGroupNotFound {
            group: wanted.clone(),
            vpc: vpc.to_string(),
        };
        let groups = match request.send().await {
            Ok(output) => output.security_groups.unwrap_or_default(),
            Err(error) if not_found(&error) => return Err(missing()),
            Err(error) => return Err(AwsError::call("DescribeSecurityGroups", error)),
        };
        let id = groups
            .into_iter()
            .find_map(|g| g.group_id)
            .ok_or_else(missing)?;
        ids.push(id);
    }
    Ok(ids)
}

/// A target group's ARN, given its ARN or its name.
async fn target_group(
    clients: &Clients,
    config: &AwsTarget,
    service: &str,
    group: &str,
) -> Result<String, AwsError> {
    let request = clients.elb.describe_target_groups();
    let request = if group.starts_with("arn:") {
        request.target_group_arns(group)
    } else {
        request.names(group)
    };
    let missing = || AwsError::TargetGroupNotFound {
        service: service.to_string(),
        group: group.to_string(),
        region: config.region.clone(),
    };
    match request.send().await {
        Ok(output) => output
            .target_groups
            .unwrap_or_default()
            .into_iter()
            .find_map(|g| g.target_group_arn)
            .ok_or_else(missing),
        Err(error) if not_found(&error) => Err(missing()),
        Err(error) => Err(AwsError::call("DescribeTargetGroups", error)),
    }
}

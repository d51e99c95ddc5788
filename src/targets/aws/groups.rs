//! Convoy's Auto Scaling groups as plain values read from the API, who owns a group (its tags),
//! and the pure health rules over them: a group is ready when its desired number of instances are
//! InService and Healthy — and, on a group with Convoy's launch hook, reported healthy by the
//! agent.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter, LifecycleState, Tag};

use crate::plan::ServiceState;
use crate::targets::aws::connection::Clients;
use crate::targets::aws::error::describe;
use crate::targets::aws::names::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub in_service: bool,
    pub healthy: bool,
    /// What the agent reported (`convoy:health`): `None` before it has, or where nobody reads it.
    pub agent: Option<AgentReport>,
}

/// The agent's verdict on one instance, from its `convoy:health` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReport {
    Passed,
    Failed(String),
}

impl AgentReport {
    pub fn from_tag(value: &str) -> AgentReport {
        if value == HEALTH_PASSED {
            AgentReport::Passed
        } else {
            let reason = value.strip_prefix("failed:").unwrap_or(value).trim();
            AgentReport::Failed(reason.to_string())
        }
    }
}

/// One group, as far as Convoy cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub name: String,
    pub service: String,
    pub version: String,
    pub environment: String,
    pub project: String,
    /// The release that created the group (`convoy:release`).
    pub release: Option<u64>,
    /// Created with Convoy's launch hook: instances count only once the agent reported them.
    pub gated: bool,
    /// This life of the group (`convoy:incarnation`), which its instances carry too.
    pub incarnation: Option<String>,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub instances: Vec<Instance>,
    pub target_groups: Vec<String>,
    /// Share of the service's traffic (tag), 0–100.
    pub traffic: u8,
    /// Size it was provisioned with (tag).
    pub capacity: i32,
    pub template_version: Option<i64>,
    pub health_check_type: Option<String>,
    pub grace: Option<i32>,
    pub subnets: Option<String>,
    /// Being deleted: gone as far as rollouts are concerned.
    pub deleting: bool,
}

impl Group {
    /// `None` for a group without Convoy's service and version tags.
    pub fn from_sdk(group: AutoScalingGroup) -> Option<Group> {
        let tags = sdk_tags(group.tags());
        let desired = group.desired_capacity.unwrap_or(0);
        Some(Group {
            name: group.auto_scaling_group_name?,
            service: tags.get(TAG_SERVICE)?.clone(),
            version: tags.get(TAG_VERSION)?.clone(),
            environment: tags.get(TAG_ENV).cloned().unwrap_or_default(),
            project: tags.get(TAG_PROJECT).cloned().unwrap_or_default(),
            release: tags.get(TAG_RELEASE).and_then(|r| r.parse().ok()),
            gated: tags.contains_key(TAG_GATE),
            incarnation: tags.get(TAG_INCARNATION).cloned(),
            min: group.min_size.unwrap_or(0),
            max: group.max_size.unwrap_or(0),
            desired,
            instances: group
                .instances
                .unwrap_or_default()
                .into_iter()
                .map(|i| Instance {
                    id: i.instance_id.unwrap_or_default(),
                    in_service: i.lifecycle_state == Some(LifecycleState::InService),
                    healthy: i.health_status.as_deref() == Some("Healthy"),
                    agent: None,
                })
                .collect(),
            target_groups: group.target_group_arns.unwrap_or_default(),
            traffic: tags
                .get(TAG_TRAFFIC)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            capacity: tags
                .get(TAG_CAPACITY)
                .and_then(|t| t.parse().ok())
                .unwrap_or(desired),
            template_version: tags.get(TAG_TEMPLATE_VERSION).and_then(|t| t.parse().ok()),
            health_check_type: group.health_check_type,
            grace: group.health_check_grace_period,
            subnets: group.vpc_zone_identifier,
            deleting: group.status.is_some_and(|s| s.contains("Delete")),
        })
    }

    /// Whether its tags say this project's environment made it: the only groups Convoy changes.
    pub fn is_ours(&self, project: &str, environment: &str) -> bool {
        self.project == project && self.environment == environment
    }

    /// An instance that counts: InService, Healthy, and on a gated group passed by the agent.
    fn counts(&self, instance: &Instance) -> bool {
        instance.in_service
            && instance.healthy
            && (!self.gated || instance.agent == Some(AgentReport::Passed))
    }

    /// Instances that count towards the health gate.
    pub fn ready_instances(&self) -> Vec<&Instance> {
        self.instances.iter().filter(|i| self.counts(i)).collect()
    }

    /// The health gate: at least the desired number of instances that count.
    pub fn is_ready(&self) -> bool {
        self.ready_instances().len() >= self.desired.max(0) as usize
    }

    /// Instances the agent abandoned, with its reason: the group will not become healthy with
    /// this revision, so the wait fails at once.
    pub fn abandoned(&self) -> Vec<(&str, &str)> {
        self.instances
            .iter()
            .filter_map(|i| match &i.agent {
                Some(AgentReport::Failed(reason)) => Some((i.id.as_str(), reason.as_str())),
                _ => None,
            })
            .collect()
    }

    /// What is wrong, for messages: `2/4 instances InService and Healthy; i-1 Unhealthy`.
    pub fn health_summary(&self) -> String {
        let passed = if self.gated {
            ", passed by the agent"
        } else {
            ""
        };
        let mut text = format!(
            "{}/{} instances InService and Healthy{passed}",
            self.ready_instances().len(),
            self.desired
        );
        let sick: Vec<String> = self
            .instances
            .iter()
            .filter(|i| !self.counts(i))
            .map(|i| {
                let state = match (i.in_service, i.healthy, &i.agent) {
                    (_, _, Some(AgentReport::Failed(reason))) => {
                        format!("abandoned by the agent: {reason}")
                    }
                    (false, _, _) => "not InService".to_string(),
                    (true, false, _) => "Unhealthy".to_string(),
                    (true, true, _) => "not yet reported healthy by the agent".to_string(),
                };
                format!("{} {state}", i.id)
            })
            .collect();
        if !sick.is_empty() {
            text.push_str("; ");
            text.push_str(&listed(&sick, ", "));
        }
        text
    }
}

/// At most [`LISTED`] of `items`, and how many more: a group that keeps replacing abandoned
/// instances would otherwise make an error of hundreds of lines.
pub fn listed(items: &[String], separator: &str) -> String {
    let mut text = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(separator);
    if items.len() > LISTED {
        text.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    text
}

/// Instances named in one message.
const LISTED: usize = 4;

/// The live and warm versions of each service, from the groups' tags alone (no records needed):
/// live is the version with the largest traffic share, warm every group not being deleted.
pub fn service_states(groups: &[Group], services: &[String]) -> BTreeMap<String, ServiceState> {
    let mut states = BTreeMap::new();
    for service in services {
        let mine: Vec<&Group> = groups
            .iter()
            .filter(|g| &g.service == service && !g.deleting)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let live = mine
            .iter()
            .filter(|g| g.traffic > 0)
            .max_by_key(|g| g.traffic)
            .map(|g| g.version.clone());
        let mut warm: Vec<String> = mine.iter().map(|g| g.version.clone()).collect();
        warm.sort();
        states.insert(service.clone(), ServiceState { live, warm });
    }
    states
}

/// Every group of this project and environment, by Convoy's tags.
pub async fn environment_groups(
    clients: &Clients,
    project: &str,
    environment: &str,
) -> Result<Vec<Group>, String> {
    let filter = |key: &str, value: &str| {
        Filter::builder()
            .name(format!("tag:{key}"))
            .values(value)
            .build()
    };
    let mut pages = clients
        .autoscaling
        .describe_auto_scaling_groups()
        .filters(filter(TAG_PROJECT, project))
        .filters(filter(TAG_ENV, environment))
        .into_paginator()
        .send();
    let mut groups = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("DescribeAutoScalingGroups: {}", describe(&e)))?;
        groups.extend(
            page.auto_scaling_groups
                .unwrap_or_default()
                .into_iter()
                .filter_map(Group::from_sdk),
        );
    }
    Ok(groups)
}

/// One group by name, if it exists and is a Convoy group (whoever's).
pub async fn group(clients: &Clients, name: &str) -> Result<Option<Group>, String> {
    Ok(match lookup(clients, name).await? {
        Lookup::Convoy(group) => Some(*group),
        Lookup::Absent | Lookup::Other(_) => None,
    })
}

/// What stands under a group name.
#[derive(Debug)]
pub enum Lookup {
    Absent,
    /// A group with Convoy's tags (of any project or environment).
    Convoy(Box<Group>),
    /// A group without them: someone else's, whose tags say this.
    Other(Owner),
}

/// The group of that name, Convoy's or not: a name taken by anyone is a collision.
pub async fn lookup(clients: &Clients, name: &str) -> Result<Lookup, String> {
    let output = clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| format!("DescribeAutoScalingGroups: {}", describe(&e)))?;
    let Some(found) = output
        .auto_scaling_groups
        .unwrap_or_default()
        .into_iter()
        .find(|g| g.auto_scaling_group_name.as_deref() == Some(name))
    else {
        return Ok(Lookup::Absent);
    };
    let owner = Owner::from_tags(&sdk_tags(found.tags()));
    Ok(match Group::from_sdk(found) {
        Some(group) => Lookup::Convoy(Box::new(group)),
        None => Lookup::Other(owner),
    })
}

/// A group's tags as a map.
pub fn sdk_tags(tags: &[aws_sdk_autoscaling::types::TagDescription]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

/// A tag on a group (not propagated to instances: instances get theirs from the template).
pub fn group_tag(group: &str, key: &str, value: &str, propagate: bool) -> Tag {
    Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(key)
        .value(value)
        .propagate_at_launch(propagate)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(version: &str, traffic: u8, instances: &[(bool, bool)]) -> Group {
        Group {
            name: format!("shop-web-{version}"),
            service: "web".into(),
            version: version.into(),
            desired: instances.len() as i32,
            traffic,
            instances: instances
                .iter()
                .enumerate()
                .map(|(n, (in_service, healthy))| Instance {
                    id: format!("i-{n}"),
                    in_service: *in_service,
                    healthy: *healthy,
                    agent: None,
                })
                .collect(),
            ..Group::default()
        }
    }

    /// moto and a slow agent alike report instances InService before the agent ran: on a
    /// gated group they count only once it reported them passed, and one it abandoned fails.
    #[test]
    fn on_a_gated_group_only_instances_the_agent_passed_count() {
        let mut gated = group("a", 0, &[(true, true), (true, true)]);
        gated.gated = true;
        assert!(!gated.is_ready());
        assert_eq!(
            gated.health_summary(),
            "0/2 instances InService and Healthy, passed by the agent; \
             i-0 not yet reported healthy by the agent, i-1 not yet reported healthy by the agent"
        );
        gated.instances[0].agent = Some(AgentReport::from_tag("passed"));
        gated.instances[1].agent = Some(AgentReport::from_tag(
            "failed: health command `bin/health` failed with exit code 1",
        ));
        assert!(!gated.is_ready());
        assert_eq!(
            gated.abandoned(),
            vec![("i-1", "health command `bin/health` failed with exit code 1")]
        );
        gated.instances[1].agent = Some(AgentReport::Passed);
        assert!(gated.is_ready());
        // A group made before the gate is judged as before.
        assert!(group("a", 0, &[(true, true)]).is_ready());
    }

    #[test]
    fn long_lists_of_instances_are_cut_with_a_count() {
        let ids: Vec<String> = (0..7).map(|n| format!("i-{n}")).collect();
        assert_eq!(listed(&ids[..2], ", "), "i-0, i-1");
        assert_eq!(listed(&ids, ", "), "i-0, i-1, i-2, i-3 and 3 more");
    }

    #[test]
    fn ready_needs_every_desired_instance_in_service_and_healthy() {
        assert!(group("a", 0, &[(true, true), (true, true)]).is_ready());
        let sick = group("a", 0, &[(true, true), (true, false)]);
        assert!(!sick.is_ready());
        assert_eq!(
            sick.health_summary(),
            "1/2 instances InService and Healthy; i-1 Unhealthy"
        );
        assert!(!group("a", 0, &[(false, true)]).is_ready());
    }

    #[test]
    fn live_is_the_largest_share_and_every_remaining_group_is_warm() {
        let mut deleting = group("c", 0, &[]);
        deleting.deleting = true;
        let groups = [group("a", 10, &[]), group("b", 90, &[]), deleting];
        let states = service_states(&groups, &["web".to_string(), "api".to_string()]);
        assert_eq!(states["web"].live.as_deref(), Some("b"));
        assert_eq!(states["web"].warm, vec!["a", "b"]);
        assert!(!states.contains_key("api"));
    }
}

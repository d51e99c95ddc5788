//! What the agent reported on a gated group's instances: the `convoy:health` tag it writes on
//! its instance before completing the launch hook (`passed`, or `failed: <reason>`), read with
//! the instances of this life of the group (`convoy:incarnation`) — abandoned ones too, which
//! leave the group at once — and never those of an earlier group of the same name.

use aws_sdk_ec2::types::Filter;

use crate::targets::aws::connection::Clients;
use crate::targets::aws::error::describe;
use crate::targets::aws::groups::{AgentReport, Group, Instance};
use crate::targets::aws::names::*;

/// `group` with what the agent reported on each of its instances (`convoy:health`), and the
/// instances it abandoned that have left the group since. Only gated groups are asked.
/// `since`: abandons of instances launched before then are old news (an instance that was
/// replaced long ago says nothing about a switch back to its group today).
pub(super) async fn with_agent_reports(
    clients: &Clients,
    mut group: Group,
    since: Option<i64>,
) -> Result<Group, String> {
    let (true, Some(incarnation)) = (group.gated, group.incarnation.clone()) else {
        return Ok(group);
    };
    let filter = Filter::builder()
        .name(format!("tag:{TAG_INCARNATION}"))
        .values(incarnation)
        .build();
    let mut pages = clients
        .ec2
        .describe_instances()
        .filters(filter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("DescribeInstances: {}", describe(&e)))?;
        let instances = page
            .reservations
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.instances.unwrap_or_default());
        for instance in instances {
            let Some(id) = instance.instance_id.clone() else {
                continue;
            };
            let launched = instance.launch_time.map(|t| t.secs());
            let report = instance
                .tags()
                .iter()
                .find(|t| t.key() == Some(TAG_HEALTH))
                .and_then(|t| t.value())
                .map(AgentReport::from_tag)
                .filter(|report| {
                    let old = matches!((launched, since), (Some(l), Some(s)) if l < s);
                    !(old && matches!(report, AgentReport::Failed(_)))
                });
            match group.instances.iter_mut().find(|i| i.id == id) {
                Some(member) => member.agent = report,
                // One of this group's that has left it: abandoned by the agent.
                None if matches!(report, Some(AgentReport::Failed(_))) => {
                    group.instances.push(Instance {
                        id,
                        in_service: false,
                        healthy: false,
                        agent: report,
                    });
                }
                None => {}
            }
        }
    }
    Ok(group)
}

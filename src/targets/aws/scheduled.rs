//! Convoy's scheduled actions on a group (`convoy-prewarm-<n>`): read, made exactly what the
//! schedule wants (put before stale ones are deleted, so a group is never without its restore),
//! and moved to the group a switch gives the traffic. Actions of other names are the operator's
//! and left alone.

use aws_sdk_autoscaling::types::{ScheduledUpdateGroupAction, ScheduledUpdateGroupActionRequest};
use aws_smithy_types::DateTime;
use jiff::Timestamp;

use crate::plan::prewarm::Level;
use crate::plan::prewarm_actions::{ACTION_PREFIX, ScheduledAction};
use crate::targets::TargetsError;
use crate::targets::aws::connection::Clients;
use crate::targets::aws::error::describe;
use crate::targets::aws::prewarm::{call, count, size};

/// AWS takes at most this many actions in one batch call.
const BATCH: usize = 50;

/// An action as AWS describes it, comparable with one Convoy would put.
fn same(found: &ScheduledUpdateGroupAction, wanted: &ScheduledAction) -> bool {
    found.scheduled_action_name.as_deref() == Some(wanted.name.as_str())
        && found.start_time.map(|t| t.secs()) == Some(wanted.start.as_second())
        && found.min_size == Some(size(wanted.level.replicas))
        && found.desired_capacity == Some(size(wanted.level.desired_or_min()))
        && found.max_size == wanted.level.max.map(size)
        && found.recurrence.is_none()
}

/// Convoy's scheduled actions on `group`.
pub(super) async fn actions_of(
    clients: &Clients,
    group: &str,
) -> Result<Vec<ScheduledUpdateGroupAction>, TargetsError> {
    let mut pages = clients
        .autoscaling
        .describe_scheduled_actions()
        .auto_scaling_group_name(group)
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call("DescribeScheduledActions", describe(&e)))?;
        found.extend(
            page.scheduled_update_group_actions
                .unwrap_or_default()
                .into_iter()
                .filter(|a| {
                    a.scheduled_action_name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(ACTION_PREFIX))
                }),
        );
    }
    Ok(found)
}

/// Makes Convoy's actions on `group` exactly `wanted`: new and changed ones put first (a put
/// replaces an action of the same name), then the others deleted, so the group is never
/// without its restore.
pub(super) async fn replace_actions(
    clients: &Clients,
    group: &str,
    wanted: &[ScheduledAction],
) -> Result<(), TargetsError> {
    let found = actions_of(clients, group).await?;
    let missing: Vec<&ScheduledAction> = wanted
        .iter()
        .filter(|w| !found.iter().any(|f| same(f, w)))
        .collect();
    for batch in missing.chunks(BATCH) {
        let requests = batch
            .iter()
            .map(|action| {
                ScheduledUpdateGroupActionRequest::builder()
                    .scheduled_action_name(&action.name)
                    .start_time(DateTime::from_secs(action.start.as_second()))
                    .min_size(size(action.level.replicas))
                    .desired_capacity(size(action.level.desired_or_min()))
                    .set_max_size(action.level.max.map(size))
                    .build()
            })
            .collect();
        let output = clients
            .autoscaling
            .batch_put_scheduled_update_group_action()
            .auto_scaling_group_name(group)
            .set_scheduled_update_group_actions(Some(requests))
            .send()
            .await
            .map_err(|e| call("BatchPutScheduledUpdateGroupAction", describe(&e)))?;
        if let Some(failed) = output.failed_scheduled_update_group_actions().first() {
            return Err(call(
                "BatchPutScheduledUpdateGroupAction",
                format!(
                    "{group}: {} refused: {}",
                    failed.scheduled_action_name().unwrap_or_default(),
                    failed.error_message().unwrap_or("no reason given")
                ),
            ));
        }
    }
    let stale: Vec<String> = found
        .iter()
        .filter_map(|f| f.scheduled_action_name.clone())
        .filter(|name| !wanted.iter().any(|w| &w.name == name))
        .collect();
    for batch in stale.chunks(BATCH) {
        let output = clients
            .autoscaling
            .batch_delete_scheduled_action()
            .auto_scaling_group_name(group)
            .set_scheduled_action_names(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| call("BatchDeleteScheduledAction", describe(&e)))?;
        if let Some(failed) = output.failed_scheduled_actions().first() {
            return Err(call(
                "BatchDeleteScheduledAction",
                format!(
                    "{group}: {} kept: {}",
                    failed.scheduled_action_name().unwrap_or_default(),
                    failed.error_message().unwrap_or("no reason given")
                ),
            ));
        }
    }
    Ok(())
}

/// Moves Convoy's actions still ahead at `now` from `from` to `to` (a switch to another group
/// of the service: a deploy's, or a rollback's to a group kept warm), so the prewarm follows
/// the traffic and a group out of it is not raised for the spike.
pub(super) async fn move_actions(
    clients: &Clients,
    from: &str,
    to: &str,
    now: Timestamp,
) -> Result<(), TargetsError> {
    let ahead: Vec<ScheduledAction> = actions_of(clients, from)
        .await?
        .into_iter()
        .filter_map(|a| {
            let start = Timestamp::from_second(a.start_time?.secs()).ok()?;
            (start > now).then_some(ScheduledAction {
                name: a.scheduled_action_name?,
                start,
                level: Level {
                    replicas: count(a.min_size.or(a.desired_capacity)?),
                    max: a.max_size.map(count),
                    desired: a.desired_capacity.map(count),
                },
            })
        })
        .collect();
    if ahead.is_empty() {
        // Nothing to move; what `to` carries was put there by an `apply` that saw it live.
        return Ok(());
    }
    replace_actions(clients, to, &ahead).await?;
    replace_actions(clients, from, &[]).await
}

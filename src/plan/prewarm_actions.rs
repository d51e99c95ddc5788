//! A service's schedule as a step function of levels over time, and the scheduled actions a cloud
//! auto-scaling group would need to follow it (for the AWS target), validated against AWS's rules
//! before anything is sent: at most 125 actions per group, unique start times, none in the past,
//! and raises early enough that an action firing two minutes late is still ready for the spike.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::prewarm::{Level, PrewarmError, Schedule};

/// AWS allows this many scheduled actions per Auto Scaling group.
pub const MAX_ACTIONS_PER_GROUP: usize = 125;
/// Every action Convoy puts on a group starts with this; others are the operator's.
pub const ACTION_PREFIX: &str = "convoy-prewarm-";
/// AWS may run a scheduled action up to this late.
pub const MAY_FIRE_LATE: Duration = Duration::from_secs(120);

/// One scheduled action: from `start`, the group's minimum and desired capacity (and maximum when
/// the level has one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledAction {
    pub name: String,
    pub start: Timestamp,
    pub level: Level,
}

/// The level `service` has from each moment its schedule changes it, starting from `baseline`;
/// consecutive equal levels are merged, so each start time appears once.
pub fn steps(schedule: &Schedule, service: &str, baseline: Level) -> Vec<(Timestamp, Level)> {
    let mut moments: Vec<Timestamp> = schedule
        .windows
        .iter()
        .filter(|w| w.services().any(|s| s == service))
        .flat_map(|w| [w.starts, w.ends])
        .collect();
    moments.sort();
    moments.dedup();
    let mut out: Vec<(Timestamp, Level)> = Vec::new();
    let mut last = baseline;
    for moment in moments {
        let active = schedule.windows.iter().filter(|w| w.active(moment));
        let mut raise = None;
        let mut pause = false;
        for window in active {
            if let Some(&c) = window.capacity.get(service) {
                raise = raise.max(Some(c));
            }
            pause |= window.paused.contains(service);
        }
        let level = match (raise, pause) {
            (Some(c), _) => baseline.raised(c),
            (None, true) => baseline.paused(),
            (None, false) => baseline,
        };
        if level != last {
            out.push((moment, level));
            last = level;
        }
    }
    out
}

/// The scheduled actions for `service`'s group, named `convoy-prewarm-<n>`, or why AWS would
/// refuse them (or why they would be late).
pub fn scheduled_actions(
    schedule: &Schedule,
    service: &str,
    group: &str,
    baseline: Level,
    now: Timestamp,
) -> Result<Vec<ScheduledAction>, PrewarmError> {
    if let Some((start, _)) = steps(schedule, service, baseline)
        .iter()
        .find(|(start, _)| *start <= now)
    {
        return Err(PrewarmError::ScheduledActions {
            group: group.to_string(),
            detail: format!("an action would start at {start}, not in the future"),
        });
    }
    remaining_actions(schedule, service, group, baseline, now)
}

/// The scheduled actions still ahead at `now`, for a group already moved to the level the
/// schedule gives it at `now` (by [`super::prewarm::due`]): changes due by `now` are the
/// caller's to make at once, so only later ones become actions, and only windows not started
/// yet need a lead long enough for an action firing late.
pub fn remaining_actions(
    schedule: &Schedule,
    service: &str,
    group: &str,
    baseline: Level,
    now: Timestamp,
) -> Result<Vec<ScheduledAction>, PrewarmError> {
    let refuse = |detail: String| PrewarmError::ScheduledActions {
        group: group.to_string(),
        detail,
    };
    let late = SignedDuration::try_from(MAY_FIRE_LATE).unwrap_or(SignedDuration::ZERO);
    for window in schedule
        .windows
        .iter()
        .filter(|w| w.capacity.contains_key(service) && w.starts > now)
    {
        if window.at.timestamp().duration_since(window.starts) < late {
            return Err(refuse(format!(
                "window {} raises capacity less than 2m before {}; scheduled actions may fire up to 2 minutes late",
                window.id, window.at
            )));
        }
    }
    let steps: Vec<(Timestamp, Level)> = steps(schedule, service, baseline)
        .into_iter()
        .filter(|(start, _)| *start > now)
        .collect();
    if steps.len() > MAX_ACTIONS_PER_GROUP {
        return Err(refuse(format!(
            "{} scheduled actions, more than AWS's {MAX_ACTIONS_PER_GROUP} per group",
            steps.len()
        )));
    }
    Ok(steps
        .into_iter()
        .enumerate()
        .map(|(n, (start, level))| ScheduledAction {
            name: format!("{ACTION_PREFIX}{}", n + 1),
            start,
            level,
        })
        .collect())
}

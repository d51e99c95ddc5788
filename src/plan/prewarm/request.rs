//! A request for a prewarm window, checked against `now` and planned from each service's baseline.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp, Zoned};
use serde::Serialize;

use super::{CapacityRule, Level, PrewarmError, Schedule, Window};

/// A request for a new window, every flag already parsed.
#[derive(Debug, Clone)]
pub struct PrewarmRequest {
    pub environment: String,
    pub at: Zoned,
    pub lead: Duration,
    pub hold: Duration,
    pub rule: CapacityRule,
    /// Services to raise (request path).
    pub services: Vec<String>,
    /// Services to pause (background work).
    pub paused: Vec<String>,
    /// The rollout policy's cap on any service's capacity.
    pub max_capacity: Option<u32>,
    /// `--now`: the window starts at once (and `at` may be now).
    pub starts_now: bool,
}

/// What the window will do to one service, for the plan shown before storing it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedService {
    pub service: String,
    pub baseline: Level,
    pub during: Level,
    /// The rule asked for more than the policy's `max_capacity`.
    pub capped_from: Option<u32>,
    pub paused: bool,
}

const MAX_LEAD: Duration = Duration::from_secs(24 * 3600);
const MAX_HOLD: Duration = Duration::from_secs(7 * 24 * 3600);

/// The window a request makes, validated against `now`, the services' `current` levels and the
/// baselines already captured (a service inside another window is planned from its baseline, not
/// from that window's raised capacity).
pub fn plan_window(
    request: &PrewarmRequest,
    schedule: &Schedule,
    current: &BTreeMap<String, Level>,
    now: Timestamp,
) -> Result<(Window, Vec<PlannedService>), PrewarmError> {
    request.rule.validate()?;
    let (starts, ends) = window_times(request, now)?;
    if let Some(service) = request.services.iter().find(|s| request.paused.contains(s)) {
        return Err(PrewarmError::PausedAndRaised {
            service: service.clone(),
        });
    }
    if request.services.is_empty() {
        return Err(PrewarmError::NothingToRaise);
    }
    let (capacity, planned) = planned_services(request, schedule, current)?;
    let window = Window {
        id: next_id(schedule),
        at: request.at.clone(),
        starts,
        ends,
        capacity,
        paused: request.paused.iter().cloned().collect(),
        rule: request.rule.describe(),
    };
    Ok((window, planned))
}

/// When the window starts and ends; refuses a lead or hold out of range and a window in the past.
fn window_times(
    request: &PrewarmRequest,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), PrewarmError> {
    let at = request.at.timestamp();
    if request.lead > MAX_LEAD {
        return Err(out_of_range("--lead", request.lead, "at most 24h"));
    }
    if request.hold.is_zero() || request.hold > MAX_HOLD {
        return Err(out_of_range(
            "--hold",
            request.hold,
            "above 0 and at most 7 days",
        ));
    }
    let lead = SignedDuration::try_from(request.lead).unwrap_or(SignedDuration::MAX);
    let hold = SignedDuration::try_from(request.hold).unwrap_or(SignedDuration::MAX);
    let starts = if request.starts_now { now } else { at - lead };
    let ends = at + hold;
    if !request.starts_now && at <= now || ends <= now {
        return Err(PrewarmError::InThePast {
            at: request.at.to_string(),
            now: now.to_string(),
        });
    }
    Ok((starts, ends))
}

/// Each raised service at its capped capacity, then each paused one, from its baseline; and the
/// capacity per raised service that the window stores.
fn planned_services(
    request: &PrewarmRequest,
    schedule: &Schedule,
    current: &BTreeMap<String, Level>,
) -> Result<(BTreeMap<String, u32>, Vec<PlannedService>), PrewarmError> {
    let baseline = |service: &String| baseline(request, schedule, current, service);
    let mut planned = Vec::new();
    let mut capacity = BTreeMap::new();
    for service in &request.services {
        let base = baseline(service)?;
        let wanted = request.rule.replicas(base.replicas);
        let capped = request.max_capacity.map_or(wanted, |m| wanted.min(m));
        capacity.insert(service.clone(), capped);
        planned.push(PlannedService {
            service: service.clone(),
            baseline: base,
            during: base.raised(capped),
            capped_from: (capped < wanted).then_some(wanted),
            paused: false,
        });
    }
    for service in &request.paused {
        let base = baseline(service)?;
        planned.push(PlannedService {
            service: service.clone(),
            baseline: base,
            during: base.paused(),
            capped_from: None,
            paused: true,
        });
    }
    Ok((capacity, planned))
}

/// The level a service returns to after the window: the one captured by an earlier window, else
/// what it has now.
fn baseline(
    request: &PrewarmRequest,
    schedule: &Schedule,
    current: &BTreeMap<String, Level>,
    service: &str,
) -> Result<Level, PrewarmError> {
    schedule
        .baselines
        .get(service)
        .or_else(|| current.get(service))
        .copied()
        .ok_or_else(|| PrewarmError::NotLive {
            service: service.to_string(),
            environment: request.environment.clone(),
        })
}

fn out_of_range(flag: &'static str, value: Duration, rule: &str) -> PrewarmError {
    PrewarmError::OutOfRange {
        flag,
        value: humantime::format_duration(value).to_string(),
        rule: rule.to_string(),
    }
}

/// Window ids are small numbers, never reused while the schedule holds a window.
fn next_id(schedule: &Schedule) -> String {
    let highest = schedule
        .windows
        .iter()
        .filter_map(|w| w.id.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    (highest + 1).to_string()
}

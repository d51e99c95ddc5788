//! Pre-warm schedules as data: windows `[at − lead, at + hold]` with a capacity per service, the
//! capacity each service should have at `now` (overlapping windows take the largest; the end of
//! the last one restores the baseline captured before the first), and background work paused.
//! Times are absolute: a two-hour hold across a daylight-saving change is two hours.

mod request;

pub use request::{PlannedService, PrewarmRequest, plan_window};

use std::collections::{BTreeMap, BTreeSet};

use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

pub use super::prewarm_error::PrewarmError;

/// How much capacity the request path needs during a window.
#[derive(Debug, Clone, PartialEq)]
pub enum CapacityRule {
    /// `--capacity N`: this many replicas (instances).
    Replicas(u32),
    /// `--factor X`: the baseline times X, rounded up.
    Factor(f64),
    /// `--rps R --rps-per-replica P [--headroom H%]`: ⌈R × (1 + H) / P⌉.
    Rps {
        rps: f64,
        per_replica: f64,
        headroom_percent: u32,
    },
}

impl CapacityRule {
    /// Refuses rules that cannot give a sensible capacity, naming the flag.
    pub fn validate(&self) -> Result<(), PrewarmError> {
        let out = |flag, value: String, rule: &str| PrewarmError::OutOfRange {
            flag,
            value,
            rule: rule.to_string(),
        };
        match *self {
            CapacityRule::Replicas(0) => Err(out("--capacity", "0".into(), "at least 1")),
            CapacityRule::Factor(x) if !(x.is_finite() && x > 1.0 && x <= 100.0) => Err(out(
                "--factor",
                x.to_string(),
                "above 1 and at most 100 (a prewarm raises capacity)",
            )),
            CapacityRule::Rps { rps, .. } if !(rps.is_finite() && rps > 0.0) => {
                Err(out("--rps", rps.to_string(), "a positive number"))
            }
            CapacityRule::Rps { per_replica, .. }
                if !(per_replica.is_finite() && per_replica > 0.0) =>
            {
                Err(out(
                    "--rps-per-replica",
                    per_replica.to_string(),
                    "a positive number",
                ))
            }
            CapacityRule::Rps {
                headroom_percent, ..
            } if headroom_percent > 1000 => Err(out(
                "--headroom",
                format!("{headroom_percent}%"),
                "at most 1000%",
            )),
            _ => Ok(()),
        }
    }

    /// The replicas this rule asks for a service whose baseline is `baseline`, before any cap.
    pub fn replicas(&self, baseline: u32) -> u32 {
        let wanted = match *self {
            CapacityRule::Replicas(n) => return n,
            CapacityRule::Factor(x) => f64::from(baseline) * x,
            CapacityRule::Rps {
                rps,
                per_replica,
                headroom_percent,
            } => rps * (1.0 + f64::from(headroom_percent) / 100.0) / per_replica,
        };
        // Float noise (3 × 1.1 = 3.3000000000000003) must not add a replica.
        let rounded = (wanted * 1e6).round() / 1e6;
        rounded.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    }

    pub fn describe(&self) -> String {
        match self {
            CapacityRule::Replicas(n) => format!("{n} replicas"),
            CapacityRule::Factor(x) => format!("×{x}"),
            CapacityRule::Rps {
                rps,
                per_replica,
                headroom_percent,
            } => format!("{rps} rps at {per_replica}/replica +{headroom_percent}%"),
        }
    }
}

/// A service's capacity: the HPA's `minReplicas` and `maxReplicas`, or a Deployment's (or group's)
/// replicas with no maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The minimum (an HPA's `minReplicas`, a group's `MinSize`), or the replicas.
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// What runs now within `replicas..max`, where the target keeps it apart from the minimum
    /// (an Auto Scaling group's `DesiredCapacity`): restored too, so a window leaves neither a
    /// raised minimum nor raised capacity behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
}

impl Level {
    /// Raised to at least `capacity` (never lowered), the maximum widened to fit.
    pub fn raised(self, capacity: u32) -> Level {
        Level {
            replicas: self.replicas.max(capacity),
            max: self.max.map(|m| m.max(capacity)),
            desired: self.desired.map(|d| d.max(capacity)),
        }
    }

    /// Background work during a window: held at its minimum (an autoscaler or group pinned
    /// there), or one replica.
    pub fn paused(self) -> Level {
        match self.max {
            Some(_) => Level {
                replicas: self.replicas,
                max: Some(self.replicas),
                desired: self.desired.map(|_| self.replicas),
            },
            None => Level {
                replicas: self.replicas.min(1),
                max: None,
                desired: None,
            },
        }
    }

    /// The capacity to set as desired: `desired` where kept apart, else the minimum.
    pub fn desired_or_min(&self) -> u32 {
        self.desired.unwrap_or(self.replicas)
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.max {
            Some(max) => write!(f, "{}..{max}", self.replicas)?,
            None => write!(f, "{}", self.replicas)?,
        }
        if let Some(desired) = self.desired.filter(|d| *d != self.replicas) {
            write!(f, " ({desired} running)")?;
        }
        Ok(())
    }
}

/// One prewarm: the spike at `at`, capacity raised from `starts` until `ends`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub id: String,
    pub at: Zoned,
    pub starts: Timestamp,
    pub ends: Timestamp,
    /// Request-path services and the replicas each needs (already capped).
    pub capacity: BTreeMap<String, u32>,
    /// Background services held at their minimum for the window.
    #[serde(default)]
    pub paused: BTreeSet<String>,
    /// The rule as the operator gave it, for listings.
    pub rule: String,
}

impl Window {
    pub fn active(&self, now: Timestamp) -> bool {
        self.starts <= now && now < self.ends
    }

    pub fn services(&self) -> impl Iterator<Item = &String> {
        self.capacity.keys().chain(&self.paused)
    }
}

/// Everything stored for an environment: the windows, and the baseline of each service captured
/// when its first window started (what the end of its last window restores).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub windows: Vec<Window>,
    #[serde(default)]
    pub baselines: BTreeMap<String, Level>,
}

/// Why a service's capacity changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Raised for these windows.
    Raise(Vec<String>),
    Pause(Vec<String>),
    Restore,
}

/// One change to make now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub service: String,
    pub from: Level,
    pub to: Level,
    pub reason: Reason,
}

/// What `prewarm apply` does at `now`: the changes, and the schedule to store (baselines
/// captured or released, windows that ended dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub changes: Vec<Change>,
    pub schedule: Schedule,
}

/// The capacity each service should have at `now`, given what it has (`current`; services not
/// running are left out). Applying the same `Due` twice changes nothing the second time.
pub fn due(schedule: &Schedule, current: &BTreeMap<String, Level>, now: Timestamp) -> Due {
    let active: Vec<&Window> = schedule.windows.iter().filter(|w| w.active(now)).collect();
    let mut services: BTreeSet<&String> = schedule.baselines.keys().collect();
    services.extend(active.iter().flat_map(|w| w.services()));
    let mut baselines = schedule.baselines.clone();
    let mut changes = Vec::new();
    for service in services {
        let Some(&level) = current.get(service) else {
            continue;
        };
        let raising: Vec<&Window> = active
            .iter()
            .copied()
            .filter(|w| w.capacity.contains_key(service))
            .collect();
        let pausing: Vec<&Window> = active
            .iter()
            .copied()
            .filter(|w| w.paused.contains(service))
            .collect();
        let (to, reason) = if raising.is_empty() && pausing.is_empty() {
            match baselines.remove(service) {
                Some(base) => (base, Reason::Restore),
                None => continue,
            }
        } else {
            let base = *baselines.entry(service.clone()).or_insert(level);
            if raising.is_empty() {
                (base.paused(), Reason::Pause(ids(&pausing)))
            } else {
                let capacity = raising.iter().map(|w| w.capacity[service]).max();
                (
                    base.raised(capacity.unwrap_or(0)),
                    Reason::Raise(ids(&raising)),
                )
            }
        };
        if to != level {
            changes.push(Change {
                service: service.clone(),
                from: level,
                to,
                reason,
            });
        }
    }
    let windows = schedule
        .windows
        .iter()
        .filter(|w| w.ends > now)
        .cloned()
        .collect();
    Due {
        changes,
        schedule: Schedule { windows, baselines },
    }
}

fn ids(windows: &[&Window]) -> Vec<String> {
    windows.iter().map(|w| w.id.clone()).collect()
}

/// The schedule without window `id` (its capacity is given back by the next `due`).
pub fn cancel(schedule: &Schedule, id: &str, environment: &str) -> Result<Schedule, PrewarmError> {
    if !schedule.windows.iter().any(|w| w.id == id) {
        return Err(PrewarmError::UnknownWindow {
            id: id.to_string(),
            environment: environment.to_string(),
        });
    }
    let mut kept = schedule.clone();
    kept.windows.retain(|w| w.id != id);
    Ok(kept)
}

/// The capacity a service should have at `now` according to the schedule alone (used by a deploy
/// during a window, so a new version starts at the prewarmed size): the largest active window's.
pub fn floor(schedule: &Schedule, service: &str, now: Timestamp) -> Option<u32> {
    schedule
        .windows
        .iter()
        .filter(|w| w.active(now))
        .filter_map(|w| w.capacity.get(service).copied())
        .max()
}

#[cfg(test)]
mod tests;

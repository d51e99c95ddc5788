//! Prewarm windows for people: the plan of a new window, the changes made, the stored windows.

use jiff::Timestamp;

use crate::plan::prewarm::{Change, PlannedService, Reason, Schedule, Window};
use crate::report::Table;
use crate::report::prewarm_status::local;

/// A new window: when it raises and restores, and what it does to each service.
pub fn plan(environment: &str, window: &Window, planned: &[PlannedService]) -> String {
    let mut text = format!(
        "prewarm {} of {environment}: {} for the spike at {}{}\n  raise at {}, restore at {}\n",
        window.id,
        window.rule,
        local(window.at.timestamp(), &window.at),
        window
            .at
            .time_zone()
            .iana_name()
            .map(|z| format!(" ({z})"))
            .unwrap_or_default(),
        local(window.starts, &window.at),
        local(window.ends, &window.at),
    );
    let mut table = Table::new(["SERVICE", "NOW", "DURING", "NOTE"]);
    for p in planned {
        let note = match (p.paused, p.capped_from) {
            (true, _) => "paused (background work)".to_string(),
            (false, Some(asked)) => format!("capped by max_capacity (asked {asked})"),
            (false, None) => String::new(),
        };
        table.row([
            p.service.clone(),
            p.baseline.to_string(),
            p.during.to_string(),
            note,
        ]);
    }
    text.push_str(&table.to_string());
    text
}

/// Capacity changes made now, one line each with the reason.
pub fn changes(changes: &[Change]) -> String {
    let mut text = String::new();
    for change in changes {
        let why = match &change.reason {
            Reason::Raise(ids) => format!("raised for prewarm {}", ids.join(", ")),
            Reason::Pause(ids) => format!("paused for prewarm {}", ids.join(", ")),
            Reason::Restore => "restored".to_string(),
        };
        text.push_str(&format!(
            "{}: {} → {} ({why})\n",
            change.service, change.from, change.to
        ));
    }
    text
}

/// The stored windows with their state at `now`.
pub fn windows(schedule: &Schedule, now: Timestamp, location: &str) -> String {
    if schedule.windows.is_empty() {
        return format!("no prewarm windows ({location})");
    }
    let mut table = Table::new(["ID", "STATE", "SPIKE", "RAISE", "RESTORE", "CAPACITY"]);
    for w in &schedule.windows {
        let state = if w.active(now) {
            "active"
        } else if w.ends <= now {
            "ended"
        } else {
            "upcoming"
        };
        let mut capacity: Vec<String> =
            w.capacity.iter().map(|(s, n)| format!("{s}={n}")).collect();
        capacity.extend(w.paused.iter().map(|s| format!("{s}=paused")));
        table.row([
            w.id.clone(),
            state.to_string(),
            local(w.at.timestamp(), &w.at),
            local(w.starts, &w.at),
            local(w.ends, &w.at),
            capacity.join(" "),
        ]);
    }
    table.to_string()
}

//! The prewarm part of `convoy status`: active and upcoming windows, and for an active one
//! whether the raised capacity is actually Ready, with a warning when it is not.

use std::collections::BTreeMap;

use jiff::{Timestamp, Zoned};

use crate::ops::prewarm_status::{Readiness, readiness};
use crate::plan::prewarm::{Schedule, floor};
use crate::targets::prewarm::{Capacity, RaisedBy};

/// A time in the zone the spike was given in.
pub fn local(instant: Timestamp, at: &Zoned) -> String {
    instant
        .to_zoned(at.time_zone().clone())
        .strftime("%Y-%m-%d %H:%M %:z")
        .to_string()
}

/// `25m`, `3h 10m`, `2d 4h`: how far `to` is from `from`, to the minute.
fn distance(from: Timestamp, to: Timestamp) -> String {
    let minutes = (to.as_second() - from.as_second()).unsigned_abs() / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => "under a minute".to_string(),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// How status names capacity that serves, and what to check when it was not raised.
trait Wording {
    fn ready(self) -> &'static str;
    fn not_raised(self, environment: &str) -> String;
}

impl Wording for RaisedBy {
    fn ready(self) -> &'static str {
        match self {
            RaisedBy::Apply => "replicas Ready",
            RaisedBy::ScheduledActions => "instances InService",
        }
    }

    fn not_raised(self, environment: &str) -> String {
        match self {
            RaisedBy::Apply => {
                format!("is `convoy prewarm apply --env {environment}` running every minute?")
            }
            RaisedBy::ScheduledActions => format!(
                "its scheduled action may fire up to 2 minutes late; `convoy prewarm apply --env {environment}` raises it now"
            ),
        }
    }
}

/// Lines for `convoy status`; empty when nothing is scheduled.
pub fn describe(
    environment: &str,
    schedule: &Schedule,
    levels: &BTreeMap<String, Capacity>,
    now: Timestamp,
    raised_by: RaisedBy,
) -> String {
    let mut text = String::new();
    for window in schedule.windows.iter().filter(|w| w.ends > now) {
        let spike = window.at.timestamp();
        let when = if spike > now {
            format!("in {}", distance(now, spike))
        } else {
            format!("{} ago", distance(spike, now))
        };
        if !window.active(now) {
            text.push_str(&format!(
                "prewarm {} upcoming: {} for the spike at {} ({when}); raised from {}\n",
                window.id,
                window.rule,
                local(spike, &window.at),
                local(window.starts, &window.at),
            ));
            continue;
        }
        text.push_str(&format!(
            "prewarm {} ACTIVE: {} for the spike at {} ({when}); restored at {}\n",
            window.id,
            window.rule,
            local(spike, &window.at),
            local(window.ends, &window.at),
        ));
        for service in window.capacity.keys() {
            let wanted = floor(schedule, service, now).unwrap_or(0);
            text.push_str(&service_line(
                environment,
                service,
                wanted,
                levels.get(service),
                &when,
                raised_by,
            ));
        }
        for service in &window.paused {
            let shown = levels
                .get(service)
                .map(|c| format!("{} ({} Ready)", c.level, c.ready))
                .unwrap_or_else(|| "not running".to_string());
            text.push_str(&format!("  {service}: paused at {shown}\n"));
        }
    }
    text
}

fn service_line(
    environment: &str,
    service: &str,
    wanted: u32,
    capacity: Option<&Capacity>,
    when: &str,
    raised_by: RaisedBy,
) -> String {
    let ready = raised_by.ready();
    match readiness(wanted, capacity) {
        Readiness::NotRunning => format!("  {service}: WARNING: not running, so not prewarmed\n"),
        Readiness::NotRaised { level, wanted } => format!(
            "  {service}: WARNING: not raised yet ({level} of {wanted}); {}\n",
            raised_by.not_raised(environment)
        ),
        Readiness::Short {
            ready: count,
            wanted,
        } => format!(
            "  {service}: WARNING: only {count} of {wanted} {ready} and the spike is {when}\n"
        ),
        Readiness::Ready {
            ready: count,
            wanted,
        } => {
            format!("  {service}: {count} of {wanted} {ready} ✓\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::prewarm_at::parse_at;
    use crate::ops::prewarm_status::tests::capacity;
    use crate::plan::prewarm::Window;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn schedule() -> Schedule {
        let at = parse_at("2026-12-01T10:00[Europe/Berlin]").unwrap();
        Schedule {
            windows: vec![Window {
                id: "1".into(),
                starts: at.timestamp() - jiff::SignedDuration::from_mins(30),
                ends: at.timestamp() + jiff::SignedDuration::from_hours(2),
                at,
                capacity: BTreeMap::from([("api".into(), 9), ("web".into(), 6)]),
                paused: ["worker".to_string()].into(),
                rule: "×3".into(),
            }],
            baselines: BTreeMap::new(),
        }
    }

    #[test]
    fn an_active_window_says_what_is_ready_and_warns_about_what_is_not() {
        let levels = BTreeMap::from([
            ("api".to_string(), capacity(9, 9)),
            ("web".to_string(), capacity(6, 2)),
            ("worker".to_string(), capacity(1, 1)),
        ]);
        let text = describe(
            "production",
            &schedule(),
            &levels,
            ts("2026-12-01T08:45:00Z"),
            RaisedBy::Apply,
        );
        assert!(text.contains("prewarm 1 ACTIVE"), "{text}");
        assert!(text.contains("(in 15m)"), "{text}");
        assert!(text.contains("api: 9 of 9 replicas Ready ✓"), "{text}");
        assert!(
            text.contains("web: WARNING: only 2 of 6 replicas Ready and the spike is in 15m"),
            "{text}"
        );
        assert!(text.contains("worker: paused at 1 (1 Ready)"), "{text}");
    }

    #[test]
    fn a_window_not_raised_points_at_the_cron_job_and_upcoming_ones_say_when() {
        let levels = BTreeMap::from([("api".to_string(), capacity(3, 3))]);
        let text = describe(
            "production",
            &schedule(),
            &levels,
            ts("2026-12-01T08:45:00Z"),
            RaisedBy::Apply,
        );
        assert!(text.contains("api: WARNING: not raised yet"), "{text}");
        assert!(
            text.contains("convoy prewarm apply --env production"),
            "{text}"
        );
        let early = describe(
            "production",
            &schedule(),
            &levels,
            ts("2026-12-01T06:00:00Z"),
            RaisedBy::Apply,
        );
        assert!(early.contains("prewarm 1 upcoming"), "{early}");
        assert!(early.contains("(in 3h)"), "{early}");
        assert!(
            describe(
                "production",
                &schedule(),
                &levels,
                ts("2026-12-01T12:00:00Z"),
                RaisedBy::Apply,
            )
            .is_empty()
        );
        let far = describe(
            "production",
            &schedule(),
            &levels,
            ts("2026-11-28T06:30:00Z"),
            RaisedBy::Apply,
        );
        assert!(far.contains("(in 3d 2h)"), "{far}");
    }

    #[test]
    fn on_aws_status_counts_instances_in_service_and_points_at_the_late_action() {
        let levels = BTreeMap::from([
            ("api".to_string(), capacity(3, 3)),
            ("web".to_string(), capacity(6, 6)),
        ]);
        let text = describe(
            "production-ec2",
            &schedule(),
            &levels,
            ts("2026-12-01T08:45:00Z"),
            RaisedBy::ScheduledActions,
        );
        assert!(text.contains("web: 6 of 6 instances InService ✓"), "{text}");
        assert!(
            text.contains("api: WARNING: not raised yet (3 of 9); its scheduled action may fire up to 2 minutes late; `convoy prewarm apply --env production-ec2` raises it now"),
            "{text}"
        );
    }
}

//! The flags part of `convoy status`: the flags now, and whether maintenance has been on longer
//! than any task of the project could take (a run died and left it on, or someone forgot it).

use std::time::Duration;

use jiff::Timestamp;

use crate::config::Project;
use crate::execute::flags::{FlagChange, FlagSet, MAINTENANCE};

pub struct FlagStatus {
    pub flags: FlagSet,
    /// How long maintenance has been on, when that is longer than the project's longest task
    /// timeout, with that timeout.
    pub maintenance_overdue: Option<(Duration, Duration)>,
}

/// The longest timeout of any task of `project` (zero without tasks).
pub fn longest_task(project: &Project) -> Duration {
    let tasks = project.services.values().flat_map(|s| s.tasks.values());
    tasks.map(|t| t.timeout.0).max().unwrap_or_default()
}

/// How long maintenance has been on at `now` (since the change that turned it on), when longer
/// than `longest`; `None` when it is off or not yet overdue.
pub fn maintenance_overdue(
    flags: &FlagSet,
    history: &[FlagChange],
    longest: Duration,
    now: Timestamp,
) -> Option<(Duration, Duration)> {
    flags.flags.get(MAINTENANCE)?;
    let since = history.iter().rev().find(|c| c.key == MAINTENANCE)?.at;
    let on: Duration = now.duration_since(since).try_into().ok()?;
    (on > longest).then_some((on, longest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::flags::READ_ONLY;

    fn on_at(at: &str) -> (FlagSet, Vec<FlagChange>) {
        let flags = FlagSet {
            revision: 1,
            flags: [(MAINTENANCE.to_string(), READ_ONLY.to_string())].into(),
        };
        let change = FlagChange {
            revision: 1,
            at: at.parse().unwrap(),
            who: "release 3".to_string(),
            release: Some(3),
            key: MAINTENANCE.to_string(),
            old: None,
            new: Some(READ_ONLY.to_string()),
        };
        (flags, vec![change])
    }

    #[test]
    fn maintenance_on_past_the_longest_task_timeout_is_overdue() {
        let (flags, history) = on_at("2026-12-02T10:00:00Z");
        let now = "2026-12-02T10:11:00Z".parse().unwrap();
        let ten_minutes = Duration::from_secs(600);
        let overdue = maintenance_overdue(&flags, &history, ten_minutes, now);
        assert_eq!(overdue, Some((Duration::from_secs(660), ten_minutes)));
        let sooner = "2026-12-02T10:09:00Z".parse().unwrap();
        assert_eq!(
            maintenance_overdue(&flags, &history, ten_minutes, sooner),
            None
        );
        let off = FlagSet::default();
        assert_eq!(maintenance_overdue(&off, &history, ten_minutes, now), None);
    }
}

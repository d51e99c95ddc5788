use std::time::Duration;

use jiff::SignedDuration;

use super::*;
use crate::ops::prewarm_at::parse_at;
use crate::plan::prewarm_actions::{
    MAX_ACTIONS_PER_GROUP, remaining_actions, scheduled_actions, steps,
};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn level(replicas: u32, max: Option<u32>) -> Level {
    Level {
        replicas,
        max,
        desired: None,
    }
}

fn request(at: &str, rule: CapacityRule, lead: u64, hold: u64) -> PrewarmRequest {
    PrewarmRequest {
        environment: "production".into(),
        at: parse_at(at).unwrap(),
        lead: Duration::from_secs(lead * 60),
        hold: Duration::from_secs(hold * 60),
        rule,
        services: vec!["api".into(), "web".into()],
        paused: vec!["worker".into()],
        max_capacity: Some(20),
        starts_now: false,
    }
}

fn current() -> BTreeMap<String, Level> {
    BTreeMap::from([
        ("api".into(), level(3, Some(6))),
        ("web".into(), level(4, None)),
        ("worker".into(), level(2, None)),
    ])
}

const NOW: &str = "2026-11-30T12:00:00Z";

fn window(schedule: &Schedule, req: &PrewarmRequest) -> Window {
    plan_window(req, schedule, &current(), ts(NOW)).unwrap().0
}

#[test]
fn a_window_across_the_autumn_change_lasts_its_absolute_hold() {
    // 01:30 CEST on the last Sunday of October; the clocks go back at 03:00 CEST.
    let req = request(
        "2026-10-25T01:30[Europe/Berlin]",
        CapacityRule::Factor(2.0),
        30,
        120,
    );
    let schedule = Schedule::default();
    let (w, _) = plan_window(&req, &schedule, &current(), ts("2026-10-24T12:00:00Z")).unwrap();
    assert_eq!(w.starts, ts("2026-10-24T23:00:00Z"), "01:00 CEST");
    assert_eq!(w.ends, ts("2026-10-25T01:30:00Z"), "two hours later");
    let tz = w.at.time_zone().clone();
    let ends_local = w.ends.to_zoned(tz);
    assert_eq!(
        ends_local.to_string(),
        "2026-10-25T02:30:00+01:00[Europe/Berlin]",
        "02:30 CET on the wall clock, not 03:30"
    );
    // Due inside the repeated hour: still raised.
    let inside = due(
        &Schedule {
            windows: vec![w.clone()],
            ..Schedule::default()
        },
        &current(),
        ts("2026-10-25T01:15:00Z"),
    );
    assert!(
        inside
            .changes
            .iter()
            .any(|c| c.service == "api" && c.to.replicas == 6)
    );
}

#[test]
fn capacity_rules_round_up_and_are_capped_by_the_policy() {
    assert_eq!(CapacityRule::Factor(1.1).replicas(3), 4);
    assert_eq!(CapacityRule::Factor(3.0).replicas(3), 9);
    let rps = CapacityRule::Rps {
        rps: 1000.0,
        per_replica: 100.0,
        headroom_percent: 30,
    };
    assert_eq!(rps.replicas(3), 13);
    let req = request(
        "2026-12-01T10:00+01:00",
        CapacityRule::Replicas(50),
        30,
        120,
    );
    let (w, planned) = plan_window(&req, &Schedule::default(), &current(), ts(NOW)).unwrap();
    assert_eq!(w.capacity["api"], 20, "capped by max_capacity");
    let api = planned.iter().find(|p| p.service == "api").unwrap();
    assert_eq!(api.capped_from, Some(50));
    assert_eq!(
        api.during,
        level(20, Some(20)),
        "the HPA maximum widened to fit"
    );
    let worker = planned.iter().find(|p| p.service == "worker").unwrap();
    assert_eq!(worker.during, level(1, None), "background work paused");
}

#[test]
fn requests_that_make_no_sense_are_refused_naming_the_flag() {
    let past = request("2026-11-30T11:00Z", CapacityRule::Factor(2.0), 30, 120);
    let err = plan_window(&past, &Schedule::default(), &current(), ts(NOW)).unwrap_err();
    assert!(matches!(err, PrewarmError::InThePast { .. }));
    assert!(err.to_string().starts_with("--at "));
    for (rule, flag) in [
        (CapacityRule::Factor(0.5), "--factor"),
        (CapacityRule::Replicas(0), "--capacity"),
        (
            CapacityRule::Rps {
                rps: 10.0,
                per_replica: 0.0,
                headroom_percent: 0,
            },
            "--rps-per-replica",
        ),
    ] {
        let req = request("2026-12-01T10:00Z", rule, 30, 120);
        let err = plan_window(&req, &Schedule::default(), &current(), ts(NOW)).unwrap_err();
        assert!(err.to_string().starts_with(flag), "{err}");
        assert!(crate::diagnostic::Diagnose::help(&err).is_some());
    }
    let long_lead = request("2026-12-01T10:00Z", CapacityRule::Factor(2.0), 25 * 60, 120);
    let err = plan_window(&long_lead, &Schedule::default(), &current(), ts(NOW)).unwrap_err();
    assert!(err.to_string().starts_with("--lead"), "{err}");
    let no_hold = request("2026-12-01T10:00Z", CapacityRule::Factor(2.0), 30, 0);
    let err = plan_window(&no_hold, &Schedule::default(), &current(), ts(NOW)).unwrap_err();
    assert!(err.to_string().starts_with("--hold"), "{err}");
    let mut both = request("2026-12-01T10:00Z", CapacityRule::Factor(2.0), 30, 60);
    both.paused.push("api".into());
    assert!(matches!(
        plan_window(&both, &Schedule::default(), &current(), ts(NOW)),
        Err(PrewarmError::PausedAndRaised { .. })
    ));
    let mut missing = request("2026-12-01T10:00Z", CapacityRule::Factor(2.0), 30, 60);
    missing.services.push("payments".into());
    assert!(matches!(
        plan_window(&missing, &Schedule::default(), &current(), ts(NOW)),
        Err(PrewarmError::NotLive { .. })
    ));
}

#[test]
fn due_raises_before_during_and_restores_after_a_window() {
    let req = request("2026-12-01T10:00Z", CapacityRule::Factor(3.0), 30, 120);
    let schedule = Schedule {
        windows: vec![window(&Schedule::default(), &req)],
        ..Schedule::default()
    };
    let before = due(&schedule, &current(), ts("2026-12-01T09:29:59Z"));
    assert!(before.changes.is_empty());
    assert!(before.schedule.baselines.is_empty());

    let during = due(&schedule, &current(), ts("2026-12-01T09:30:00Z"));
    let to: BTreeMap<&str, Level> = during
        .changes
        .iter()
        .map(|c| (c.service.as_str(), c.to))
        .collect();
    assert_eq!(to["api"], level(9, Some(9)));
    assert_eq!(to["web"], level(12, None));
    assert_eq!(to["worker"], level(1, None));
    assert_eq!(during.schedule.baselines, current(), "baselines captured");

    // Applying again with the raised levels changes nothing (idempotent).
    let raised: BTreeMap<String, Level> = to.iter().map(|(s, l)| (s.to_string(), *l)).collect();
    let again = due(&during.schedule, &raised, ts("2026-12-01T10:05:00Z"));
    assert!(again.changes.is_empty());
    assert_eq!(again.schedule, during.schedule);

    let after = due(&during.schedule, &raised, ts("2026-12-01T12:00:00Z"));
    let restored: BTreeMap<&str, Level> = after
        .changes
        .iter()
        .map(|c| (c.service.as_str(), c.to))
        .collect();
    assert_eq!(restored["api"], level(3, Some(6)));
    assert_eq!(restored["web"], level(4, None));
    assert_eq!(restored["worker"], level(2, None));
    assert!(after.changes.iter().all(|c| c.reason == Reason::Restore));
    assert!(
        after.schedule.windows.is_empty(),
        "the ended window is dropped"
    );
    assert!(after.schedule.baselines.is_empty());
}

#[test]
fn overlapping_windows_take_the_largest_and_restore_the_baseline() {
    let first = window(
        &Schedule::default(),
        &request("2026-12-01T10:00Z", CapacityRule::Replicas(10), 30, 60),
    );
    let mut schedule = Schedule {
        windows: vec![first],
        ..Schedule::default()
    };
    // Planned while the first window is raised: the factor applies to the baseline (3), not 10.
    let second_req = request("2026-12-01T10:45Z", CapacityRule::Factor(2.0), 15, 60);
    let during_first = due(&schedule, &current(), ts("2026-12-01T09:40:00Z"));
    let raised: BTreeMap<String, Level> = during_first
        .changes
        .iter()
        .map(|c| (c.service.clone(), c.to))
        .collect();
    let (second, _) = plan_window(
        &second_req,
        &during_first.schedule,
        &raised,
        ts("2026-12-01T09:40:00Z"),
    )
    .unwrap();
    assert_eq!(second.capacity["api"], 6);
    assert_eq!(second.id, "2");
    schedule = during_first.schedule.clone();
    schedule.windows.push(second);

    let both = due(&schedule, &raised, ts("2026-12-01T10:40:00Z"));
    assert!(both.changes.is_empty(), "10 stays: the larger of 10 and 6");
    // The first ends at 11:00; the second (to 11:45) keeps 6 — not the baseline, not 10.
    let second_only = due(&both.schedule, &raised, ts("2026-12-01T11:00:00Z"));
    let api = second_only
        .changes
        .iter()
        .find(|c| c.service == "api")
        .unwrap();
    assert_eq!(api.to, level(6, Some(6)));
    assert_eq!(second_only.schedule.windows.len(), 1);
    let mut now_levels = raised.clone();
    for change in &second_only.changes {
        now_levels.insert(change.service.clone(), change.to);
    }
    let end = due(
        &second_only.schedule,
        &now_levels,
        ts("2026-12-01T11:45:00Z"),
    );
    let api = end.changes.iter().find(|c| c.service == "api").unwrap();
    assert_eq!(
        api.to,
        level(3, Some(6)),
        "the baseline, never the other window's value"
    );
}

#[test]
fn cancel_removes_a_window_and_the_next_due_restores() {
    let w = window(
        &Schedule::default(),
        &request("2026-12-01T10:00Z", CapacityRule::Factor(2.0), 30, 60),
    );
    let schedule = Schedule {
        windows: vec![w],
        ..Schedule::default()
    };
    let during = due(&schedule, &current(), ts("2026-12-01T09:45:00Z"));
    let cancelled = cancel(&during.schedule, "1", "production").unwrap();
    let raised: BTreeMap<String, Level> = during
        .changes
        .iter()
        .map(|c| (c.service.clone(), c.to))
        .collect();
    let restore = due(&cancelled, &raised, ts("2026-12-01T09:46:00Z"));
    assert_eq!(restore.changes.len(), 3);
    assert!(restore.changes.iter().all(|c| c.reason == Reason::Restore));
    assert!(matches!(
        cancel(&schedule, "9", "production"),
        Err(PrewarmError::UnknownWindow { .. })
    ));
}

#[test]
fn floor_is_the_largest_active_capacity() {
    let w = window(
        &Schedule::default(),
        &request("2026-12-01T10:00Z", CapacityRule::Replicas(8), 30, 60),
    );
    let schedule = Schedule {
        windows: vec![w],
        ..Schedule::default()
    };
    assert_eq!(floor(&schedule, "api", ts("2026-12-01T09:00:00Z")), None);
    assert_eq!(floor(&schedule, "api", ts("2026-12-01T09:45:00Z")), Some(8));
    assert_eq!(floor(&schedule, "worker", ts("2026-12-01T09:45:00Z")), None);
}

#[test]
fn scheduled_actions_follow_the_steps_and_the_cloud_rules() {
    let a = window(
        &Schedule::default(),
        &request("2026-12-01T10:00Z", CapacityRule::Replicas(10), 30, 60),
    );
    let mut b = window(
        &Schedule::default(),
        &request("2026-12-01T10:45Z", CapacityRule::Replicas(6), 15, 60),
    );
    b.id = "2".into();
    let schedule = Schedule {
        windows: vec![a, b],
        ..Schedule::default()
    };
    let base = level(3, None);
    let actions = scheduled_actions(&schedule, "web", "web-asg", base, ts(NOW)).unwrap();
    let plan: Vec<(String, u32)> = actions
        .iter()
        .map(|a| (a.start.to_string(), a.level.replicas))
        .collect();
    assert_eq!(
        plan,
        vec![
            ("2026-12-01T09:30:00Z".to_string(), 10),
            ("2026-12-01T11:00:00Z".to_string(), 6),
            ("2026-12-01T11:45:00Z".to_string(), 3),
        ],
        "one action per change, unique start times, restore to the baseline"
    );
    assert_eq!(steps(&schedule, "payments", base), vec![]);

    let mut late = schedule.clone();
    late.windows[0].starts = late.windows[0].at.timestamp() - SignedDuration::from_secs(60);
    let err = scheduled_actions(&late, "web", "web-asg", base, ts(NOW)).unwrap_err();
    assert!(err.to_string().contains("2 minutes late"), "{err}");

    let err = scheduled_actions(
        &schedule,
        "web",
        "web-asg",
        base,
        ts("2026-12-01T09:31:00Z"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not in the future"), "{err}");

    let mut many = Schedule::default();
    for n in 0..70 {
        let mut w = schedule.windows[0].clone();
        let shift = SignedDuration::from_hours(3 * n);
        w.starts += shift;
        w.ends += shift;
        w.at = w.at.checked_add(shift).unwrap();
        w.id = n.to_string();
        many.windows.push(w);
    }
    let err = scheduled_actions(&many, "web", "web-asg", base, ts(NOW)).unwrap_err();
    assert!(
        err.to_string().contains(&MAX_ACTIONS_PER_GROUP.to_string()),
        "{err}"
    );
}

#[test]
fn remaining_actions_leave_what_is_due_to_the_caller_and_schedule_the_rest() {
    let mut started = window(
        &Schedule::default(),
        &request("2026-12-01T10:00Z", CapacityRule::Replicas(10), 30, 60),
    );
    // `--now`: the window starts at once, with no lead at all.
    started.starts = ts("2026-12-01T09:40:00Z");
    started.at = started.at.with().minute(40).build().unwrap();
    let schedule = Schedule {
        windows: vec![started],
        ..Schedule::default()
    };
    let base = level(3, Some(6));
    let now = ts("2026-12-01T09:41:00Z");
    let actions = remaining_actions(&schedule, "web", "web-asg", base, now).unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].name, "convoy-prewarm-1");
    assert_eq!(actions[0].level, base, "only the restore is left");
    assert!(scheduled_actions(&schedule, "web", "web-asg", base, now).is_err());
}

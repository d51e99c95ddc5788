//! Pre-warming on AWS against moto: the schedule in the bucket, the live group's scheduled
//! actions, a deploy moving them to the new group, and `--now`. moto never fires a scheduled
//! action, so the tests read the actions themselves.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::*;
use crate::plan::prewarm::{CapacityRule, PrewarmRequest};
use crate::targets::aws::AwsPrewarm;
use crate::targets::prewarm::{self as prewarming, Prewarmer};

/// (name, start, min, desired, max) of each of a group's scheduled actions, by name.
async fn actions(world: &World, group: &str) -> Vec<(String, i64, i32, i32, i32)> {
    let output = world.ok(world
        .clients
        .autoscaling
        .describe_scheduled_actions()
        .auto_scaling_group_name(group)
        .send()
        .await);
    let mut found: Vec<_> = output
        .scheduled_update_group_actions()
        .iter()
        .map(|a| {
            (
                a.scheduled_action_name().unwrap_or_default().to_string(),
                a.start_time().map_or(0, |t| t.secs()),
                a.min_size().unwrap_or(-1),
                a.desired_capacity().unwrap_or(-1),
                a.max_size().unwrap_or(-1),
            )
        })
        .collect();
    found.sort();
    found
}

fn prewarmer(world: &World) -> AwsPrewarm {
    AwsPrewarm::new(
        world.clients.clone(),
        "shop",
        world.location(),
        Duration::from_millis(50),
    )
}

/// Six instances of web for a spike at `at`, raised 30 minutes before and kept for 2 hours.
fn request(at: Timestamp, starts_now: bool) -> PrewarmRequest {
    PrewarmRequest {
        environment: "production".into(),
        at: at.to_zoned(TimeZone::UTC),
        lead: Duration::from_secs(30 * 60),
        hold: Duration::from_secs(2 * 3600),
        rule: CapacityRule::Replicas(6),
        services: vec!["web".into()],
        paused: vec![],
        max_capacity: None,
        starts_now,
    }
}

#[tokio::test]
async fn a_prewarm_becomes_the_live_groups_scheduled_actions_and_cancel_removes_them() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    let at = now + SignedDuration::from_hours(3);
    let scheduled =
        world.ok(prewarming::schedule(&prewarmer, &request(at, false), now, false).await);
    assert!(scheduled.changes.is_empty(), "nothing is due yet");
    let raise = (at - SignedDuration::from_mins(30)).as_second();
    let restore = (at + SignedDuration::from_hours(2)).as_second();
    let expected = vec![
        ("convoy-prewarm-1".to_string(), raise, 6, 6, 10),
        ("convoy-prewarm-2".to_string(), restore, 2, 2, 10),
    ];
    assert_eq!(actions(&world, "shop-production-web-v1").await, expected);
    // Listed from the bucket.
    let stored = world.ok(prewarmer.load().await);
    assert_eq!(stored.schedule.windows.len(), 1);
    assert_eq!(stored.schedule.windows[0].capacity["web"], 6);
    // `apply` again changes nothing: the actions are there already.
    let before = world.counter.snapshot();
    let changes = world.ok(prewarmer.enforce(stored, now).await);
    assert!(changes.is_empty());
    let calls = world.counter.since(&before);
    assert!(
        !calls.contains_key("AutoScaling.BatchPutScheduledUpdateGroupAction"),
        "{calls:?}"
    );
    // A second, overlapping window for the same group: one action per change, none repeated.
    let later = at + SignedDuration::from_hours(1);
    world.ok(prewarming::schedule(&prewarmer, &request(later, false), now, false).await);
    let names: Vec<String> = actions(&world, "shop-production-web-v1")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        names.len(),
        2,
        "{names:?}: raise at the first, restore after the last"
    );

    world.ok(prewarming::cancel(&prewarmer, "production", "1", now).await);
    world.ok(prewarming::cancel(&prewarmer, "production", "2", now).await);
    assert!(actions(&world, "shop-production-web-v1").await.is_empty());
    assert!(world.ok(prewarmer.load().await).schedule.windows.is_empty());
}

#[tokio::test]
async fn actions_that_could_fire_too_late_are_refused_before_anything_is_stored() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    let mut request = request(now + SignedDuration::from_hours(3), false);
    request.lead = Duration::from_secs(60);
    let error = prewarming::schedule(&prewarmer, &request, now, false)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("2 minutes late"), "{error}");
    assert!(world.ok(prewarmer.load().await).schedule.windows.is_empty());
    assert!(actions(&world, "shop-production-web-v1").await.is_empty());
}

#[tokio::test]
async fn a_deploy_moves_the_prewarm_to_the_new_group() {
    let world = World::new().await;
    let target = world.target().await;
    let retire_at_once = policy(Strategy::Bluegreen, &[100], 0);
    run(&world, &target, &retire_at_once, deploy(&[("web", "v1")])).await;
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    let at = now + SignedDuration::from_hours(3);
    world.ok(prewarming::schedule(&prewarmer, &request(at, false), now, false).await);
    let before = actions(&world, "shop-production-web-v1").await;
    assert_eq!(before.len(), 2);

    let record = run(&world, &target, &retire_at_once, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(world.group("web", "v1").await.is_none(), "retired");
    assert_eq!(
        actions(&world, "shop-production-web-v2").await,
        before,
        "the same actions, with the same values"
    );
    assert!(
        actions(&world, "shop-production-web-v1").await.is_empty(),
        "deleted with the group"
    );
    // `apply` after the deploy finds nothing to change.
    let stored = world.ok(prewarmer.load().await);
    world.ok(prewarmer.enforce(stored, now).await);
    assert_eq!(actions(&world, "shop-production-web-v2").await, before);
}

#[tokio::test]
async fn a_group_kept_warm_after_a_deploy_loses_its_prewarm_to_the_live_one() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    let at = now + SignedDuration::from_hours(3);
    world.ok(prewarming::schedule(&prewarmer, &request(at, false), now, false).await);
    run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    assert!(world.group("web", "v1").await.is_some(), "kept warm");
    assert_eq!(actions(&world, "shop-production-web-v2").await.len(), 2);
    assert!(
        actions(&world, "shop-production-web-v1").await.is_empty(),
        "a warm group out of traffic is not raised for the spike"
    );
    let stored = world.ok(prewarmer.load().await);
    world.ok(prewarmer.enforce(stored, now).await);
    assert_eq!(actions(&world, "shop-production-web-v2").await.len(), 2);
    assert!(actions(&world, "shop-production-web-v1").await.is_empty());
}

#[tokio::test]
async fn a_deploy_and_a_rollback_during_a_window_serve_at_the_prewarmed_size_and_keep_the_restore()
{
    let world = World::new().await;
    let mut target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    world.ok(prewarming::schedule(&prewarmer, &request(now, true), now, false).await);
    let restore = vec![(
        "convoy-prewarm-1".to_string(),
        (now + SignedDuration::from_hours(2)).as_second(),
        2,
        2,
        10,
    )];
    // As `convoy deploy` opens the target: with the windows stored in the bucket.
    target.prewarm = world.ok(prewarmer.load().await).schedule;

    let record = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let v2 = world.group("web", "v2").await.unwrap();
    assert_eq!(
        (v2.desired, v2.traffic),
        (6, 100),
        "provisioned at the raised size"
    );
    assert_eq!(actions(&world, "shop-production-web-v2").await, restore);
    assert!(actions(&world, "shop-production-web-v1").await.is_empty());

    // v1 was kept warm at its own size; switched back to, it serves at the window's.
    let record = run(&world, &target, &warm, Request::Rollback { to: None }).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!((v1.desired, v1.traffic), (6, 100));
    assert_eq!(actions(&world, "shop-production-web-v1").await, restore);
    assert!(actions(&world, "shop-production-web-v2").await.is_empty());
}

#[tokio::test]
async fn now_raises_the_live_group_at_once_waits_for_it_and_leaves_the_restore_to_aws() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    let scheduled =
        world.ok(prewarming::schedule(&prewarmer, &request(now, true), now, false).await);
    assert_eq!(scheduled.changes.len(), 1, "{:?}", scheduled.changes);
    world.ok(prewarming::wait_raised(
        &prewarmer,
        &scheduled.window,
        Arc::new(SystemClock),
        Duration::from_secs(20),
    )
    .await);
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!((v1.min, v1.desired, v1.max), (6, 6, 10));
    let v1 = crate::targets::aws::agent_reports::with_agent_reports(&world.clients, v1, None)
        .await
        .unwrap();
    assert_eq!(v1.ready_instances().len(), 6, "each passed by the agent");
    let restore = (now + SignedDuration::from_hours(2)).as_second();
    assert_eq!(
        actions(&world, "shop-production-web-v1").await,
        vec![("convoy-prewarm-1".to_string(), restore, 2, 2, 10)]
    );
    let levels = world.ok(prewarmer.levels(&["web".to_string()]).await);
    assert_eq!((levels["web"].level.replicas, levels["web"].ready), (6, 6));
    // The baseline is kept for the restore; cancelling gives the capacity back at once.
    let stored = world.ok(prewarmer.load().await);
    assert_eq!(stored.schedule.baselines["web"].replicas, 2);
    let changes = world.ok(prewarming::cancel(&prewarmer, "production", "1", now).await);
    assert_eq!(changes.len(), 1);
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!((v1.min, v1.desired), (2, 2));
    assert!(actions(&world, "shop-production-web-v1").await.is_empty());
}

#[tokio::test]
async fn of_two_runs_changing_the_schedule_the_second_is_refused_and_stores_nothing() {
    let world = World::new().await;
    let prewarmer = prewarmer(&world);
    let first = world.ok(prewarmer.load().await);
    let second = world.ok(prewarmer.load().await);
    let mut schedule = first.schedule.clone();
    schedule.baselines.insert(
        "web".into(),
        crate::plan::prewarm::Level {
            replicas: 2,
            max: None,
            desired: None,
        },
    );
    let token = world.ok(prewarmer.save(&schedule, first.token.as_deref()).await);
    let error = prewarmer
        .save(&Default::default(), second.token.as_deref())
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("another run changed"), "{error}");
    let stored = world.ok(prewarmer.load().await);
    assert_eq!(stored.schedule, schedule);
    assert_eq!(stored.token.as_deref(), Some(token.as_str()));
    // The token of a save is good for the next one.
    world.ok(prewarmer.save(&Default::default(), Some(&token)).await);
}

#[tokio::test]
async fn the_restore_gives_back_the_groups_own_minimum_and_desired_capacity() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    // Autoscaling runs 2 instances of a group that may go down to 1.
    world
        .clients
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name("shop-production-web-v1")
        .min_size(1)
        .send()
        .await
        .unwrap();
    let prewarmer = prewarmer(&world);
    let now = Timestamp::now();
    let at = now + SignedDuration::from_hours(3);
    world.ok(prewarming::schedule(&prewarmer, &request(at, false), now, false).await);
    let raise = (at - SignedDuration::from_mins(30)).as_second();
    let restore = (at + SignedDuration::from_hours(2)).as_second();
    assert_eq!(
        actions(&world, "shop-production-web-v1").await,
        vec![
            ("convoy-prewarm-1".to_string(), raise, 6, 6, 10),
            ("convoy-prewarm-2".to_string(), restore, 1, 2, 10),
        ],
        "the window leaves neither a raised minimum nor raised capacity behind"
    );
}

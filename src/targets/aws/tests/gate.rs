//! Health-gated instances: every new group has Convoy's launch hook; an instance counts only
//! once the agent reported it passed (moto puts every instance in service at once, so this is
//! the only gate there is); an abandoned instance or a hook's heartbeat timeout fails the
//! provision with the reason. The stand-in agent reports through the product's own
//! `LaunchGate`, so the `convoy:health` tags and CompleteLifecycleAction calls are real.

use super::*;
use crate::targets::aws::faults::HEARTBEAT_TIMEOUT;

fn provision(service: &str, version: &str, timeout: u64) -> Step {
    let mut step = step(
        service,
        Action::Provision {
            version: version.into(),
        },
    );
    step.timeout = Dur::secs(timeout);
    step
}

/// The `convoy:health` tags of a group's instances, by instance.
async fn health_tags(world: &World, group: &groups::Group) -> BTreeMap<String, String> {
    let ids: Vec<String> = group.instances.iter().map(|i| i.id.clone()).collect();
    let output = world
        .clients
        .ec2
        .describe_instances()
        .set_instance_ids(Some(ids))
        .send()
        .await
        .unwrap();
    output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            let tag = i
                .tags()
                .iter()
                .find(|t| t.key() == Some(names::TAG_HEALTH))?;
            Some((i.instance_id()?.to_string(), tag.value()?.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn every_new_group_has_the_launch_hook_and_its_instances_were_passed_by_the_agent() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let record = run(
        &world,
        &target,
        &warm,
        deploy(&[("web", "v1"), ("worker", "w1")]),
    )
    .await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    for (service, version) in [("web", "v1"), ("worker", "w1")] {
        let group = world.group(service, version).await.unwrap();
        assert!(group.gated, "{service}");
        let hooks = world.ok(world
            .clients
            .autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(&group.name)
            .send()
            .await);
        let hook = hooks
            .lifecycle_hooks()
            .iter()
            .find(|h| h.lifecycle_hook_name() == Some(names::LAUNCH_HOOK))
            .unwrap_or_else(|| panic!("{service}: no launch hook in {hooks:?}"));
        assert_eq!(
            (
                hook.lifecycle_transition(),
                hook.default_result(),
                hook.heartbeat_timeout()
            ),
            (
                Some("autoscaling:EC2_INSTANCE_LAUNCHING"),
                Some("ABANDON"),
                Some(600)
            ),
            "{service}"
        );
        // Workers (no target group) pass the same gate.
        let tags = health_tags(&world, &group).await;
        assert_eq!(tags.len(), group.instances.len(), "{service}: {tags:?}");
        assert!(tags.values().all(|v| v == "passed"), "{tags:?}");
    }
    let reports = world.agent.reported.lock().unwrap().clone();
    assert!(reports.iter().all(|(_, _, reason)| reason.is_none()));
}

/// moto has every instance InService and Healthy at once; without the agent's report they do
/// not count, for a web service or a worker alike.
#[tokio::test]
async fn instances_in_service_but_not_reported_by_the_agent_do_not_count() {
    let world = World::new().await;
    let target = world.target().await;
    for (service, version) in [("web", "v1"), ("worker", "w1")] {
        let name = target.group_name(service, version);
        world.faults.unreported.lock().unwrap().insert(name.clone());
        let error = target
            .apply(&provision(service, version, 2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not yet reported healthy by the agent"),
            "{error}"
        );
        assert!(error.contains("passed by the agent"), "{error}");
        assert!(world.group(service, version).await.is_none(), "no debris");
    }
}

#[tokio::test]
async fn an_instance_the_agent_abandons_fails_the_provision_at_once_with_its_reason() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let reason = "prepare hook `bin/prepare` failed with exit code 1: DATABASE_URL is not set";
    world
        .faults
        .abandon
        .lock()
        .unwrap()
        .insert("shop-production-web-v2".into(), reason.into());
    let record = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    let Outcome::RolledBack { reason: why } = &record.outcome else {
        panic!("expected a rollback, got {:?}", record.outcome);
    };
    assert!(why.contains("the agent abandoned"), "{why}");
    assert!(why.contains("DATABASE_URL is not set"), "{why}");
    assert!(world.group("web", "v2").await.is_none(), "no debris");
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!((v1.traffic, v1.target_groups.len()), (100, 1));
    // The agent's ABANDON reached Auto Scaling: moto terminated the instance it named.
    let abandoned: Vec<String> = world
        .agent
        .reported
        .lock()
        .unwrap()
        .iter()
        .filter(|(group, _, reason)| group == "shop-production-web-v2" && reason.is_some())
        .map(|(_, instance, _)| instance.clone())
        .collect();
    assert!(!abandoned.is_empty());
    let states = world.ok(world
        .clients
        .ec2
        .describe_instances()
        .set_instance_ids(Some(abandoned))
        .send()
        .await);
    for instance in states.reservations().iter().flat_map(|r| r.instances()) {
        let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str());
        assert_eq!(state, Some("terminated"), "{instance:?}");
        let tag = instance
            .tags()
            .iter()
            .find(|t| t.key() == Some(names::TAG_HEALTH))
            .and_then(|t| t.value());
        assert_eq!(tag, Some(format!("failed: {reason}").as_str()));
    }
}

#[tokio::test]
async fn a_launch_hook_that_times_out_fails_the_provision_with_the_heartbeat_timeout() {
    let world = World::new().await;
    let target = world.target().await;
    world
        .faults
        .hook_timeout
        .lock()
        .unwrap()
        .insert("shop-production-worker-w1".into(), 3);
    let error = target
        .apply(&provision("worker", "w1", 20))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(HEARTBEAT_TIMEOUT), "{error}");
    assert!(error.contains("not InService"), "{error}");
    assert!(world.group("worker", "w1").await.is_none(), "no debris");
}

/// A failed revision retried seconds later makes a group of the same name again; the instances
/// the agent abandoned in the first try carry the same service and revision tags, and once
/// failed the retry at once. Each life of a group has its own `convoy:incarnation`.
#[tokio::test]
async fn a_group_made_again_under_the_same_name_does_not_inherit_the_old_ones_abandons() {
    let world = World::new().await;
    let target = world.target().await;
    let name = target.group_name("worker", "w1");
    world
        .faults
        .abandon
        .lock()
        .unwrap()
        .insert(name.clone(), "bin/prepare failed with exit code 1".into());
    let error = target
        .apply(&provision("worker", "w1", 20))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("the agent abandoned"), "{error}");
    world.faults.abandon.lock().unwrap().clear();
    world.ok(target.apply(&provision("worker", "w1", 20)).await);
    let group = world.group("worker", "w1").await.unwrap();
    let tags = health_tags(&world, &group).await;
    assert!(
        !tags.is_empty() && tags.values().all(|v| v == "passed"),
        "{tags:?}"
    );
}

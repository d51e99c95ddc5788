//! What real AWS does and moto does not: answers "not found" right after a create, drains
//! connections for the deregistration delay, keeps alarms apart from step and simple policies,
//! and settings moto ignores; plus the launch template's settings and a lease lost mid-switch.

use super::*;
use aws_sdk_autoscaling::types::{
    InstanceMaintenancePolicy, InstancesDistribution, LaunchTemplate as GroupTemplate,
    LaunchTemplateOverrides, LaunchTemplateSpecification, MixedInstancesPolicy,
};

#[tokio::test]
async fn not_found_right_after_a_create_is_retried_not_taken_for_a_failure() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let v1 = world.group("web", "v1").await.unwrap();
    world.ok(world
        .clients
        .autoscaling
        .put_scaling_policy()
        .auto_scaling_group_name(&v1.name)
        .policy_name("cpu")
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(cpu_at(60.0))
        .send()
        .await);
    // The new template version, then the new group, are not visible at first.
    for (operation, times) in [("CreateAutoScalingGroup", 2), ("PutScalingPolicy", 1)] {
        world
            .faults
            .not_found
            .lock()
            .unwrap()
            .insert(operation.into(), times);
    }
    world
        .faults
        .invisible
        .lock()
        .unwrap()
        .insert("shop-production-web-v2".into(), 2);
    let before = world.counter.snapshot();
    let record = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let calls = world.counter.since(&before);
    assert_eq!(calls["AutoScaling.CreateAutoScalingGroup"], 3, "{calls:?}");
    assert_eq!(calls["AutoScaling.PutScalingPolicy"], 2, "{calls:?}");
    assert!(!calls.contains_key("AutoScaling.DeleteAutoScalingGroup"));
    assert_eq!(
        world.faults.invisible.lock().unwrap()["shop-production-web-v2"],
        0
    );
    assert_eq!(world.group("web", "v2").await.unwrap().traffic, 100);
}

#[tokio::test]
async fn a_group_that_served_traffic_is_deleted_only_after_its_connections_drained() {
    let world = World::new().await;
    let target = world.target().await;
    let now = policy(Strategy::Bluegreen, &[100], 0);
    run(&world, &target, &now, deploy(&[("web", "v1")])).await;
    world
        .faults
        .draining
        .lock()
        .unwrap()
        .insert("shop-production-web-v1".into(), 3);
    let before = world.counter.snapshot();
    // v2 takes the traffic; v1 is detached and, keep_warm being 0, retired at once.
    let record = run(&world, &target, &now, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(world.group("web", "v1").await.is_none(), "retired");
    assert_eq!(
        world.faults.draining.lock().unwrap()["shop-production-web-v1"],
        0
    );
    assert!(
        world
            .faults
            .deleted_while_draining
            .lock()
            .unwrap()
            .is_empty(),
        "deleted while its connections were draining"
    );
    let calls = world.counter.since(&before);
    assert_eq!(
        calls["ElasticLoadBalancingv2.DescribeTargetGroupAttributes"], 1,
        "the deregistration delay bounds the wait: {calls:?}"
    );
}

#[tokio::test]
async fn draining_is_bounded_by_the_deregistration_delay() {
    let world = World::new().await;
    let mut target = world.target().await;
    let reporter = Arc::new(RecordingReporter::default());
    target.reporter = reporter.clone();
    let arn = target.target_groups("web")[0].clone();
    world.ok(world
        .clients
        .elb
        .modify_target_group_attributes()
        .target_group_arn(&arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("1")
                .build(),
        )
        .send()
        .await);
    let now = policy(Strategy::Bluegreen, &[100], 0);
    run(&world, &target, &now, deploy(&[("web", "v1")])).await;
    // A target that never stops draining (the load balancer cuts it after the delay anyway).
    world
        .faults
        .draining
        .lock()
        .unwrap()
        .insert("shop-production-web-v1".into(), u32::MAX);
    let record = run(&world, &target, &now, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(
        world.group("web", "v1").await.is_none(),
        "retired after the delay"
    );
    let warned = reporter.events().into_iter().any(|e| {
        matches!(e, crate::execute::Event::Warning { message }
            if message.contains("still registered after the deregistration delay (1s)"))
    });
    assert!(warned, "{:?}", reporter.events());
}

#[tokio::test]
async fn a_step_scaling_policy_is_refused_before_anything_changes() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let v1 = world.group("web", "v1").await.unwrap();
    let step_adjustment = aws_sdk_autoscaling::types::StepAdjustment::builder()
        .metric_interval_lower_bound(0.0)
        .scaling_adjustment(2)
        .build();
    world.ok(world
        .clients
        .autoscaling
        .put_scaling_policy()
        .auto_scaling_group_name(&v1.name)
        .policy_name("burst")
        .policy_type("StepScaling")
        .adjustment_type("ChangeInCapacity")
        .step_adjustments(step_adjustment)
        .send()
        .await);
    let before = world.counter.snapshot();
    let graph = graph();
    let releases = S3Releases::new(world.location());
    let reporter = RecordingReporter::default();
    let session = Session {
        environment: "production",
        policy: &warm,
        graph: &graph,
        target: &target,
        releases: &releases,
        lock: Arc::new(S3Lock::new(world.location())),
        clock: Arc::new(SystemClock),
        reporter: &reporter,
        holder: holder(),
        abort: Abort::never(),
        revisions: &BTreeMap::new(),
        tasks: BTreeMap::new(),
        flags: None,
    };
    let Err(error) = session.run(deploy(&[("web", "v2")])).await else {
        panic!("a group with a step scaling policy was copied");
    };
    let text = error.to_string();
    assert!(text.contains("refused before any change"), "{text}");
    assert!(text.contains("StepScaling policy `burst`"), "{text}");
    use crate::diagnostic::Diagnose;
    let help = error.help().unwrap_or_default();
    assert!(help.contains("target-tracking"), "{help}");
    let calls = world.counter.since(&before);
    assert!(
        calls
            .keys()
            .all(|op| op.starts_with("S3.") || op.contains(".Describe")),
        "{calls:?}"
    );
    assert_eq!(releases.latest().await.unwrap().unwrap().number, 1);
}

#[tokio::test]
async fn the_new_group_copies_the_old_groups_settings_and_warm_pool() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let v1 = world.group("web", "v1").await.unwrap();
    let mixed = MixedInstancesPolicy::builder()
        .launch_template(
            GroupTemplate::builder()
                .launch_template_specification(
                    LaunchTemplateSpecification::builder()
                        .launch_template_name("shop-production-web")
                        .version(v1.template_version.unwrap().to_string())
                        .build(),
                )
                .overrides(
                    LaunchTemplateOverrides::builder()
                        .instance_type("t3.medium")
                        .build(),
                )
                .overrides(
                    LaunchTemplateOverrides::builder()
                        .instance_type("t3a.medium")
                        .build(),
                )
                .build(),
        )
        // A base covering the group's size: moto rounds on-demand and spot shares above the
        // base down separately, and so launches one instance fewer than asked for otherwise.
        .instances_distribution(
            InstancesDistribution::builder()
                .on_demand_base_capacity(2)
                .on_demand_percentage_above_base_capacity(50)
                .build(),
        )
        .build();
    let client = &world.clients.autoscaling;
    world.ok(client
        .update_auto_scaling_group()
        .auto_scaling_group_name(&v1.name)
        .mixed_instances_policy(mixed)
        .send()
        .await);
    world.ok(client
        .create_or_update_tags()
        .tags(groups::group_tag(&v1.name, "team", "checkout", true))
        .send()
        .await);
    world.ok(client
        .put_warm_pool()
        .auto_scaling_group_name(&v1.name)
        .min_size(1)
        .pool_state(aws_sdk_autoscaling::types::WarmPoolState::Stopped)
        .send()
        .await);
    // Settings moto keeps no record of, shown on v1 as AWS would.
    world.faults.settings.lock().unwrap().insert(
        v1.name.clone(),
        aws_sdk_autoscaling::types::AutoScalingGroup::builder()
            .termination_policies("OldestLaunchTemplate")
            .capacity_rebalance(true)
            .default_instance_warmup(90)
            .instance_maintenance_policy(
                InstanceMaintenancePolicy::builder()
                    .min_healthy_percentage(90)
                    .max_healthy_percentage(120)
                    .build(),
            )
            .build(),
    );
    let record = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let v2 = world.group("web", "v2").await.unwrap();
    let created = world.faults.created.lock().unwrap()[&v2.name].clone();
    let policy = created
        .mixed_instances_policy
        .clone()
        .expect("mixed instances");
    let launch = policy.launch_template.unwrap();
    assert_eq!(
        launch.launch_template_specification.and_then(|s| s.version),
        v2.template_version.map(|v| v.to_string()),
        "launches from the new template version"
    );
    assert_eq!(launch.overrides.unwrap().len(), 2);
    assert_eq!(
        policy
            .instances_distribution
            .and_then(|d| d.on_demand_percentage_above_base_capacity),
        Some(50)
    );
    assert!(created.launch_template.is_none());
    assert_eq!(
        created.termination_policies,
        Some(vec!["OldestLaunchTemplate".to_string()])
    );
    assert_eq!(created.capacity_rebalance, Some(true));
    assert_eq!(created.default_instance_warmup, Some(90));
    assert_eq!(
        created
            .instance_maintenance_policy
            .and_then(|p| p.min_healthy_percentage),
        Some(90)
    );
    let described = world.ok(client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&v2.name)
        .send()
        .await);
    let v2_raw = &described.auto_scaling_groups()[0];
    assert!(
        v2_raw
            .tags()
            .iter()
            .any(|t| t.key() == Some("team") && t.value() == Some("checkout")),
        "{:?}",
        v2_raw.tags()
    );
    let pool = v2_raw.warm_pool_configuration().expect("a warm pool");
    assert_eq!(pool.min_size(), Some(1));
}

#[tokio::test]
async fn the_launch_template_takes_the_environments_launch_settings() {
    let world = World::new().await;
    let mut target = world.target().await;
    target.config = yaml_serde::from_str(
        r#"
        region: eu-west-1
        ami: shop-base-*
        iam_instance_profile: shop-instance
        key_name: ops
        block_devices:
          - { device: /dev/xvda, size_gib: 30 }
          - { device: /dev/sdf, volume_type: gp3, size_gib: 100, iops: 4000, throughput: 250, kms_key: alias/shop }
        "#,
    )
    .unwrap();
    world.ok(target
        .apply(&step(
            "worker",
            Action::Provision {
                version: "w1".into(),
            },
        ))
        .await);
    let versions = world.ok(world
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_name("shop-production-worker")
        .send()
        .await);
    let data = versions.launch_template_versions()[0]
        .launch_template_data()
        .unwrap();
    assert_eq!(data.key_name(), Some("ops"));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("shop-instance")
    );
    let metadata = data.metadata_options().unwrap();
    assert_eq!(
        metadata.http_tokens().map(|t| t.as_str()),
        Some("required"),
        "IMDSv2 only by default"
    );
    assert_eq!(metadata.http_put_response_hop_limit(), Some(1));
    let devices = data.block_device_mappings();
    assert_eq!(devices.len(), 2);
    let root = devices[0].ebs().unwrap();
    assert_eq!(
        (
            devices[0].device_name(),
            root.volume_size(),
            root.encrypted()
        ),
        (Some("/dev/xvda"), Some(30), Some(true))
    );
    let data_disk = devices[1].ebs().unwrap();
    // (gp3 rather than io2 here: moto launches no instance from an io1/io2 mapping, as it
    // drops the mapping's Iops before it checks that such a volume has them.)
    assert_eq!(
        (
            data_disk.iops(),
            data_disk.throughput(),
            data_disk.kms_key_id()
        ),
        (Some(4000), Some(250), Some("alias/shop"))
    );
    // The template is tagged with its owner.
    let templates = world.ok(world
        .clients
        .ec2
        .describe_launch_templates()
        .launch_template_names("shop-production-worker")
        .send()
        .await);
    let tags: Vec<(String, String)> = templates.launch_templates()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert!(
        tags.contains(&("convoy:env".into(), "production".into())),
        "{tags:?}"
    );
}

/// Losing the lease stops the run at once, like a second Ctrl-C: no rollback, no detach — a
/// canary step that attached the new group leaves both groups serving.
#[tokio::test]
async fn a_release_that_loses_its_lease_mid_switch_leaves_both_groups_serving() {
    let world = World::new().await;
    let mut target = world.target().await;
    target.capacity.insert("web".into(), 4);
    let canary = RolloutPolicy {
        bake: Dur::secs(120),
        step_timeout: Dur::secs(300),
        ..policy(Strategy::Canary, &[50, 100], 1800)
    };
    // v1 at once (a canary's bakes would pass in real time against moto), v2 as a canary.
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    let attaching = world.faults.on("AttachLoadBalancerTargetGroups");
    let lock: Arc<dyn EnvLock> = Arc::new(S3Lock::new(world.location()));
    let graph = graph();
    let releases = S3Releases::new(world.location());
    let reporter = RecordingReporter::default();
    let session = Session {
        environment: "production",
        policy: &canary,
        graph: &graph,
        target: &target,
        releases: &releases,
        lock: lock.clone(),
        clock: Arc::new(SystemClock),
        reporter: &reporter,
        holder: holder(),
        abort: Abort::never(),
        revisions: &BTreeMap::new(),
        tasks: BTreeMap::new(),
        flags: None,
    };
    let thief = async {
        attaching.notified().await;
        // Another run breaks the lease and takes it while v2 is being attached.
        lock.break_lock().await.unwrap();
        let other = Holder {
            user: "someone-else".into(),
            ..holder()
        };
        let ttl = Duration::from_secs(600);
        lock.acquire(&other, "theirs", ttl, jiff::Timestamp::now())
            .await
            .unwrap();
        std::future::pending::<()>().await;
    };
    // The session notices at its next renewal (a third of the lease's time): bounded.
    let ran = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::select! {
            ran = session.run(deploy(&[("web", "v2")])) => ran,
            () = thief => unreachable!(),
        }
    })
    .await
    .expect("the run stops once the lease is lost");
    let Err(crate::execute::SessionError::LockLost { .. }) = ran else {
        panic!("expected the lease to be lost");
    };
    let tg = target.target_groups("web")[0].clone();
    let (v1, v2) = (
        world.group("web", "v1").await.unwrap(),
        world.group("web", "v2").await.unwrap(),
    );
    assert_eq!(
        (v1.desired, v2.desired),
        (2, 2),
        "both at their canary size"
    );
    assert!(v1.target_groups.contains(&tg) && v2.target_groups.contains(&tg));
    world.ok(target.verify("web", "v1").await);
    world.ok(target.verify("web", "v2").await);
    let unfinished = releases.latest().await.unwrap().unwrap();
    assert!(unfinished.is_unfinished(), "left for --resume or rollback");
}

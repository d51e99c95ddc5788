//! The AWS target against moto's server through the real SDK. moto reports every instance
//! InService and Healthy at once and records no scaling activities, so slow or failing capacity
//! comes from `Faults` (faults.rs), an SDK interceptor of our own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_autoscaling::config::SharedInterceptor;
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use convoy_test_support::moto::{Moto, Report, StandInAgent};

use super::faults::Faults;
use super::*;
use crate::config::service_graph::ServiceGraph;
use crate::config::target::AwsTarget as AwsConfig;
use crate::config::{Dur, Percent, RolloutPolicy, Strategy};
use crate::execute::{
    Abort, EnvLock, Holder, Outcome, RecordingReporter, ReleaseStore, Request, Session,
    SystemClock, Target,
};
use crate::plan::{Action, Phase, Step, StepId};
use crate::targets::aws::calls::CallCounter;
use crate::targets::aws::connection::Clients;
use crate::targets::aws::state::{S3Lock, S3Releases, StateLocation};

const REGION: &str = "eu-west-1";
const BUCKET: &str = "shop-artifacts";

/// A fixed script: the user-data template itself is tested by the render tests.
struct Script;

#[async_trait::async_trait]
impl UserData for Script {
    async fn user_data(
        &self,
        service: &str,
        version: &str,
        _release: u64,
    ) -> Result<String, String> {
        Ok(format!(
            "#!/bin/sh\nexec convoy host deploy {service} {version}\n"
        ))
    }
}

struct World {
    moto: Moto,
    /// Reports every instance of a gated group passed, or abandoned as `faults.abandon` says.
    agent: StandInAgent,
    faults: Faults,
    counter: CallCounter,
    clients: Clients,
    config: AwsConfig,
}

impl World {
    async fn new() -> World {
        let moto = Moto::start().await;
        let faults = Faults::default();
        let counter = CallCounter::default();
        let clients = Clients::new(
            &moto.sdk_config(REGION),
            &[
                SharedInterceptor::new(counter.clone()),
                SharedInterceptor::new(faults.clone()),
            ],
        );
        clients
            .ec2
            .register_image()
            .name("shop-base-1")
            .send()
            .await
            .expect("register an AMI");
        let vpc = clients
            .ec2
            .describe_vpcs()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("isDefault")
                    .values("true")
                    .build(),
            )
            .send()
            .await
            .expect("the default VPC")
            .vpcs
            .unwrap_or_default()
            .into_iter()
            .find_map(|v| v.vpc_id)
            .expect("moto has a default VPC");
        clients
            .elb
            .create_target_group()
            .name("shop-web")
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Instance)
            .send()
            .await
            .expect("a target group");
        clients
            .s3
            .create_bucket()
            .bucket(BUCKET)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .expect("a bucket");
        let config = AwsConfig {
            region: REGION.into(),
            profile: None,
            ami: Some("shop-base-*".into()),
            ami_owners: vec!["self".into()],
            instance_type: "t3.small".into(),
            subnets: vec![],
            security_groups: vec!["default".into()],
            instance_profile: Some("shop-instance".into()),
            target_groups: [("web".to_string(), "shop-web".to_string())].into(),
            key_name: None,
            block_devices: Vec::new(),
            metadata: Default::default(),
        };
        let (abandon, unreported) = (faults.abandon.clone(), faults.unreported.clone());
        let agent = StandInAgent::start(&moto, REGION, move |group| {
            if unreported.lock().unwrap().contains(group) {
                return Report::Wait;
            }
            match abandon.lock().unwrap().get(group) {
                Some(reason) => Report::Abandon(reason.clone()),
                None => Report::Pass,
            }
        });
        World {
            moto,
            agent,
            faults,
            counter,
            clients,
            config,
        }
    }

    fn location(&self) -> StateLocation {
        self.location_of("production")
    }

    fn location_of(&self, environment: &str) -> StateLocation {
        StateLocation::new(self.clients.s3.clone(), BUCKET, "artifacts", environment)
    }

    async fn target(&self) -> AwsTarget {
        self.target_of("shop", "production").await
    }

    /// The target of another project or environment, in the same account and region.
    async fn target_of(&self, project: &str, environment: &str) -> AwsTarget {
        let services = ["web".to_string(), "worker".to_string()];
        let resolved = lookups::resolve(&self.clients, environment, &self.config, &services)
            .await
            .expect("everything exists");
        AwsTarget {
            reporter: Arc::new(crate::execute::RecordingReporter::default()),
            clients: self.clients.clone(),
            project: project.into(),
            environment: environment.into(),
            resolved,
            config: self.config.clone(),
            secrets: BTreeMap::new(),
            launch_timeout: Duration::from_secs(600),
            capacity: [("web".to_string(), 2), ("worker".to_string(), 1)].into(),
            max_capacity: Some(10),
            first_step: None,
            user_data: Arc::new(Script),
            releases: Some(Arc::new(S3Releases::new(self.location_of(environment)))),
            clock: Arc::new(SystemClock),
            poll: Duration::from_millis(50),
            prewarm: crate::plan::prewarm::Schedule::default(),
        }
    }

    async fn group(&self, service: &str, version: &str) -> Option<groups::Group> {
        self.group_of("shop", "production", service, version).await
    }

    async fn group_of(
        &self,
        project: &str,
        environment: &str,
        service: &str,
        version: &str,
    ) -> Option<groups::Group> {
        let name = names::group_name(project, environment, service, version);
        groups::group(&self.clients, &name).await.expect("describe")
    }

    /// Fails the test with moto's log when `result` is an error (moto's 500s explain themselves
    /// only there).
    fn ok<T, E: std::fmt::Display>(&self, result: Result<T, E>) -> T {
        result.unwrap_or_else(|error| panic!("{error}\nmoto's log:\n{}", self.moto.log_text()))
    }
}

fn policy(strategy: Strategy, steps: &[u8], keep_warm: u64) -> RolloutPolicy {
    RolloutPolicy {
        strategy,
        steps: steps.iter().map(|p| Percent(*p)).collect(),
        step_timeout: Dur::secs(20),
        provision_timeout: Dur::secs(20),
        rollback_timeout: Dur::secs(20),
        keep_warm: Dur::secs(keep_warm),
        ..RolloutPolicy::default()
    }
}

/// A target-tracking configuration: average CPU at `percent`.
fn cpu_at(percent: f64) -> aws_sdk_autoscaling::types::TargetTrackingConfiguration {
    let metric = aws_sdk_autoscaling::types::PredefinedMetricSpecification::builder()
        .predefined_metric_type(aws_sdk_autoscaling::types::MetricType::AsgAverageCpuUtilization)
        .build();
    aws_sdk_autoscaling::types::TargetTrackingConfiguration::builder()
        .predefined_metric_specification(metric)
        .target_value(percent)
        .build()
}

fn holder() -> Holder {
    Holder {
        user: "ci".into(),
        host: "runner".into(),
        ci: None,
        pid: std::process::id(),
        pid_namespace: None,
    }
}

fn graph() -> ServiceGraph {
    let edges: Vec<(String, Vec<String>)> = vec![("web".into(), vec![]), ("worker".into(), vec![])];
    ServiceGraph::new(edges.iter().map(|(s, d)| (s.as_str(), d.as_slice())))
}

/// Runs one request through a real session on the target, lock and records in the bucket.
async fn run(
    world: &World,
    target: &AwsTarget,
    policy: &RolloutPolicy,
    request: Request,
) -> crate::execute::ReleaseRecord {
    run_with(world, target, policy, request, BTreeMap::new()).await
}

/// [`run`] with release tasks by service.
async fn run_with(
    world: &World,
    target: &AwsTarget,
    policy: &RolloutPolicy,
    request: Request,
    tasks: BTreeMap<String, BTreeMap<String, crate::config::Task>>,
) -> crate::execute::ReleaseRecord {
    run_flagged(world, target, policy, request, tasks, None).await
}

/// [`run_with`] with the environment's flags (maintenance around tasks).
async fn run_flagged(
    world: &World,
    target: &AwsTarget,
    policy: &RolloutPolicy,
    request: Request,
    tasks: BTreeMap<String, BTreeMap<String, crate::config::Task>>,
    flags: Option<Arc<dyn crate::execute::FlagStore>>,
) -> crate::execute::ReleaseRecord {
    let graph = graph();
    let location = world.location_of(&target.environment);
    let releases = S3Releases::new(location.clone());
    let reporter = RecordingReporter::default();
    let session = Session {
        environment: &target.environment,
        policy,
        graph: &graph,
        target,
        releases: &releases,
        lock: Arc::new(S3Lock::new(location)),
        clock: Arc::new(SystemClock),
        reporter: &reporter,
        holder: holder(),
        abort: Abort::never(),
        revisions: &BTreeMap::new(),
        tasks,
        flags,
    };
    let finished = world.ok(session.run(request).await);
    finished.record.expect("a release ran")
}

fn deploy(pairs: &[(&str, &str)]) -> Request {
    Request::Deploy {
        desired: pairs
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect(),
    }
}

fn step(service: &str, action: Action) -> Step {
    Step {
        id: StepId(0),
        phase: Phase::Switch,
        service: service.into(),
        action,
        after: vec![],
        after_all_below: None,
        timeout: Dur::secs(20),
        not_before: None,
    }
}

fn switch(from: Option<&str>, to: &str, percent: u8) -> Action {
    Action::Switch {
        from: from.map(str::to_string),
        to: to.into(),
        percent,
        bake: Dur::secs(0),
    }
}

#[tokio::test]
async fn provision_puts_a_new_group_beside_the_old_and_the_switch_moves_the_target_group() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let first = run(
        &world,
        &target,
        &warm,
        deploy(&[("web", "v1"), ("worker", "w1")]),
    )
    .await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    let v1 = world.group("web", "v1").await.expect("v1's group");
    let tg = target.target_groups("web")[0].clone();
    assert_eq!((v1.desired, v1.traffic), (2, 100));
    assert_eq!(v1.target_groups, vec![tg.clone()]);
    // The old group's scaling policy and future scheduled action must follow to the new one.
    world.ok(world
        .clients
        .autoscaling
        .put_scaling_policy()
        .auto_scaling_group_name(&v1.name)
        .policy_name("cpu")
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(cpu_at(55.0))
        .send()
        .await);
    world.ok(world
        .clients
        .autoscaling
        .put_lifecycle_hook()
        .auto_scaling_group_name(&v1.name)
        .lifecycle_hook_name("register-in-dns")
        .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
        .heartbeat_timeout(120)
        .send()
        .await);
    let later = aws_smithy_types::DateTime::from_secs(jiff::Timestamp::now().as_second() + 86_400);
    world.ok(world
        .clients
        .autoscaling
        .put_scheduled_update_group_action()
        .auto_scaling_group_name(&v1.name)
        .scheduled_action_name("on-sale")
        .start_time(later)
        .desired_capacity(6)
        .send()
        .await);

    let second = run(
        &world,
        &target,
        &warm,
        deploy(&[("web", "v2"), ("worker", "w1")]),
    )
    .await;
    assert_eq!(second.outcome, Outcome::Succeeded, "{:?}", second.failure);
    let (v1, v2) = (
        world.group("web", "v1").await.expect("v1 kept warm"),
        world.group("web", "v2").await.expect("v2's group"),
    );
    assert_eq!(v2.target_groups, vec![tg]);
    assert!(v1.target_groups.is_empty(), "the old group is detached");
    assert_eq!((v1.desired, v1.traffic), (2, 0), "warm: still running");
    assert_eq!((v2.desired, v2.traffic, v2.capacity), (2, 100, 2));
    assert_ne!(v1.template_version, v2.template_version);
    let policies = world.ok(world
        .clients
        .autoscaling
        .describe_policies()
        .auto_scaling_group_name(&v2.name)
        .send()
        .await);
    let copied = policies.scaling_policies();
    assert_eq!(copied.len(), 1);
    assert_eq!(
        copied[0].policy_type(),
        Some("TargetTrackingScaling"),
        "copied as it is"
    );
    assert_eq!(
        copied[0]
            .target_tracking_configuration()
            .and_then(|c| c.target_value()),
        Some(55.0)
    );
    let actions = world.ok(world
        .clients
        .autoscaling
        .describe_scheduled_actions()
        .auto_scaling_group_name(&v2.name)
        .send()
        .await);
    assert_eq!(actions.scheduled_update_group_actions().len(), 1);
    let hooks = world.faults.created_hooks.lock().unwrap()["shop-production-web-v2"].clone();
    assert_eq!(
        hooks,
        vec!["convoy-launch", "register-in-dns"],
        "created with Convoy's launch hook and the old group's hooks"
    );
    // The version is pinned by number and carries the user data.
    let versions = world.ok(world
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_name("shop-production-web")
        .versions(v2.template_version.unwrap().to_string())
        .send()
        .await);
    let data = versions.launch_template_versions()[0]
        .launch_template_data
        .clone()
        .expect("template data");
    let script = aws_smithy_types::base64::decode(data.user_data.unwrap()).unwrap();
    assert!(
        String::from_utf8(script)
            .unwrap()
            .contains("convoy host deploy web v2")
    );
    // Status reads it all from the tags.
    let observed = target
        .observe(&["web".into(), "worker".into()])
        .await
        .unwrap();
    assert_eq!(observed["web"].live.as_deref(), Some("v2"));
    assert_eq!(observed["web"].warm, vec!["v1", "v2"]);
    assert_eq!(observed["worker"].live.as_deref(), Some("w1"));
}

#[tokio::test]
async fn cleanup_deletes_the_old_group_and_its_template_version() {
    let world = World::new().await;
    let target = world.target().await;
    let now = policy(Strategy::Bluegreen, &[100], 0);
    run(&world, &target, &now, deploy(&[("web", "v1")])).await;
    let v1 = world.group("web", "v1").await.unwrap();
    let record = run(&world, &target, &now, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(world.group("web", "v1").await.is_none(), "retired");
    let versions = world.ok(world
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_name("shop-production-web")
        .send()
        .await);
    let left: Vec<i64> = versions
        .launch_template_versions()
        .iter()
        .filter_map(|v| v.version_number)
        .collect();
    assert!(!left.contains(&v1.template_version.unwrap()), "{left:?}");
    let v2 = world.group("web", "v2").await.unwrap();
    assert!(left.contains(&v2.template_version.unwrap()));
    let defaults = world.ok(world
        .clients
        .ec2
        .describe_launch_templates()
        .launch_template_names("shop-production-web")
        .send()
        .await);
    assert_eq!(
        defaults.launch_templates()[0].default_version_number,
        v2.template_version,
        "the default moved off the deleted version"
    );
}

#[tokio::test]
async fn rollback_while_warm_reattaches_the_old_group_without_a_provision() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    let before = world.counter.snapshot();
    let record = run(&world, &target, &warm, Request::Rollback { to: None }).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(
        record.plan.phase(Phase::Provision).next().is_none(),
        "{}",
        record.plan
    );
    let calls = world.counter.since(&before);
    assert!(
        !calls.contains_key("AutoScaling.CreateAutoScalingGroup"),
        "{calls:?}"
    );
    let (v1, v2) = (
        world.group("web", "v1").await.unwrap(),
        world.group("web", "v2").await.unwrap(),
    );
    assert_eq!((v1.traffic, v1.target_groups.len()), (100, 1));
    assert_eq!(
        (v2.traffic, v2.target_groups.len()),
        (0, 0),
        "v2 detached, warm"
    );
}

#[tokio::test]
async fn canary_steps_resize_both_groups_and_pin_the_new_one_at_100() {
    let world = World::new().await;
    let mut target = world.target().await;
    target.capacity.insert("web".into(), 4);
    target.first_step = Some(25);
    let tg = target.target_groups("web")[0].clone();
    let ok = |r: Result<(), crate::execute::TargetError>| world.ok(r);
    let provision = |version: &str| {
        step(
            "web",
            Action::Provision {
                version: version.into(),
            },
        )
    };
    ok(target.apply(&provision("v1")).await);
    // A first release's canary step has nobody to share with: it takes all the traffic.
    ok(target.apply(&step("web", switch(None, "v1", 25))).await);
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!((v1.desired, v1.traffic), (4, 100));
    ok(target.apply(&provision("v2")).await);
    let v2 = world.group("web", "v2").await.unwrap();
    assert_eq!(
        (v2.desired, v2.capacity),
        (1, 4),
        "starts at the first step's size"
    );
    ok(target
        .apply(&step("web", switch(Some("v1"), "v2", 25)))
        .await);
    let (v1, v2) = (
        world.group("web", "v1").await.unwrap(),
        world.group("web", "v2").await.unwrap(),
    );
    assert_eq!((v2.desired, v1.desired), (1, 3));
    assert_eq!((v2.traffic, v1.traffic), (25, 75));
    assert!(
        v1.target_groups.contains(&tg) && v2.target_groups.contains(&tg),
        "both serve"
    );
    ok(target
        .apply(&step("web", switch(Some("v1"), "v2", 100)))
        .await);
    let (v1, v2) = (
        world.group("web", "v1").await.unwrap(),
        world.group("web", "v2").await.unwrap(),
    );
    assert_eq!(v2.desired, 4);
    assert!(v1.target_groups.is_empty());
    assert_eq!((v2.traffic, v1.traffic), (100, 0));
    // Rolling back resizes the old group to its own capacity and re-attaches it.
    ok(target
        .apply(&step("web", switch(Some("v2"), "v1", 100)))
        .await);
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!(
        (v1.desired, v1.traffic, v1.target_groups.len()),
        (4, 100, 1)
    );
}

#[tokio::test]
async fn workers_without_target_groups_switch_by_scaling() {
    let world = World::new().await;
    let target = world.target().await;
    let ok = |r: Result<(), crate::execute::TargetError>| world.ok(r);
    ok(target
        .apply(&step(
            "worker",
            Action::Provision {
                version: "w1".into(),
            },
        ))
        .await);
    ok(target.apply(&step("worker", switch(None, "w1", 100))).await);
    ok(target
        .apply(&step(
            "worker",
            Action::Provision {
                version: "w2".into(),
            },
        ))
        .await);
    ok(target
        .apply(&step("worker", switch(Some("w1"), "w2", 100)))
        .await);
    let (w1, w2) = (
        world.group("worker", "w1").await.unwrap(),
        world.group("worker", "w2").await.unwrap(),
    );
    assert_eq!((w1.desired, w2.desired), (0, 1));
    assert!(w2.target_groups.is_empty());
}

#[tokio::test]
async fn a_group_that_never_becomes_healthy_is_deleted_with_the_scaling_failure_in_the_error() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    world.faults.sicken(
        "shop-production-web-v2",
        Some("Your quota allows for 0 more running instance(s)"),
    );
    let record = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    let Outcome::RolledBack { reason } = &record.outcome else {
        panic!("expected a clean rollback, got {:?}", record.outcome);
    };
    assert!(reason.contains("quota allows for 0 more"), "{reason}");
    assert!(
        reason.contains("0/2 instances InService and Healthy"),
        "{reason}"
    );
    assert!(world.group("web", "v2").await.is_none(), "no debris");
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!(
        (v1.traffic, v1.target_groups.len()),
        (100, 1),
        "v1 served throughout"
    );
}

#[tokio::test]
async fn unhealthy_instances_without_a_failed_activity_fail_when_the_budget_is_spent() {
    let world = World::new().await;
    let target = world.target().await;
    world.faults.sicken("shop-production-web-v1", None);
    let mut provision = step(
        "web",
        Action::Provision {
            version: "v1".into(),
        },
    );
    provision.timeout = Dur::secs(2);
    let error = target.apply(&provision).await.unwrap_err().to_string();
    assert!(error.contains("did not become healthy"), "{error}");
    assert!(error.contains("Unhealthy"), "{error}");
    assert!(world.group("web", "v1").await.is_none(), "no debris");
}

#[tokio::test]
async fn the_lock_is_a_lease_in_the_bucket_that_one_run_holds_at_a_time() {
    let world = World::new().await;
    let (ours, theirs) = (S3Lock::new(world.location()), S3Lock::new(world.location()));
    let now = jiff::Timestamp::now();
    let ttl = Duration::from_secs(60);
    let lease = ours.acquire(&holder(), "a", ttl, now).await.unwrap().lease;
    let other = Holder {
        user: "someone".into(),
        ..holder()
    };
    let held = theirs.acquire(&other, "b", ttl, now).await.unwrap_err();
    assert!(
        matches!(held, crate::execute::LockError::Held { .. }),
        "{held}"
    );
    // Renewed by its holder; once expired, taken over by the next run.
    let renewed = ours.renew(&lease, ttl, now).await.unwrap();
    let later = now.checked_add(Duration::from_secs(120)).unwrap();
    let taken = theirs.acquire(&other, "b", ttl, later).await.unwrap();
    assert_eq!(taken.took_over.map(|l| l.token), Some("a".to_string()));
    let lost = ours.renew(&renewed, ttl, later).await.unwrap_err();
    assert!(
        matches!(lost, crate::execute::LockError::Lost { .. }),
        "{lost}"
    );
    ours.release(&renewed).await.unwrap(); // not ours any more: a no-op
    assert_eq!(
        theirs.status().await.unwrap().map(|l| l.token),
        Some("b".into())
    );
    theirs.release(&taken.lease).await.unwrap();
    assert_eq!(theirs.status().await.unwrap(), None);
}

#[tokio::test]
async fn a_killed_deploy_is_resumed_from_the_records_in_the_bucket() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    // Killed just as the new group is being attached: provisioned, switch half done.
    let attaching = world.faults.on("AttachLoadBalancerTargetGroups");
    let graph = graph();
    let releases = S3Releases::new(world.location());
    let reporter = RecordingReporter::default();
    let lock: Arc<dyn EnvLock> = Arc::new(S3Lock::new(world.location()));
    let session = Session {
        environment: "production",
        policy: &warm,
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
    tokio::select! {
        _ = session.run(deploy(&[("web", "v2")])) => panic!("the run should have been killed"),
        () = attaching.notified() => {}
    }
    let unfinished = releases.latest().await.unwrap().unwrap();
    assert!(unfinished.is_unfinished());
    // The dead run's lease is still there: an operator breaks it, then resumes.
    assert!(lock.break_lock().await.unwrap().is_some());
    *world.faults.watch.lock().unwrap() = None;
    let record = run(&world, &target, &warm, Request::Resume).await;
    assert_eq!(record.number, unfinished.number);
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let v2 = world.group("web", "v2").await.unwrap();
    assert_eq!((v2.traffic, v2.target_groups.len()), (100, 1));
    let v1 = world.group("web", "v1").await.unwrap();
    assert!(v1.target_groups.is_empty());
}

#[tokio::test]
async fn validation_names_what_is_missing_before_anything_changes() {
    let world = World::new().await;
    let services = ["web".to_string()];
    let mut config = world.config.clone();
    config
        .target_groups
        .insert("web".into(), "no-such-group".into());
    let error = lookups::resolve(&world.clients, "production", &config, &services)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AwsError::TargetGroupNotFound { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("no-such-group"));
    let mut config = world.config.clone();
    config.ami = Some("nothing-like-it-*".into());
    let error = lookups::resolve(&world.clients, "production", &config, &services)
        .await
        .unwrap_err();
    assert!(matches!(error, AwsError::AmiNotFound { .. }), "{error}");
    let mut config = world.config.clone();
    config.subnets = vec!["subnet-00000000".into()];
    let error = lookups::resolve(&world.clients, "production", &config, &services)
        .await
        .unwrap_err();
    assert!(matches!(error, AwsError::SubnetNotFound { .. }), "{error}");
    let mut config = world.config.clone();
    config.security_groups = vec!["nope".into()];
    let error = lookups::resolve(&world.clients, "production", &config, &services)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AwsError::SecurityGroupNotFound { .. }),
        "{error}"
    );
    use crate::diagnostic::Diagnose;
    assert!(error.help().is_some());
    let calls = world.counter.snapshot();
    assert!(
        calls
            .keys()
            .all(|op| op.contains(".Describe") || op.contains("Register") || op.contains("Create")),
        "{calls:?}"
    );
}

/// The API calls of one service's rollout, by operation, printed for the issue notes (run with
/// `--nocapture`): blue/green with cleanup, and a 10/50/100 canary. Lookups are counted apart:
/// once per run, not per service. moto's instances are healthy at once; on AWS each 5 s of
/// boot time adds one DescribeAutoScalingGroups (and every fourth poll a
/// DescribeScalingActivities) per wait.
#[tokio::test]
async fn api_calls_per_service_rollout() {
    let world = World::new().await;
    world.counter.reset();
    let target = world.target().await;
    let lookups = world.counter.snapshot();
    eprintln!("lookups (once per run): {lookups:?}");
    let now = policy(Strategy::Bluegreen, &[100], 0);
    let canary = policy(Strategy::Canary, &[10, 50, 100], 0);
    let scenarios = [
        ("first release", &now, "v1"),
        ("blue/green v1 → v2 with cleanup", &now, "v2"),
        ("canary 10/50/100 v2 → v3 with cleanup", &canary, "v3"),
    ];
    for (name, policy, version) in scenarios {
        let before = world.counter.snapshot();
        let record = run(&world, &target, policy, deploy(&[("web", version)])).await;
        assert_eq!(record.outcome, Outcome::Succeeded, "{name}");
        let calls = world.counter.since(&before);
        let aws: u64 = calls
            .iter()
            .filter(|(op, _)| !op.starts_with("S3."))
            .map(|(_, n)| n)
            .sum();
        eprintln!(
            "{name}: {aws} AWS calls besides S3 state, {} in all",
            calls.values().sum::<u64>()
        );
        for (operation, count) in &calls {
            eprintln!("  {operation:<50} {count}");
        }
        if version != "v1" {
            assert_eq!(calls["AutoScaling.CreateAutoScalingGroup"], 1, "{name}");
            assert_eq!(calls["AutoScaling.DeleteAutoScalingGroup"], 1, "{name}");
        }
    }
}

#[tokio::test]
async fn a_group_slow_to_warm_up_is_waited_for() {
    let world = World::new().await;
    let target = world.target().await;
    world
        .faults
        .slow
        .lock()
        .unwrap()
        .insert("shop-production-web-v1".into(), 5);
    let provision = step(
        "web",
        Action::Provision {
            version: "v1".into(),
        },
    );
    world.ok(target.apply(&provision).await);
    assert_eq!(
        world.faults.slow.lock().unwrap()["shop-production-web-v1"],
        0
    );
    world.ok(target.verify("web", "v1").await);
}

#[tokio::test]
async fn a_failed_first_release_leaves_no_group_and_no_launch_template() {
    let world = World::new().await;
    let target = world.target().await;
    world.faults.sicken(
        "shop-production-web-v1",
        Some("The image id does not exist"),
    );
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let record = run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    assert!(
        matches!(record.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        record.outcome
    );
    assert!(world.group("web", "v1").await.is_none());
    let templates = world
        .clients
        .ec2
        .describe_launch_templates()
        .launch_template_names("shop-production-web")
        .send()
        .await;
    let left = templates.map_or(0, |t| t.launch_templates().len());
    assert_eq!(left, 0, "the template went with its only group");
}

#[tokio::test]
async fn a_canary_that_sickens_during_its_bake_is_rolled_back_to_the_old_group_at_full_size() {
    let world = World::new().await;
    let mut target = world.target().await;
    target.capacity.insert("web".into(), 4);
    let canary = RolloutPolicy {
        bake: Dur::secs(1),
        ..policy(Strategy::Canary, &[50, 100], 1800)
    };
    run(&world, &target, &canary, deploy(&[("web", "v1")])).await;
    // v2 falls ill as soon as it takes traffic: the bake's re-check must catch it.
    let attaching = world.faults.on("AttachLoadBalancerTargetGroups");
    let faults = world.faults.clone();
    let sicken = tokio::spawn(async move {
        attaching.notified().await;
        faults.sicken("shop-production-web-v2", None);
    });
    let record = run(&world, &target, &canary, deploy(&[("web", "v2")])).await;
    sicken.await.unwrap();
    let Outcome::RolledBack { reason } = &record.outcome else {
        panic!("expected a rollback, got {:?}", record.outcome);
    };
    assert!(reason.contains("Unhealthy"), "{reason}");
    let started: Vec<String> = record
        .journal
        .iter()
        .map(|e| format!("{} {:?}", e.step, e.event))
        .collect();
    assert!(
        record
            .plan
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Switch { percent: 50, .. })),
        "{started:?}"
    );
    let v1 = world.group("web", "v1").await.unwrap();
    assert_eq!(
        (v1.desired, v1.traffic, v1.target_groups.len()),
        (4, 100, 1)
    );
    assert!(world.group("web", "v2").await.is_none(), "no debris");
}

#[tokio::test]
async fn throttled_calls_are_retried_with_backoff_rather_than_failing_the_step() {
    let world = World::new().await;
    let target = world.target().await;
    world
        .faults
        .throttle
        .lock()
        .unwrap()
        .insert("DescribeAutoScalingGroups".into(), 2);
    let before = world.counter.snapshot();
    let provision = step(
        "worker",
        Action::Provision {
            version: "w1".into(),
        },
    );
    world.ok(target.apply(&provision).await);
    assert_eq!(
        world.faults.throttle.lock().unwrap()["DescribeAutoScalingGroups"],
        0
    );
    assert!(world.group("worker", "w1").await.is_some());
    let calls = world.counter.since(&before);
    assert_eq!(calls["AutoScaling.CreateAutoScalingGroup"], 1, "{calls:?}");
}

#[tokio::test]
async fn a_rollback_after_cleanup_provisions_the_retired_version_again() {
    let world = World::new().await;
    let target = world.target().await;
    let now = policy(Strategy::Bluegreen, &[100], 0);
    run(&world, &target, &now, deploy(&[("web", "v1")])).await;
    run(&world, &target, &now, deploy(&[("web", "v2")])).await;
    assert!(world.group("web", "v1").await.is_none(), "retired");
    let record = run(&world, &target, &now, Request::Rollback { to: None }).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(
        record.plan.phase(Phase::Provision).next().is_some(),
        "{}",
        record.plan
    );
    let v1 = world.group("web", "v1").await.expect("v1 again");
    assert_eq!((v1.traffic, v1.target_groups.len()), (100, 1));
    assert!(
        world.group("web", "v2").await.is_none(),
        "v2 retired in turn"
    );
}

#[tokio::test]
async fn a_failed_launch_of_long_ago_does_not_fail_a_switch_back_to_that_group() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    world.faults.stale.lock().unwrap().insert(
        "shop-production-web-v1".into(),
        "We currently do not have sufficient capacity in the Availability Zone".into(),
    );
    // Not ready at the first look, so the wait reads the group's scaling activities.
    world
        .faults
        .slow
        .lock()
        .unwrap()
        .insert("shop-production-web-v1".into(), 2);
    let record = run(&world, &target, &warm, Request::Rollback { to: None }).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert_eq!(world.group("web", "v1").await.unwrap().traffic, 100);
    assert_eq!(
        world.faults.slow.lock().unwrap()["shop-production-web-v1"],
        0,
        "it was waited for"
    );
}

mod flags;
mod gate;
mod iam;
mod ownership;
mod prewarm;
mod real_aws;
mod secrets;
mod tasks;

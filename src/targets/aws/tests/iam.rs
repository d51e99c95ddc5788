//! `manifests/aws-iam.json` against the calls Convoy really makes: every operation of a rollout —
//! first release with secrets, a failure rolled back, a release whose cleanup drains and retires
//! the old revision, a rollback that provisions it again — is an action the `deployer` policy
//! allows, and every call of the agent one the `instance` policy allows. (Resources and
//! conditions are IAM's to evaluate; the actions are what a missing line breaks.)

use std::collections::BTreeSet;

use super::*;
use crate::targets::aws::calls::CallCounter;

/// The actions the `Allow` statements of `manifests/aws-iam.json`'s `role` grant.
fn allowed(role: &str) -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/aws-iam.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let statements = manifest[role]["Statement"].as_array().unwrap().clone();
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::String(one) => vec![one.clone()],
            many => many
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// The IAM action of a counted call (`AutoScaling.CreateAutoScalingGroup`).
fn action(call: &str) -> String {
    let (service, operation) = call.split_once('.').unwrap();
    let prefix = match service {
        "AutoScaling" => "autoscaling",
        "EC2" => "ec2",
        "ElasticLoadBalancingv2" => "elasticloadbalancing",
        "SSM" => "ssm",
        "S3" => "s3",
        other => panic!("a call to {other}, which no policy knows"),
    };
    let operation = match operation {
        "ListObjectsV2" => "ListBucket",
        "HeadObject" => "GetObject",
        other => other,
    };
    format!("{prefix}:{operation}")
}

fn not_allowed(calls: &BTreeMap<String, u64>, role: &str) -> Vec<String> {
    let allowed = allowed(role);
    calls
        .keys()
        .map(|call| action(call))
        .filter(|a| !allowed.contains(a))
        .collect()
}

#[tokio::test]
async fn the_iam_policies_allow_every_call_of_a_rollout_and_of_the_agent() {
    let world = World::new().await;
    let mut target = world.target().await;
    for revision in ["v1", "v2"] {
        let secrets = BTreeMap::from([("TOKEN".to_string(), "t0k3n".to_string())]);
        target.secrets.insert(revision.into(), secrets);
    }
    let before = world.counter.snapshot();
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let now = policy(Strategy::Bluegreen, &[100], 0);
    let both = deploy(&[("web", "v1"), ("worker", "w1")]);
    assert_eq!(
        run(&world, &target, &warm, both).await.outcome,
        Outcome::Succeeded
    );
    world.faults.sicken("shop-production-web-v2", None);
    let failed = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    assert!(matches!(failed.outcome, Outcome::RolledBack { .. }));
    world.faults.sick.lock().unwrap().clear();
    world
        .faults
        .draining
        .lock()
        .unwrap()
        .insert("shop-production-web-v1".into(), 2);
    let next = run(&world, &target, &now, deploy(&[("web", "v2")])).await;
    assert_eq!(next.outcome, Outcome::Succeeded, "{:?}", next.failure);
    let back = run(&world, &target, &now, Request::Rollback { to: None }).await;
    assert_eq!(back.outcome, Outcome::Succeeded, "{:?}", back.failure);

    let calls = world.counter.since(&before);
    // Not vacuous: the rollout created, changed and deleted groups, templates and secrets.
    for call in [
        "AutoScaling.CreateAutoScalingGroup",
        "AutoScaling.DeleteAutoScalingGroup",
        "AutoScaling.DetachLoadBalancerTargetGroups",
        "EC2.CreateLaunchTemplate",
        "EC2.CreateLaunchTemplateVersion",
        "EC2.DeleteLaunchTemplateVersions",
        "ElasticLoadBalancingv2.DescribeTargetGroupAttributes",
        "SSM.PutParameter",
        "SSM.DeleteParameters",
        "S3.PutObject",
    ] {
        assert!(calls.contains_key(call), "{call} not made: {calls:?}");
    }
    assert_eq!(not_allowed(&calls, "deployer"), Vec::<String>::new());

    // The agent: its reports (tag and CompleteLifecycleAction) and its read of the secrets.
    let reading = CallCounter::default();
    let agent = Clients::new(
        &world.moto.sdk_config(REGION),
        &[SharedInterceptor::new(reading.clone())],
    );
    let path = names::parameter_path("shop", "production", "web", "v1");
    let secrets = world.ok(crate::targets::aws::ssm::read_secrets(&agent.ssm, &path).await);
    assert_eq!(secrets["TOKEN"], "t0k3n");
    let mut calls = world.agent.calls.snapshot();
    calls.extend(reading.snapshot());
    for call in [
        "AutoScaling.CompleteLifecycleAction",
        "EC2.CreateTags",
        "SSM.GetParametersByPath",
    ] {
        assert!(calls.contains_key(call), "{call} not made: {calls:?}");
    }
    let instance = allowed("instance");
    assert!(
        instance.contains("s3:GetObject"),
        "the agent fetches artifacts"
    );
    assert_eq!(not_allowed(&calls, "instance"), Vec::<String>::new());
    // Nothing of the deployer's changes is the instance's.
    assert!(
        !instance
            .iter()
            .any(|a| a.contains("Put") || a.contains("Delete"))
    );
}

#[tokio::test]
async fn the_iam_policies_allow_release_tasks_flags_and_the_agents_flag_copy() {
    use crate::execute::flags::{FlagAuthor, FlagEdit, FlagStore};
    use crate::targets::aws::flag_parameter::{SsmFlags, sync_to_file};
    let world = World::new().await;
    let target = world.target().await;
    let before = world.counter.snapshot();
    let now = policy(Strategy::Bluegreen, &[100], 0);
    let task = crate::config::Task {
        command: "bin/migrate".to_string(),
        when: crate::config::TaskWhen::BeforeSwitch,
        timeout: Dur::secs(20),
        maintenance: false,
    };
    let tasks = [("web".to_string(), [("migrate".to_string(), task)].into())].into();
    let record = run_with(&world, &target, &now, deploy(&[("web", "v1")]), tasks).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let parameter = names::flags_parameter("shop", "production");
    let flags = SsmFlags::new(
        world.clients.ssm.clone(),
        parameter.clone(),
        world.location(),
    );
    let author = FlagAuthor {
        who: "alice@laptop".to_string(),
        at: jiff::Timestamp::now(),
        release: None,
    };
    let edit = FlagEdit::Set {
        key: "checkout".to_string(),
        value: "new".to_string(),
    };
    world.ok(flags.write(0, &[edit], &author).await);
    world.ok(flags.history(10).await);
    let calls = world.counter.since(&before);
    for call in [
        "SSM.SendCommand",
        "SSM.GetCommandInvocation",
        "SSM.ListCommands",
        "SSM.GetParameter",
        "SSM.PutParameter",
        "S3.DeleteObject",
    ] {
        assert!(calls.contains_key(call), "{call} not made: {calls:?}");
    }
    assert_eq!(not_allowed(&calls, "deployer"), Vec::<String>::new());

    // The agent's copy of the flags (at launch, then from the timer).
    let reading = CallCounter::default();
    let agent = Clients::new(
        &world.moto.sdk_config(REGION),
        &[SharedInterceptor::new(reading.clone())],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    world.ok(sync_to_file(&agent.ssm, &parameter, &file).await);
    let calls = reading.snapshot();
    assert!(calls.contains_key("SSM.GetParameter"), "{calls:?}");
    assert_eq!(not_allowed(&calls, "instance"), Vec::<String>::new());
}

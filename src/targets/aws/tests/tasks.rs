//! Release tasks through SSM Run Command against moto: sent to an instance of the new group,
//! followed by GetCommandInvocation, not sent again once it succeeded. moto reports every
//! command Success without running it, so failures come from `Faults::invocation`.

use super::*;
use crate::config::{Task, TaskWhen};

type Tasks = BTreeMap<String, BTreeMap<String, Task>>;

fn migrate(timeout: u64) -> Tasks {
    let task = Task {
        command: "bin/migrate --to latest".to_string(),
        when: TaskWhen::BeforeSwitch,
        timeout: Dur::secs(timeout),
        maintenance: false,
    };
    [("web".to_string(), [("migrate".to_string(), task)].into())].into()
}

async fn commands(world: &World) -> Vec<aws_sdk_ssm::types::Command> {
    let listed = world.clients.ssm.list_commands().send().await;
    world.ok(listed).commands.unwrap_or_default()
}

fn script_of(command: &aws_sdk_ssm::types::Command) -> String {
    let parameters = command.parameters().expect("parameters");
    parameters["commands"].join("\n")
}

#[tokio::test]
async fn a_before_switch_task_runs_through_ssm_on_an_instance_of_the_new_group() {
    let world = World::new().await;
    let target = world.target().await;
    let bluegreen = policy(Strategy::Bluegreen, &[100], 1800);
    let first = run(&world, &target, &bluegreen, deploy(&[("web", "v1")])).await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    let before = world.counter.snapshot();
    let release = deploy(&[("web", "v2")]);
    let record = run_with(&world, &target, &bluegreen, release, migrate(20)).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);

    let sent = commands(&world).await;
    assert_eq!(sent.len(), 1, "one task, one command: {sent:?}");
    let command = &sent[0];
    let comment = format!(
        "convoy:shop/production/release-{}/web/migrate",
        record.number
    );
    assert_eq!(command.comment(), Some(comment.as_str()));
    assert_eq!(command.document_name(), Some("AWS-RunShellScript"));
    // moto replaces a group's instances when it is resized, so the instance is known by its
    // tags (the group's, propagated at launch) rather than by the group's members now.
    let instance = command.instance_ids()[0].clone();
    let described = world
        .clients
        .ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await;
    let tags: BTreeMap<String, String> = world
        .ok(described)
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .map(|t| {
            let text = |v: Option<&str>| v.unwrap_or_default().to_string();
            (text(t.key()), text(t.value()))
        })
        .collect();
    assert_eq!(
        tags.get("aws:autoscaling:groupName").map(String::as_str),
        Some("shop-production-web-v2"),
        "{instance}: {tags:?}"
    );
    assert_eq!(tags.get(names::TAG_VERSION).map(String::as_str), Some("v2"));
    assert_eq!(
        tags.get(names::TAG_ENV).map(String::as_str),
        Some("production")
    );
    let script = script_of(command);
    assert!(script.starts_with("convoy host task "), "{script}");
    assert!(
        script.contains("--command 'bin/migrate --to latest' -- 'web' 'v2' 'migrate'"),
        "{script}"
    );
    let calls = world.counter.since(&before);
    for call in [
        "SSM.SendCommand",
        "SSM.GetCommandInvocation",
        "SSM.ListCommands",
    ] {
        assert!(calls.contains_key(call), "{call} not made: {calls:?}");
    }
    // Before the switch: the task's journal entry comes before the first switch's.
    let order: Vec<String> = record
        .plan
        .steps
        .iter()
        .map(|s| s.action.to_string())
        .collect();
    let task_at = order.iter().position(|a| a.starts_with("task migrate"));
    let switch_at = order.iter().position(|a| a.starts_with("switch"));
    assert!(task_at < switch_at, "{order:?}");
}

#[tokio::test]
async fn a_task_that_already_succeeded_is_not_sent_again() {
    let world = World::new().await;
    let target = world.target().await;
    let bluegreen = policy(Strategy::Bluegreen, &[100], 0);
    let first = run(&world, &target, &bluegreen, deploy(&[("web", "v1")])).await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    let mut step = step(
        "web",
        Action::Task {
            task: "migrate".into(),
            version: "v1".into(),
            command: "bin/migrate".into(),
            when: TaskWhen::BeforeSwitch,
            maintenance: false,
        },
    );
    step.phase = Phase::Provision;
    // Release 2 was killed after the task's command was sent (its record is unfinished).
    let releases = S3Releases::new(world.location());
    let mut killed = first.clone();
    killed.number = first.number + 1;
    killed.outcome = Outcome::InProgress;
    killed.finished = None;
    world.ok(releases.save(&killed).await);
    world.ok(target.apply(&step).await);
    let sent = commands(&world).await;
    assert_eq!(sent.len(), 1);
    let comment = format!(
        "convoy:shop/production/release-{}/web/migrate",
        killed.number
    );
    assert_eq!(sent[0].comment(), Some(comment.as_str()));
    // The resumed release applies the step again: the command's comment finds it.
    world.ok(target.apply(&step).await);
    assert_eq!(commands(&world).await.len(), 1, "the task was sent twice");
    // Outside a release (a task run by hand) every run is a command of its own.
    killed.outcome = Outcome::Succeeded;
    world.ok(releases.save(&killed).await);
    world.ok(target.apply(&step).await);
    assert_eq!(commands(&world).await.len(), 2);
}

#[tokio::test]
async fn a_failing_task_rolls_the_release_back_with_its_status_code_and_masked_tail() {
    let world = World::new().await;
    let mut target = world.target().await;
    let secret = "hunter2-db-password";
    let secrets = BTreeMap::from([("DB_PASSWORD".to_string(), secret.to_string())]);
    target.secrets.insert("v2".into(), secrets);
    let bluegreen = policy(Strategy::Bluegreen, &[100], 0);
    let first = run(&world, &target, &bluegreen, deploy(&[("web", "v1")])).await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    *world.faults.invocation.lock().unwrap() = Some((
        "Failed".into(),
        3,
        format!("migrating users\nERROR: login failed for {secret}"),
    ));
    let release = deploy(&[("web", "v2")]);
    let record = run_with(&world, &target, &bluegreen, release, migrate(20)).await;
    assert!(
        matches!(record.outcome, Outcome::RolledBack { .. }),
        "{:?}",
        record.outcome
    );
    let failure = record.failure.unwrap_or_default();
    assert!(failure.contains("task `migrate`"), "{failure}");
    assert!(failure.contains("Failed with exit code 3"), "{failure}");
    assert!(failure.contains("ERROR: login failed for"), "{failure}");
    assert!(!failure.contains(secret), "the secret leaked: {failure}");
    // The old revision serves on; the new group is gone.
    assert!(world.group("web", "v2").await.is_none());
    let old = world.group("web", "v1").await.expect("the old group");
    assert_eq!(old.traffic, 100);
}

#[tokio::test]
async fn an_invocation_that_never_ends_fails_the_task_within_its_budget() {
    let world = World::new().await;
    let target = world.target().await;
    let bluegreen = policy(Strategy::Bluegreen, &[100], 0);
    let first = run(&world, &target, &bluegreen, deploy(&[("web", "v1")])).await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    // The instance never reports: its agent is gone, say.
    *world.faults.invocation.lock().unwrap() = Some(("Pending".into(), -1, String::new()));
    let release = deploy(&[("web", "v2")]);
    let record = run_with(&world, &target, &bluegreen, release, migrate(3)).await;
    assert!(matches!(record.outcome, Outcome::RolledBack { .. }));
    let failure = record.failure.unwrap_or_default();
    assert!(failure.contains("no result after"), "{failure}");
    assert!(failure.contains("Pending"), "{failure}");
    assert!(world.group("web", "v2").await.is_none());
}

#[tokio::test]
async fn a_maintenance_task_turns_maintenance_on_in_ssm_while_it_runs_and_off_after() {
    use crate::execute::flags::{FlagStore, MAINTENANCE, READ_ONLY};
    let world = World::new().await;
    let target = world.target().await;
    let bluegreen = policy(Strategy::Bluegreen, &[100], 0);
    let first = run(&world, &target, &bluegreen, deploy(&[("web", "v1")])).await;
    assert_eq!(first.outcome, Outcome::Succeeded);
    let parameter = names::flags_parameter("shop", "production");
    let store = crate::targets::aws::flag_parameter::SsmFlags::new(
        world.clients.ssm.clone(),
        parameter,
        world.location(),
    );
    let flags: Arc<dyn FlagStore> = Arc::new(store);
    let mut tasks = migrate(20);
    for task in tasks.values_mut().flat_map(|t| t.values_mut()) {
        task.maintenance = true;
    }
    let release = deploy(&[("web", "v2")]);
    let record = run_flagged(
        &world,
        &target,
        &bluegreen,
        release,
        tasks,
        Some(flags.clone()),
    )
    .await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let history = world.ok(flags.history(10).await);
    let seen: Vec<_> = history
        .iter()
        .map(|c| (c.key.as_str(), c.new.as_deref(), c.release))
        .collect();
    let release = Some(record.number);
    assert_eq!(
        seen,
        [
            (MAINTENANCE, Some(READ_ONLY), release),
            (MAINTENANCE, None, release)
        ]
    );
    assert!(world.ok(flags.read().await).flags.is_empty());
}

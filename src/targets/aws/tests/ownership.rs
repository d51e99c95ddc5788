//! Two environments of one project, and two projects, in one account and region: whatever one
//! of them does — deploy, fail, roll back, collide — never changes another's groups, launch
//! templates or parameters. (A staging rollback once force-deleted production's live group.)

use super::*;

/// Everything an environment owns, as comparable text: its groups (size, target groups,
/// traffic), its launch templates' versions, and its parameters with their values.
async fn owned(world: &World, project: &str, environment: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut groups = groups::environment_groups(&world.clients, project, environment)
        .await
        .unwrap();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in groups {
        found.push(format!(
            "group {} {}/{}/{} tg={:?} traffic={} release={:?}",
            g.name, g.min, g.desired, g.max, g.target_groups, g.traffic, g.release
        ));
    }
    for service in ["web", "worker"] {
        let template = names::template_name(project, environment, service);
        if let Ok(versions) = world
            .clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_name(&template)
            .send()
            .await
        {
            for v in versions.launch_template_versions() {
                found.push(format!(
                    "template {template} v{:?} {:?}",
                    v.version_number, v.version_description
                ));
            }
        }
    }
    let parameters = world
        .clients
        .ssm
        .get_parameters_by_path()
        .path(format!("/convoy/{project}/{environment}"))
        .recursive(true)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    for p in parameters.parameters() {
        found.push(format!(
            "parameter {:?} = {:?} ({:?})",
            p.name, p.value, p.r#type
        ));
    }
    found
}

fn with_secret(mut target: AwsTarget, value: &str) -> AwsTarget {
    let secrets = BTreeMap::from([("DATABASE_PASSWORD".to_string(), value.to_string())]);
    // By revision id: each of web's revisions the tests deploy has the secret.
    for revision in ["v1", "v2"] {
        target.secrets.insert(revision.into(), secrets.clone());
    }
    target
}

fn rolled_back(record: &crate::execute::ReleaseRecord) -> &str {
    match &record.outcome {
        Outcome::RolledBack { reason } => reason,
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[tokio::test]
async fn failed_and_rolled_back_releases_of_one_environment_never_touch_another() {
    let world = World::new().await;
    let production = with_secret(world.target_of("shop", "production").await, "prod-pw");
    let staging = with_secret(world.target_of("shop", "staging").await, "staging-pw");
    let other = with_secret(world.target_of("tickets", "production").await, "other-pw");
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let both = [("web", "v1"), ("worker", "w1")];
    for target in [&production, &other] {
        let record = run(&world, target, &warm, deploy(&both)).await;
        assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    }
    let production_before = owned(&world, "shop", "production").await;
    let other_before = owned(&world, "tickets", "production").await;
    assert!(
        production_before
            .iter()
            .any(|l| l.contains("shop-production-web-v1") && l.contains("traffic=100")),
        "{production_before:#?}"
    );
    assert!(
        production_before.iter().any(|l| l.contains("prod-pw")),
        "{production_before:#?}"
    );

    // Staging deploys the very versions production runs: its first release fails and is
    // rolled back, a later one succeeds, the next fails and is rolled back, then an operator
    // rolls it back on purpose.
    world
        .faults
        .sicken("shop-staging-web-v1", Some("Your quota allows for 0 more"));
    let failed = run(&world, &staging, &warm, deploy(&both)).await;
    assert!(rolled_back(&failed).contains("quota"));
    world.faults.sick.lock().unwrap().clear();
    let ok = run(&world, &staging, &warm, deploy(&both)).await;
    assert_eq!(ok.outcome, Outcome::Succeeded, "{:?}", ok.failure);
    world.faults.sicken("shop-staging-web-v2", None);
    let failed = run(
        &world,
        &staging,
        &warm,
        deploy(&[("web", "v2"), ("worker", "w2")]),
    )
    .await;
    rolled_back(&failed);
    world.faults.sick.lock().unwrap().clear();
    let ok = run(
        &world,
        &staging,
        &warm,
        deploy(&[("web", "v2"), ("worker", "w2")]),
    )
    .await;
    assert_eq!(ok.outcome, Outcome::Succeeded, "{:?}", ok.failure);
    let back = run(&world, &staging, &warm, Request::Rollback { to: None }).await;
    assert_eq!(back.outcome, Outcome::Succeeded, "{:?}", back.failure);
    // The other project fails and rolls back too.
    world.faults.sicken("tickets-production-web-v2", None);
    let failed = run(
        &world,
        &other,
        &warm,
        deploy(&[("web", "v2"), ("worker", "w1")]),
    )
    .await;
    rolled_back(&failed);

    assert_eq!(owned(&world, "shop", "production").await, production_before);
    let other_after = owned(&world, "tickets", "production").await;
    assert_eq!(other_after, other_before);
    // Staging's own state is its own: its secret under its own path, its groups tagged so.
    let staging_now = owned(&world, "shop", "staging").await;
    assert!(
        staging_now.iter().any(|l| l.contains("staging-pw"))
            && !staging_now.iter().any(|l| l.contains("prod-pw")),
        "{staging_now:#?}"
    );
}

/// `a-b` + `c` and `a` + `b-c` join into the same names: the second is refused before it
/// changes anything, and neither its rollback nor a removal of "its" group touches the first.
#[tokio::test]
async fn a_name_collision_is_an_error_before_any_change_never_a_reason_to_delete() {
    let world = World::new().await;
    let first = world.target_of("a", "b-c").await;
    let second = world.target_of("a-b", "c").await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let record = run(&world, &first, &warm, deploy(&[("web", "v1")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert_eq!(
        names::group_name("a", "b-c", "web", "v1"),
        names::group_name("a-b", "c", "web", "v1")
    );
    let before = owned(&world, "a", "b-c").await;
    let calls = world.counter.snapshot();

    let graph = graph();
    let location = world.location_of("c");
    let releases = S3Releases::new(location.clone());
    let reporter = RecordingReporter::default();
    let session = Session {
        environment: "c",
        policy: &warm,
        graph: &graph,
        target: &second,
        releases: &releases,
        lock: Arc::new(S3Lock::new(location)),
        clock: Arc::new(SystemClock),
        reporter: &reporter,
        holder: holder(),
        abort: Abort::never(),
        revisions: &BTreeMap::new(),
        tasks: BTreeMap::new(),
        flags: None,
    };
    let Err(error) = session.run(deploy(&[("web", "v1")])).await else {
        panic!("the colliding deploy ran");
    };
    let text = error.to_string();
    assert!(text.contains("refused before any change"), "{text}");
    assert!(text.contains("a-b-c-web-v1"), "{text}");
    assert!(
        text.contains("project `a`, environment `b-c`"),
        "names the owner: {text}"
    );
    use crate::diagnostic::Diagnose;
    assert!(error.help().is_some());
    assert!(
        releases.latest().await.unwrap().is_none(),
        "nothing recorded"
    );
    let mutations: Vec<String> = world
        .counter
        .since(&calls)
        .into_keys()
        .filter(|op| !op.contains(".Describe") && !op.contains(".Get") && !op.contains(".List"))
        .collect();
    assert!(
        mutations.iter().all(|op| op.starts_with("S3.")),
        "only the lock was taken and given back: {mutations:?}"
    );

    // A removal or retirement by the second environment finds nothing of its own to delete.
    for action in [
        Action::Remove {
            version: "v1".into(),
        },
        Action::Retire {
            version: "v1".into(),
        },
    ] {
        world.ok(second.apply(&step("web", action)).await);
    }
    assert_eq!(owned(&world, "a", "b-c").await, before);
}

/// A removal takes only what the release created; a retirement never takes a group that
/// serves; a failed first provision leaves no warning about a template it never made.
#[tokio::test]
async fn removals_take_only_what_this_release_created() {
    let world = World::new().await;
    let target = world.target().await;
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let record = run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    // No release is unfinished, so this removal is nobody's: v1 (release 1's) stays.
    world.ok(target
        .apply(&step(
            "web",
            Action::Remove {
                version: "v1".into(),
            },
        ))
        .await);
    let v1 = world.group("web", "v1").await.expect("kept");
    assert_eq!((v1.traffic, v1.target_groups.len()), (100, 1));
    // Retiring the live group is refused as well.
    world.ok(target
        .apply(&step(
            "web",
            Action::Retire {
                version: "v1".into(),
            },
        ))
        .await);
    assert!(world.group("web", "v1").await.is_some());
}

/// The rollback of a failed first provision once warned `MissingParameter … launch template ID
/// or launch template name` (it deleted a template that was never made, by a name moto cannot
/// find): now an absent template is simply done, and nothing is kept or warned about.
#[tokio::test]
async fn a_failed_first_provision_rolls_back_without_a_missing_parameter_warning() {
    let world = World::new().await;
    let mut target = world.target().await;
    let reporter = Arc::new(RecordingReporter::default());
    target.reporter = reporter.clone();
    // The group's creation is refused outright: the template version is made, the group not.
    world
        .faults
        .not_found
        .lock()
        .unwrap()
        .insert("CreateAutoScalingGroup".into(), u32::MAX);
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    let record = run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    rolled_back(&record);
    let warnings: Vec<String> = reporter
        .events()
        .into_iter()
        .filter_map(|e| match e {
            crate::execute::Event::Warning { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    let left = world
        .clients
        .ec2
        .describe_launch_templates()
        .launch_template_names("shop-production-web")
        .send()
        .await
        .map_or(0, |t| t.launch_templates().len());
    assert_eq!(left, 0, "no template left behind");
}

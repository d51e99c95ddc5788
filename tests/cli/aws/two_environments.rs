//! The report behind issue 16, end to end: `examples/ticketshop` plus a `staging-ec2` copied from
//! `production-ec2`, in one account and region. A staging deploy once collided with production's
//! group names, and its automatic rollback force-deleted production's live payments group (and
//! warned `MissingParameter` about a launch template). Now each environment's names are its own,
//! a failed release of either is rolled back, and neither ever changes the other's groups,
//! launch templates or parameters.

use std::sync::{Arc, Mutex};

use super::*;

/// Everything of `environment` in the account, as comparable lines: groups (size, target
/// groups, tags), launch-template versions, SSM parameters with their values.
async fn owned(moto: &Moto, environment: &str) -> Vec<String> {
    let config = moto.sdk_config(REGION);
    let mut found = Vec::new();
    let groups = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    for group in groups.auto_scaling_groups() {
        let mut tags: Vec<String> = group
            .tags()
            .iter()
            .map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap()))
            .collect();
        tags.sort();
        if !tags.contains(&format!("convoy:env={environment}")) {
            continue;
        }
        found.push(format!(
            "group {} {}/{}/{} {:?} {tags:?}",
            group.auto_scaling_group_name().unwrap(),
            group.min_size().unwrap(),
            group.desired_capacity().unwrap(),
            group.max_size().unwrap(),
            group.target_group_arns(),
        ));
    }
    let ec2 = aws_sdk_ec2::Client::new(&config);
    for service in ["payments", "api", "web", "worker"] {
        let name = format!("ticketshop-{environment}-{service}");
        if let Ok(versions) = ec2
            .describe_launch_template_versions()
            .launch_template_name(&name)
            .send()
            .await
        {
            for v in versions.launch_template_versions() {
                found.push(format!(
                    "template {name} {:?} {:?}",
                    v.version_number(),
                    v.version_description()
                ));
            }
        }
    }
    let parameters = aws_sdk_ssm::Client::new(&config)
        .get_parameters_by_path()
        .path(format!("/convoy/ticketshop/{environment}"))
        .recursive(true)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    for p in parameters.parameters() {
        found.push(format!("parameter {:?} = {:?}", p.name(), p.value()));
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_releases_of_staging_ec2_and_production_ec2_never_touch_each_other() {
    let moto = Moto::start().await;
    drop(prepare(&moto).await); // the operator's resources; the agent below decides per group
    let failing: Arc<Mutex<Option<String>>> = Arc::default();
    let abandons = failing.clone();
    let _agent = StandInAgent::start(&moto, REGION, move |group| {
        match abandons.lock().unwrap().as_deref() {
            Some(prefix) if group.starts_with(prefix) => {
                Report::Abandon("bin/prepare failed with exit code 1".into())
            }
            _ => Report::Pass,
        }
    });
    let dir = example_repo();
    let config = std::fs::read_to_string(dir.path().join("convoy.yaml")).unwrap();
    let production = config
        .split("  production-ec2:\n")
        .nth(1)
        .expect("production-ec2 in the example")
        .replace("    protected: true\n", "");
    std::fs::write(
        dir.path().join("convoy.yaml"),
        format!("{config}  staging-ec2:\n{production}"),
    )
    .unwrap();
    std::fs::copy(
        dir.path().join("values/production-ec2.yaml"),
        dir.path().join("values/staging-ec2.yaml"),
    )
    .unwrap();
    commit_all(dir.path(), "staging-ec2, copied from production-ec2");

    let ran = convoy(&moto, dir)
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .stdout_has("release 1 of production-ec2 succeeded")
        .run();
    let production_before = owned(&moto, "production-ec2").await;
    assert!(
        production_before
            .iter()
            .any(|l| l.starts_with("group ticketshop-production-ec2-payments-")),
        "{production_before:#?}"
    );

    // Staging's first release fails at payments, the first service, and is rolled back.
    *failing.lock().unwrap() = Some("ticketshop-staging-ec2-payments-".into());
    let ran = convoy(&moto, ran.dir)
        .args(["deploy", "--env", "staging-ec2", "--yes"])
        .status(1)
        .run();
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(output.contains("the agent abandoned"), "{output}");
    assert!(!output.contains("MissingParameter"), "{output}");
    assert!(!output.contains("was kept"), "{output}");
    assert_eq!(owned(&moto, "production-ec2").await, production_before);
    assert_eq!(
        owned(&moto, "staging-ec2").await,
        Vec::<String>::new(),
        "a failed first release leaves nothing behind"
    );

    // Then it succeeds, beside production.
    *failing.lock().unwrap() = None;
    let ran = convoy(&moto, ran.dir)
        .args(["deploy", "--env", "staging-ec2", "--yes"])
        .stdout_has("release 2 of staging-ec2 succeeded")
        .run();
    assert_eq!(owned(&moto, "production-ec2").await, production_before);
    let staging_before = owned(&moto, "staging-ec2").await;

    // A production release of a changed api fails and is rolled back: staging is untouched.
    edit(ran.dir.path(), "services/api/src/README", "api, faster.\n");
    *failing.lock().unwrap() = Some("ticketshop-production-ec2-api-".into());
    let ran = convoy(&moto, ran.dir)
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .status(1)
        .run();
    assert_eq!(owned(&moto, "staging-ec2").await, staging_before);
    assert_eq!(owned(&moto, "production-ec2").await, production_before);
    // And the same change to staging fails too, leaving production as it was.
    *failing.lock().unwrap() = Some("ticketshop-staging-ec2-api-".into());
    let _ran = convoy(&moto, ran.dir)
        .args(["deploy", "--env", "staging-ec2", "--yes"])
        .status(1)
        .run();
    assert_eq!(owned(&moto, "production-ec2").await, production_before);
    assert_eq!(owned(&moto, "staging-ec2").await, staging_before);
}

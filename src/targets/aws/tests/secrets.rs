//! Secrets reach instances through SSM Parameter Store: SecureStrings under the revision's path,
//! tagged with their owner, never in user data or tags; gone with the revision's group, and
//! gone with a provision that failed.

use super::*;

/// A script that names the parameters' path, as the rendered user data does.
struct PathScript;

#[async_trait::async_trait]
impl UserData for PathScript {
    async fn user_data(&self, service: &str, version: &str, _: u64) -> Result<String, String> {
        let path = names::parameter_path("shop", "production", service, version);
        Ok(format!(
            "#!/bin/sh\nexec convoy host deploy --secrets '{path}' {service} {version}\n"
        ))
    }
}

async fn parameters(world: &World, path: &str) -> BTreeMap<String, (String, String)> {
    let output = world.ok(world
        .clients
        .ssm
        .get_parameters_by_path()
        .path(path)
        .with_decryption(true)
        .send()
        .await);
    output
        .parameters()
        .iter()
        .map(|p| {
            let kind = p
                .r#type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default();
            let name = p.name().unwrap_or_default().to_string();
            (name, (p.value().unwrap_or_default().to_string(), kind))
        })
        .collect()
}

async fn user_data_of(world: &World, service: &str, version: i64) -> String {
    let versions = world.ok(world
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_name(format!("shop-production-{service}"))
        .versions(version.to_string())
        .send()
        .await);
    let data = versions.launch_template_versions()[0]
        .launch_template_data()
        .and_then(|d| d.user_data())
        .unwrap()
        .to_string();
    String::from_utf8(aws_smithy_types::base64::decode(data).unwrap()).unwrap()
}

#[tokio::test]
async fn secrets_are_secure_strings_in_ssm_and_never_in_user_data_and_go_with_their_revision() {
    let world = World::new().await;
    let mut target = world.target().await;
    target.user_data = Arc::new(PathScript);
    let secret = "pa$$word with 'quotes'\nand a newline";
    let secrets = BTreeMap::from([
        ("DATABASE_PASSWORD".to_string(), secret.to_string()),
        ("PROVIDER_API_KEY".to_string(), "key-123".to_string()),
    ]);
    for revision in ["v1", "v2"] {
        target.secrets.insert(revision.into(), secrets.clone());
    }
    let now = policy(Strategy::Bluegreen, &[100], 0);
    let record = run(&world, &target, &now, deploy(&[("web", "v1")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    let path = "/convoy/shop/production/web/v1";
    let stored = parameters(&world, path).await;
    assert_eq!(
        stored[&format!("{path}/DATABASE_PASSWORD")],
        (secret.to_string(), "SecureString".to_string())
    );
    assert_eq!(stored.len(), 2);
    let tags = world.ok(world
        .clients
        .ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(format!("{path}/DATABASE_PASSWORD"))
        .send()
        .await);
    let tags: BTreeMap<&str, &str> = tags
        .tag_list()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert_eq!(
        (
            tags["convoy:project"],
            tags["convoy:env"],
            tags["convoy:version"]
        ),
        ("shop", "production", "v1")
    );
    // Only the path travels; nothing of the secret is in the template, the group or the record.
    let v1 = world.group("web", "v1").await.unwrap();
    let script = user_data_of(&world, "web", v1.template_version.unwrap()).await;
    assert!(script.contains(path), "{script}");
    assert!(
        !script.contains("pa$$word") && !script.contains("key-123"),
        "{script}"
    );
    let record_text = serde_json::to_string(&record).unwrap();
    assert!(!record_text.contains("pa$$word"), "{record_text}");

    // v2 brings its own; v1's go when v1 is retired (keep_warm 0).
    let record = run(&world, &target, &now, deploy(&[("web", "v2")])).await;
    assert_eq!(record.outcome, Outcome::Succeeded, "{:?}", record.failure);
    assert!(world.group("web", "v1").await.is_none());
    assert!(parameters(&world, path).await.is_empty(), "retired with v1");
    assert_eq!(
        parameters(&world, "/convoy/shop/production/web/v2")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_failed_provision_takes_its_secrets_with_it() {
    let world = World::new().await;
    let mut target = world.target().await;
    for revision in ["v1", "v2"] {
        let secrets = BTreeMap::from([("TOKEN".to_string(), "t0k3n".to_string())]);
        target.secrets.insert(revision.into(), secrets);
    }
    let warm = policy(Strategy::Bluegreen, &[100], 1800);
    run(&world, &target, &warm, deploy(&[("web", "v1")])).await;
    world.faults.sicken("shop-production-web-v2", None);
    let record = run(&world, &target, &warm, deploy(&[("web", "v2")])).await;
    assert!(matches!(record.outcome, Outcome::RolledBack { .. }));
    assert!(
        parameters(&world, "/convoy/shop/production/web/v2")
            .await
            .is_empty()
    );
    assert_eq!(
        parameters(&world, "/convoy/shop/production/web/v1")
            .await
            .len(),
        1,
        "the live revision's stay"
    );
}

#[tokio::test]
async fn a_secret_that_cannot_be_a_parameter_stops_the_provision_before_any_change() {
    let world = World::new().await;
    let mut target = world.target().await;
    target.secrets.insert(
        "w1".into(),
        BTreeMap::from([("EMPTY".to_string(), String::new())]),
    );
    let error = target
        .apply(&step(
            "worker",
            Action::Provision {
                version: "w1".into(),
            },
        ))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("secret `EMPTY`"), "{text}");
    use crate::diagnostic::Diagnose;
    assert!(error.help().is_some_and(|h| h.contains("4096")));
    assert!(world.group("worker", "w1").await.is_none());
}

//! The on-instance agent as user data runs it, against moto: `convoy host deploy` checks the
//! artifact's sha256 before unpacking, reads the revision's secrets from SSM into a 0600
//! environment file and the hooks' environment, and completes the launch hook — CONTINUE once
//! healthy, ABANDON with the reason (in its log and the instance's `convoy:health` tag)
//! otherwise. Auto Scaling calls go through a recorder, so the test sees the exact requests.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use super::*;

/// A pass-through to moto that keeps every request body it forwards.
async fn recorder(upstream: &str) -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, log) = (upstream.clone(), log.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 16384];
                let (head, length) = loop {
                    let n = client.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..n]);
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while request.len() < head + length {
                    let n = client.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&request[head..]).to_string();
                log.lock().unwrap().push(body);
                let Ok(mut moto) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut answer = Vec::new();
                if moto.write_all(&request).await.is_ok()
                    && moto.read_to_end(&mut answer).await.is_ok()
                {
                    let _ = client.write_all(&answer).await;
                }
                let _ = client.shutdown().await;
            });
        }
    });
    (endpoint, seen)
}

/// A group of three instances with Convoy's launch hook, as the deployer makes it.
async fn group_with_hook(moto: &Moto, name: &str) -> Vec<String> {
    let config = moto.sdk_config(REGION);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
        .build();
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data)
        .send()
        .await
        .unwrap();
    let subnet = ec2.describe_subnets().send().await.unwrap().subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let hook = aws_sdk_autoscaling::types::LifecycleHookSpecification::builder()
        .lifecycle_hook_name("convoy-launch")
        .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
        .heartbeat_timeout(600)
        .default_result("ABANDON")
        .build();
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(name)
                .version("1")
                .build(),
        )
        .min_size(3)
        .max_size(3)
        .desired_capacity(3)
        .vpc_zone_identifier(subnet)
        .lifecycle_hook_specification_list(hook)
        .send()
        .await
        .unwrap();
    let groups = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap();
    groups.auto_scaling_groups()[0]
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

/// `(state, convoy:health tag)` of an instance.
async fn instance(moto: &Moto, id: &str) -> (String, Option<String>) {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config(REGION));
    let found = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let instance = &found.reservations()[0].instances()[0];
    let state = instance.state().and_then(|s| s.name()).unwrap().as_str();
    let tag = instance
        .tags()
        .iter()
        .find(|t| t.key() == Some("convoy:health"))
        .and_then(|t| t.value())
        .map(str::to_string);
    (state.to_string(), tag)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_completes_the_launch_hook_only_when_the_revision_is_healthy() {
    let moto = Moto::start().await;
    let config = moto.sdk_config(REGION);
    aws_sdk_ec2::Client::new(&config)
        .register_image()
        .name("ticketshop-base-2026-11")
        .send()
        .await
        .unwrap();
    let group = "ticketshop-production-ec2-api-v1";
    let instances = group_with_hook(&moto, group).await;
    let secrets = "/convoy/ticketshop/production-ec2/api/v1";
    let password = "pa'ss\nword $(id)";
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(format!("{secrets}/DATABASE_PASSWORD"))
        .value(password)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    // An artifact of api, built into the example's file store.
    let built = convoy_test_support::cli::Test::in_dir(example_repo())
        .args(["--output", "json", "build", "api"])
        .run();
    let event: serde_json::Value =
        serde_json::from_str(built.stdout.lines().next().unwrap()).unwrap();
    let version = event["version"].as_str().unwrap().to_string();
    let dir = built.dir;
    let store = dir.path().join(".convoy/artifacts");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(store.join(format!("api/{version}/meta.json"))).unwrap(),
    )
    .unwrap();
    let sha256 = meta["sha256"].as_str().unwrap().to_string();
    let (autoscaling, requests) = recorder(&moto.endpoint).await;
    let config_env = aws_smithy_types::base64::encode(r#"{"LOG_LEVEL":"info"}"#);
    // The environment's flags, which the agent copies before it deploys.
    const FLAGS: &str = "/convoy/ticketshop/production-ec2/flags";
    aws_sdk_ssm::Client::new(&config)
        .put_parameter()
        .name(FLAGS)
        .value(r#"{"checkout":"new"}"#)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("the flags parameter");
    let agent = |instance: &str, sha256: &str, prepare: Option<&str>| {
        let root = dir.path().join(format!("root-{instance}"));
        let mut command = std::process::Command::new(convoy_test_support::cli::bin());
        command
            .args(["host", "--root"])
            .arg(&root)
            .args(["deploy", "--store"])
            .arg(format!("file://{}", store.display()))
            .args(["--sha256", sha256, "--region", REGION, "--secrets", secrets])
            .arg("--env-file")
            .arg(root.join("etc/api.env"))
            .args(["--env-base64", &config_env])
            .args(["--lifecycle-hook", "convoy-launch", "--group", group])
            .args(["--instance-id", instance])
            .args(["--flags", FLAGS]);
        if let Some(prepare) = prepare {
            command.args(["--prepare", prepare]);
        }
        command
            .args(["--", "api", &version])
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ENDPOINT_URL_AUTO_SCALING", &autoscaling)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env_remove("CONVOY_PROJECT")
            .current_dir(dir.path());
        let output = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text, root)
    };
    let completions = |instance: &str| -> Vec<String> {
        requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains("Action=CompleteLifecycleAction"))
            .filter(|r| r.contains(&format!("InstanceId={instance}")))
            .cloned()
            .collect()
    };

    // Healthy: the hooks saw the environment, the env file is root's alone, CONTINUE.
    let check = "test \"$DATABASE_PASSWORD\" = \"$(printf 'pa%sss\\nword $(id)' \"'\")\" && test \"$LOG_LEVEL\" = info && touch .prepared";
    let (code, text, root) = agent(&instances[0], &sha256, Some(check));
    assert_eq!(code, Some(0), "{text}");
    let sent = completions(&instances[0]);
    assert_eq!(sent.len(), 1, "{sent:?}");
    for field in [
        "LifecycleActionResult=CONTINUE",
        "LifecycleHookName=convoy-launch",
        &format!("AutoScalingGroupName={group}"),
    ] {
        assert!(sent[0].contains(field), "{field} in {}", sent[0]);
    }
    assert_eq!(
        instance(&moto, &instances[0]).await,
        ("running".to_string(), Some("passed".to_string()))
    );
    let env_file = root.join("etc/api.env");
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The flags were copied at launch, and the service's environment names their file.
    let flags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("flags.json")).unwrap()).unwrap();
    assert_eq!(flags, serde_json::json!({"checkout": "new"}));
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    let flags_line = format!("CONVOY_FLAGS_FILE='{}'", root.join("flags.json").display());
    assert!(env_text.contains(&flags_line), "{env_text}");
    assert!(
        env_text.starts_with("# convoy secrets: DATABASE_PASSWORD\n"),
        "{env_text}"
    );
    let sourced = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && printf '%s' \"$DATABASE_PASSWORD\"",
            env_file.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sourced.stdout), password);

    // prepare fails: ABANDON, the reason in the log and the tag, the secret masked in both.
    let failing = "echo \"cannot reach the database with $DATABASE_PASSWORD\"; exit 4";
    let (code, text, _) = agent(&instances[1], &sha256, Some(failing));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("abandoning the launch of {}", instances[1])),
        "{text}"
    );
    assert!(text.contains("exit code 4"), "{text}");
    assert!(!text.contains("pa'ss"), "the secret leaked: {text}");
    let sent = completions(&instances[1]);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].contains("LifecycleActionResult=ABANDON"),
        "{}",
        sent[0]
    );
    let (state, tag) = instance(&moto, &instances[1]).await;
    assert_eq!(state, "terminated", "AWS terminates an abandoned launch");
    let tag = tag.unwrap();
    assert!(
        tag.starts_with("failed: ") && tag.contains("exit code 4"),
        "{tag}"
    );
    assert!(!tag.contains("pa'ss"), "{tag}");

    // A tarball that is not the one deployed is refused before it is unpacked: ABANDON.
    let wrong = "0".repeat(64);
    let (code, text, root) = agent(&instances[2], &wrong, None);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains(&format!("expected sha256 {wrong}")), "{text}");
    assert!(
        !root.join("api/versions").join(&version).exists(),
        "nothing unpacked"
    );
    let sent = completions(&instances[2]);
    assert!(
        sent[0].contains("LifecycleActionResult=ABANDON"),
        "{}",
        sent[0]
    );
    let tag = instance(&moto, &instances[2]).await.1.unwrap();
    assert!(
        tag.contains("not the one the instance's user data names"),
        "{tag}"
    );
}

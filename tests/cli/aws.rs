//! End to end on the AWS target: `examples/ticketshop`'s `production-ec2` environment, unchanged,
//! deployed by the binary to moto's server on 127.0.0.1 (dummy credentials, `AWS_ENDPOINT_URL`,
//! and `CONVOY_ARTIFACT_STORE` pointing the project at a bucket there). Its AMI, target groups
//! and bucket are made here by name, as an operator would have them; ids are looked up. moto runs
//! no user data, so a stand-in agent reports each new instance to its launch hook.

use std::path::Path;

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};
use convoy_test_support::cli::{Test, commit_all, example_repo};
use convoy_test_support::moto::{Moto, Report, StandInAgent};

const REGION: &str = "eu-west-1";
const BUCKET: &str = "ticketshop-artifacts";
/// The secret `values/common.yaml` reads from the environment.
const DB_PASSWORD: &str = "s3cret-db-password";

/// What the operator made beforehand: the base AMI, one target group per public service, the
/// artifact bucket; and the stand-in agent that passes every instance.
async fn prepare(moto: &Moto) -> StandInAgent {
    let config = moto.sdk_config(REGION);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    ec2.register_image()
        .name("ticketshop-base-2026-11")
        .send()
        .await
        .expect("register the AMI");
    let vpc = ec2
        .describe_vpcs()
        .send()
        .await
        .expect("VPCs")
        .vpcs
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.is_default == Some(true))
        .and_then(|v| v.vpc_id)
        .expect("moto's default VPC");
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    for service in ["web", "api", "payments"] {
        let created = elb
            .create_target_group()
            .name(format!("ticketshop-{service}"))
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Instance)
            .send()
            .await
            .expect("a target group");
        assert!(created.target_groups()[0].target_group_arn.is_some());
    }
    moto.s3()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("the bucket");
    StandInAgent::start(moto, REGION, |_| Report::Pass)
}

fn convoy(moto: &Moto, dir: tempfile::TempDir) -> Test {
    Test::in_dir(dir)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        // Nothing but 127.0.0.1: no instance metadata, no profile files of the machine.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("CONVOY_ARTIFACT_STORE", &format!("s3://{BUCKET}/ci"))
        .env("TICKETSHOP_DB_PASSWORD", DB_PASSWORD)
        .env("PAYMENTS_API_KEY", "payments-api-key")
}

/// `(version, traffic, attached target groups, desired)` of each group of `service`.
async fn groups(moto: &Moto, service: &str) -> Vec<(String, String, usize, i32)> {
    let autoscaling = aws_sdk_autoscaling::Client::new(&moto.sdk_config(REGION));
    let output = autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("groups");
    let mut found: Vec<(String, String, usize, i32)> = output
        .auto_scaling_groups()
        .iter()
        .filter(|g| {
            g.tags()
                .iter()
                .any(|t| t.key() == Some("convoy:service") && t.value() == Some(service))
        })
        .map(|g| {
            let tag = |key: &str| {
                g.tags()
                    .iter()
                    .find(|t| t.key() == Some(key))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_string()
            };
            (
                tag("convoy:version"),
                tag("convoy:traffic"),
                g.target_group_arns().len(),
                g.desired_capacity().unwrap_or_default(),
            )
        })
        .collect();
    found.sort();
    found
}

fn edit(dir: &Path, file: &str, contents: &str) {
    std::fs::write(dir.join(file), contents).unwrap();
    commit_all(dir, &format!("edit {file}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_ticketshop_to_production_ec2_against_moto() {
    let moto = Moto::start().await;
    let _agent = prepare(&moto).await;
    let ran = convoy(&moto, example_repo())
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .run();
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        output.contains("release 1 of production-ec2 succeeded"),
        "{output}\nmoto's log:\n{}",
        moto.log_text()
    );
    for service in ["payments", "api", "web"] {
        let found = groups(&moto, service).await;
        assert_eq!(found.len(), 1, "{service}: {found:?}");
        let (_, traffic, attached, desired) = &found[0];
        assert_eq!(
            (traffic.as_str(), *attached, *desired),
            ("100", 1, 4),
            "{service}"
        );
    }
    // The instances' user data is the rendered template: it installs the artifact from the bucket.
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config(REGION));
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_name("ticketshop-production-ec2-web")
        .send()
        .await
        .expect("web's template");
    let data = versions.launch_template_versions()[0]
        .launch_template_data
        .clone()
        .and_then(|d| d.user_data)
        .expect("user data");
    let script = String::from_utf8(aws_smithy_types::base64::decode(data).unwrap()).unwrap();
    assert!(script.contains("exec convoy host deploy"), "{script}");
    assert!(script.contains(&format!("s3://{BUCKET}/ci")), "{script}");
    // The secret went to SSM as a SecureString, and only its path into the user data.
    assert!(!script.contains(DB_PASSWORD), "{script}");
    let path = script
        .split_whitespace()
        .find(|w| w.starts_with("'/convoy/ticketshop/production-ec2/web/"))
        .expect("the secrets' path")
        .trim_matches('\'');
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config(REGION));
    let stored = ssm
        .get_parameter()
        .name(format!("{path}/DATABASE_PASSWORD"))
        .with_decryption(true)
        .send()
        .await
        .expect("the secret in SSM");
    let parameter = stored.parameter().unwrap();
    assert_eq!(parameter.value(), Some(DB_PASSWORD));
    assert_eq!(parameter.r#type().map(|t| t.as_str()), Some("SecureString"));
    let worker = groups(&moto, "worker").await;
    assert_eq!(
        (worker[0].1.as_str(), worker[0].2),
        ("100", 0),
        "workers have no target group"
    );

    // A change to api only: a second group beside the first, which stays warm but detached.
    edit(ran.dir.path(), "services/api/src/README", "api, faster.\n");
    let plan = convoy(&moto, ran.dir)
        .args(["plan", "--env", "production-ec2"])
        .stdout_has("calls:")
        .stdout_has("AutoScaling.CreateAutoScalingGroup")
        .stdout_has("AutoScaling.DetachLoadBalancerTargetGroups (old group)")
        .run();
    let ran = convoy(&moto, plan.dir)
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .run();
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        output.contains("release 2 of production-ec2 succeeded"),
        "{output}"
    );
    let api = groups(&moto, "api").await;
    assert_eq!(api.len(), 2, "{api:?}");
    let attached: Vec<(&str, usize)> = api.iter().map(|g| (g.1.as_str(), g.2)).collect();
    assert!(
        attached.contains(&("100", 1)) && attached.contains(&("0", 0)),
        "{api:?}"
    );
    assert_eq!(
        groups(&moto, "web").await.len(),
        1,
        "unchanged services are left alone"
    );

    // Status needs no records: the groups' tags say what is live.
    let status = convoy(&moto, ran.dir)
        .args(["status", "--env", "production-ec2"])
        .run();
    let api_line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("api"))
        .unwrap_or_default();
    // `api <live> <warm> (<age> ago)`: the revisions, without the warm one's age.
    let revisions = api_line
        .split_whitespace()
        .filter(|t| !t.starts_with('(') && !t.ends_with(')'));
    assert_eq!(
        revisions.count(),
        3,
        "api live and one warm:\n{}",
        status.stdout
    );
    assert!(status.stdout.contains("lock: free"), "{}", status.stdout);

    // Rollback while warm: the old api group is re-attached, the new one detached; no new group.
    let ran = convoy(&moto, status.dir)
        .args(["rollback", "--env", "production-ec2", "--yes"])
        .run();
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        output.contains("release 3 of production-ec2 succeeded"),
        "{output}"
    );
    let after: Vec<(String, String, usize, i32)> = groups(&moto, "api").await;
    assert_eq!(after.len(), 2, "{after:?}");
    let first_api = api.iter().find(|g| g.1 == "0").unwrap().0.clone();
    let serving = after.iter().find(|g| g.1 == "100").unwrap();
    assert_eq!((&serving.0, serving.2), (&first_api, 1), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_lease_in_the_bucket_stops_a_deploy_with_exit_4_until_released() {
    let moto = Moto::start().await;
    let _agent = prepare(&moto).await;
    let now = jiff::Timestamp::now();
    let lease = serde_json::json!({
        "holder": {"user": "alice", "host": "ci-7", "ci": "github run 42", "pid": 4242},
        "token": "alice-1",
        "acquired": now.to_string(),
        "renewed": now.to_string(),
        "expires": now.checked_add(jiff::SignedDuration::from_secs(3600)).unwrap().to_string(),
    });
    moto.s3()
        .put_object()
        .bucket(BUCKET)
        .key("ci/.convoy/production-ec2/lock.json")
        .body(serde_json::to_vec(&lease).unwrap().into())
        .send()
        .await
        .expect("plant a lease");
    let ran = convoy(&moto, example_repo())
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .status(4)
        .stderr_has("locked by alice@ci-7")
        .stderr_has("convoy lock release --env production-ec2")
        .run();
    let ran = convoy(&moto, ran.dir)
        .args(["lock", "release", "--env", "production-ec2", "--yes"])
        .run();
    convoy(&moto, ran.dir)
        .args(["lock", "status", "--env", "production-ec2"])
        .stdout_has("production-ec2: not locked")
        .run();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_target_group_stops_the_deploy_before_anything_changes() {
    let moto = Moto::start().await;
    let config = moto.sdk_config(REGION);
    aws_sdk_ec2::Client::new(&config)
        .register_image()
        .name("ticketshop-base-2026-11")
        .send()
        .await
        .unwrap();
    moto.s3()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let ran = convoy(&moto, example_repo())
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .status(2)
        .stderr_has("target group `ticketshop-")
        .stderr_has("help:")
        .run();
    drop(ran);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let left = autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .unwrap();
    assert!(left.auto_scaling_groups().is_empty(), "nothing was created");
}

/// A pass-through to moto that holds, forever, the first request whose form body is
/// `Action=<action>`, and says so on the returned channel: where the test kills a deploy. One
/// request per connection (moto closes each after its answer).
async fn gate(upstream: &str, action: &str) -> (String, tokio::sync::oneshot::Receiver<()>) {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (held, arrived) = tokio::sync::oneshot::channel();
    let held = Arc::new(Mutex::new(Some(held)));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let needle = format!("Action={action}&");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, needle, held) = (upstream.clone(), needle.clone(), held.clone());
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
                if String::from_utf8_lossy(&request[head..]).contains(&needle) {
                    if let Some(held) = held.lock().unwrap().take() {
                        let _ = held.send(());
                    }
                    std::future::pending::<()>().await;
                }
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
    (endpoint, arrived)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_killed_mid_switch_is_refused_then_resumed_from_the_bucket() {
    let moto = Moto::start().await;
    let _agent = prepare(&moto).await;
    let dir = convoy(&moto, example_repo())
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .run()
        .dir;
    edit(dir.path(), "services/api/src/README", "api, faster.\n");
    // Auto Scaling goes through the gate; everything else straight to moto.
    let (gated, arrived) = gate(&moto.endpoint, "AttachLoadBalancerTargetGroups").await;
    let mut child = std::process::Command::new(convoy_test_support::cli::bin())
        .args([
            "deploy",
            "--env",
            "production-ec2",
            "--yes",
            "--no-progress",
        ])
        .current_dir(dir.path())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ENDPOINT_URL_AUTO_SCALING", &gated)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("CONVOY_ARTIFACT_STORE", format!("s3://{BUCKET}/ci"))
        .env("TICKETSHOP_DB_PASSWORD", DB_PASSWORD)
        .env("PAYMENTS_API_KEY", "payments-api-key")
        .env_remove("CONVOY_PROJECT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the condition (api's new group is being attached), bounded, never a fixed time.
    let reached = tokio::time::timeout(std::time::Duration::from_secs(120), arrived).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        matches!(reached, Ok(Ok(()))),
        "the deploy never reached the switch"
    );
    let api = groups(&moto, "api").await;
    assert_eq!(api.len(), 2, "provisioned before the kill: {api:?}");

    // The dead run's lease is stale at once (its pid is gone); its release is unfinished.
    let refused = convoy(&moto, dir)
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .status(3)
        .stderr_has("release 2 of `production-ec2` is unfinished")
        .run();
    let resumed = convoy(&moto, refused.dir)
        .args(["deploy", "--env", "production-ec2", "--yes", "--resume"])
        .run();
    let output = format!("{}{}", resumed.stdout, resumed.stderr);
    assert!(
        output.contains("release 2 of production-ec2 succeeded"),
        "{output}"
    );
    let api = groups(&moto, "api").await;
    let shares: Vec<(&str, usize)> = api.iter().map(|g| (g.1.as_str(), g.2)).collect();
    assert!(
        shares.contains(&("100", 1)) && shares.contains(&("0", 0)),
        "{api:?}"
    );
}

/// Deploys `args` (a `plan` first, which must name `reason`), and returns the repository.
fn deploy_change(
    moto: &Moto,
    dir: tempfile::TempDir,
    extra: &[&str],
    reason: &str,
) -> tempfile::TempDir {
    let plan = convoy(moto, dir)
        .args(["plan", "--env", "production-ec2"])
        .args(extra.iter().copied())
        .stdout_has(reason)
        .run();
    let ran = convoy(moto, plan.dir)
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .args(extra.iter().copied())
        .run();
    let output = format!("{}{}", ran.stdout, ran.stderr);
    assert!(output.contains("succeeded"), "{output}");
    ran.dir
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_changes_roll_out_as_new_groups_and_old_warm_ones_retire() {
    let moto = Moto::start().await;
    let _agent = prepare(&moto).await;
    let ran = convoy(&moto, example_repo())
        .args(["deploy", "--env", "production-ec2", "--yes"])
        .run();
    let first = groups(&moto, "api").await[0].0.clone();

    // Values only: a new launch-template version and group of the same artifact.
    edit(
        ran.dir.path(),
        "values/production-ec2.yaml",
        "replicas: 4\nlog_level: warn\ndatabase:\n  host: db.prod-ec2.ticketshop.internal\n",
    );
    let dir = deploy_change(&moto, ran.dir, &[], "value log_level");
    let api = groups(&moto, "api").await;
    assert_eq!(api.len(), 2, "{api:?}");
    let second = api.iter().find(|g| g.1 == "100").unwrap().0.clone();
    assert_ne!(first, second);
    assert_eq!(
        first.split('-').next(),
        second.split('-').next(),
        "same artifact"
    );

    // A --set, then a template-only change: each a new group, and only the revision just
    // replaced stays warm (keep_warm_versions: 1), so two groups per service, not four.
    let dir = deploy_change(
        &moto,
        dir,
        &["--set", "log_level=error"],
        "--set log_level=error",
    );
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/aws/user-data.sh");
    let script = std::fs::read_to_string(builtin).unwrap();
    std::fs::create_dir_all(dir.path().join("templates/aws")).unwrap();
    edit(
        dir.path(),
        "templates/aws/user-data.sh",
        &format!("{script}\n# the team's own user data\n"),
    );
    deploy_change(
        &moto,
        dir,
        &["--set", "log_level=error"],
        "templates changed",
    );
    for service in ["payments", "api", "web", "worker"] {
        let found = groups(&moto, service).await;
        assert_eq!(found.len(), 2, "{service}: {found:?}");
    }
}

mod agent;
mod flags;
mod host_task;
mod prewarm;
mod two_environments;
mod user_data;

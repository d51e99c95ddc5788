//! `convoy prewarm` end to end on `production-ec2` against moto: the binary stores the window in
//! the bucket and puts the live groups' scheduled actions; `list`, `status`, `--now` and
//! `cancel` read and change them. moto never fires an action, so the test reads them.

use super::*;

/// `(name, start, min, desired, max)` of the scheduled actions on `service`'s groups.
async fn actions(moto: &Moto, service: &str) -> Vec<(String, i64, i32, i32, i32)> {
    let autoscaling = aws_sdk_autoscaling::Client::new(&moto.sdk_config(REGION));
    let group = format!("ticketshop-production-ec2-{service}-");
    let output = autoscaling
        .describe_scheduled_actions()
        .send()
        .await
        .expect("scheduled actions");
    let mut found: Vec<_> = output
        .scheduled_update_group_actions()
        .iter()
        .filter(|a| {
            a.auto_scaling_group_name()
                .is_some_and(|g| g.starts_with(&group))
        })
        .map(|a| {
            (
                a.scheduled_action_name().unwrap_or_default().to_string(),
                a.start_time().map_or(0, |t| t.secs()),
                a.min_size().unwrap_or(-1),
                a.desired_capacity().unwrap_or(-1),
                a.max_size().unwrap_or(-1),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn prewarm_production_ec2_with_scheduled_actions_against_moto() {
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

    // Three times web's 4 instances for a spike in three hours.
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(3))
        .unwrap();
    let at_text = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let at = at_text.parse::<jiff::Timestamp>().unwrap();
    let ran = convoy(&moto, ran.dir)
        .args(["prewarm", "--env", "production-ec2", "--at", &at_text])
        .args([
            "--factor", "3", "--lead", "30m", "--hold", "2h", "--yes", "web",
        ])
        .stdout_has("prewarm 1 of production-ec2")
        .stdout_has("s3://ticketshop-artifacts/ci/.convoy/production-ec2/prewarm.json")
        .stdout_has("scheduled actions raise and restore it on time")
        .run();
    let raise = at.as_second() - 30 * 60;
    let restore = at.as_second() + 2 * 3600;
    assert_eq!(
        actions(&moto, "web").await,
        vec![
            ("convoy-prewarm-1".to_string(), raise, 12, 12, 40),
            ("convoy-prewarm-2".to_string(), restore, 4, 4, 40),
        ],
        "{}\nmoto's log:\n{}",
        ran.stdout,
        moto.log_text()
    );
    let ran = convoy(&moto, ran.dir)
        .args(["prewarm", "list", "--env", "production-ec2"])
        .stdout_has("upcoming")
        .stdout_has("web=12")
        .run();
    let ran = convoy(&moto, ran.dir)
        .args(["status", "--env", "production-ec2"])
        .stdout_has("prewarm 1 upcoming")
        .run();

    // api at once: raised now, waited for until InService, its restore left to AWS.
    let ran = convoy(&moto, ran.dir)
        .args([
            "prewarm",
            "--env",
            "production-ec2",
            "--now",
            "--capacity",
            "6",
        ])
        .args(["--hold", "1h", "--yes", "api"])
        .stdout_has("api: 4..40 → 6..40")
        .stdout_has("prewarmed capacity is Ready")
        .run();
    let api = actions(&moto, "api").await;
    assert_eq!(api.len(), 1, "only the restore: {api:?}");
    assert_eq!((api[0].2, api[0].3), (4, 4));
    let ran = convoy(&moto, ran.dir)
        .args(["status", "--env", "production-ec2"])
        .stdout_has("prewarm 2 ACTIVE")
        .stdout_has("api: 6 of 6 instances InService ✓")
        .run();

    // Cancelled: the actions go, and api's capacity comes back at once.
    let ran = convoy(&moto, ran.dir)
        .args(["prewarm", "cancel", "--env", "production-ec2", "--yes", "1"])
        .stdout_has("prewarm 1 of production-ec2 cancelled")
        .run();
    assert!(actions(&moto, "web").await.is_empty());
    convoy(&moto, ran.dir)
        .args(["prewarm", "cancel", "--env", "production-ec2", "--yes", "2"])
        .stdout_has("api: 6..40 → 4..40 (restored)")
        .run();
    assert!(actions(&moto, "api").await.is_empty());
    let api = groups(&moto, "api").await;
    assert_eq!(api[0].3, 4, "{api:?}");
}

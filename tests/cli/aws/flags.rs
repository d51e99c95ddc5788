//! `convoy flags` on an aws environment against moto: the flags in the SSM parameter
//! `/convoy/<project>/<env>/flags`, history in the bucket, and a refused lost update.

use super::*;

const PARAMETER: &str = "/convoy/ticketshop/production-ec2/flags";

async fn parameter(moto: &Moto) -> (serde_json::Value, i64) {
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config(REGION));
    let found = ssm
        .get_parameter()
        .name(PARAMETER)
        .send()
        .await
        .expect("the flags parameter")
        .parameter
        .expect("a parameter");
    let value = serde_json::from_str(found.value().unwrap_or_default()).unwrap();
    (value, found.version)
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_of_an_aws_environment_live_in_ssm_and_a_lost_update_is_refused() {
    let moto = Moto::start().await;
    let _agent = prepare(&moto).await;
    let set = convoy(&moto, example_repo())
        .args([
            "flags",
            "set",
            "checkout=new",
            "banner=hello",
            "--env",
            "production-ec2",
        ])
        .stdout_has("production-ec2: flags at revision 1")
        .run();
    assert_eq!(
        parameter(&moto).await,
        (serde_json::json!({"banner": "hello", "checkout": "new"}), 1)
    );
    let unset = convoy(&moto, set.dir)
        .args(["flags", "unset", "banner", "--env", "production-ec2"])
        .args(["--expect", "1"])
        .stdout_has("revision 2")
        .run();
    // Someone decided on revision 1, which is gone: refused, exit 4, nothing written.
    let lost = convoy(&moto, unset.dir)
        .args(["flags", "set", "checkout=old", "--env", "production-ec2"])
        .args(["--expect", "1"])
        .status(4)
        .stderr_has("the flags changed since revision 1 (now revision 2); not overwritten")
        .run();
    assert_eq!(
        parameter(&moto).await,
        (serde_json::json!({"checkout": "new"}), 2)
    );
    let listed = convoy(&moto, lost.dir)
        .args(["flags", "list", "--env", "production-ec2"])
        .stdout_has("checkout=new")
        .stdout_lacks("banner")
        .run();
    let history = convoy(&moto, listed.dir)
        .args([
            "flags",
            "history",
            "--env",
            "production-ec2",
            "--output",
            "json",
        ])
        .run();
    let changes: Vec<serde_json::Value> = history
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["change"].clone())
        .collect();
    let seen: Vec<(u64, &str, Option<&str>, Option<&str>)> = changes
        .iter()
        .map(|c| {
            (
                c["revision"].as_u64().unwrap(),
                c["key"].as_str().unwrap(),
                c["old"].as_str(),
                c["new"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "checkout", None, Some("new")),
            (1, "banner", None, Some("hello")),
            (2, "banner", Some("hello"), None),
        ]
    );
    assert!(
        changes
            .iter()
            .all(|c| c["who"].as_str().unwrap().contains('@'))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn host_flags_sync_copies_the_parameter_to_the_flags_file_when_it_changes() {
    let moto = Moto::start().await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config(REGION));
    let put = |value: &'static str| {
        ssm.put_parameter()
            .name(PARAMETER)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
    };
    put(r#"{"checkout":"new"}"#).await.expect("the parameter");
    let root = tempfile::tempdir().unwrap();
    let root_arg = root.path().display().to_string();
    let sync = || {
        convoy(&moto, tempfile::tempdir().unwrap())
            .args(["host", "flags-sync", "--root", &root_arg])
            .args(["--parameter", PARAMETER, "--region", REGION])
    };
    let read = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(root.path().join("flags.json")).unwrap()).unwrap()
    };
    sync().stdout_has("copied to").run();
    assert_eq!(read(), serde_json::json!({"checkout": "new"}));
    // Unchanged: the file is left as it is (what the 30 s timer does most of the time).
    sync().stdout_lacks("copied to").run();
    put(r#"{"checkout":"new","maintenance":"read_only"}"#)
        .await
        .expect("a change");
    sync().stdout_has("copied to").run();
    assert_eq!(
        read(),
        serde_json::json!({"checkout": "new", "maintenance": "read_only"})
    );
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["flags.json"],
        "replaced by a rename, nothing left beside it"
    );
}

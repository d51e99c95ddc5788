//! User data that cannot be injected: rendered for `production-ec2` with hostile values —
//! newlines, quotes, `$(…)`, backticks, the old heredoc's terminator — and an artifact store URL
//! holding a quote, then run by `sh` in a sandbox whose PATH holds only a stub `convoy`. Nothing
//! but that stub may run, and it must receive every value exactly as written.

use std::path::Path;

use super::*;

/// Every hostile value tries to create this file with shell builtins alone.
const MARKER: &str = "PWNED";

const HOSTILE: [(&str, &str); 6] = [
    ("GREETING", "line one\nline two"),
    ("QUOTE", "it's \"quoted\" \\ and back"),
    ("SUBSHELL", "$(echo pwned > PWNED)"),
    ("BACKTICKS", "`echo pwned > PWNED`"),
    (
        "TERMINATOR",
        "x\nCONVOY_ENV\necho pwned > PWNED\nCONVOY_ENV",
    ),
    ("BREAKOUT", "'; echo pwned > PWNED; '"),
];

/// The values as YAML: double-quoted, so every character is said exactly.
fn values_file() -> String {
    HOSTILE
        .iter()
        .map(|(name, value)| {
            let key = name.to_lowercase();
            format!("{key}: {}\n", serde_json::to_string(value).unwrap())
        })
        .collect()
}

fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

#[test]
fn hostile_values_in_user_data_run_nothing_and_arrive_intact() {
    let store = "s3://bucket/it's $(echo pwned > PWNED)";
    let ran = Test::in_dir(example_repo())
        .file("values/api.production-ec2.yaml", &values_file())
        .args(["--artifacts", store])
        .args([
            "render",
            "--env",
            "production-ec2",
            "--version",
            "v1",
            "api",
        ])
        .args(["--out", "rendered"])
        .env("TICKETSHOP_DB_PASSWORD", "never-in-user-data")
        .env("PAYMENTS_API_KEY", "never-either")
        .run();
    let script_path = ran.dir.path().join("rendered/api/userdata-api-v1.sh");
    let script = std::fs::read_to_string(&script_path).unwrap();
    assert!(!script.contains("never-in-user-data"), "{script}");

    let sandbox = tempfile::tempdir().unwrap();
    let bin = sandbox.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let args_file = sandbox.path().join("args");
    let stub = bin.join("convoy");
    std::fs::write(&stub, "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$ARGS\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();

    let syntax = std::process::Command::new("sh")
        .arg("-n")
        .arg(&script_path)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}\n{script}");
    let run = std::process::Command::new("/bin/sh")
        .arg(&script_path)
        .env_clear()
        .env("PATH", &bin)
        .env("ARGS", &args_file)
        .current_dir(sandbox.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}\n{script}");
    assert!(
        files_named(sandbox.path(), MARKER).is_empty()
            && files_named(ran.dir.path(), MARKER).is_empty(),
        "an injected command ran:\n{script}"
    );

    // Exactly one command ran, the stub, with every value intact.
    let raw = std::fs::read(&args_file).expect("convoy ran");
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8(a.to_vec()).unwrap())
        .collect();
    let after = |flag: &str| {
        let at = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag}: {args:?}"));
        args[at + 1].clone()
    };
    assert_eq!(&args[..3], ["host", "deploy", "--root"]);
    assert_eq!(after("--store"), store);
    assert_eq!(args[args.len() - 3..], ["--", "api", "v1"]);
    let encoded = after("--env-base64");
    let decoded = aws_smithy_types::base64::decode(&encoded).unwrap();
    let environment: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&decoded).unwrap();
    for (name, value) in HOSTILE {
        assert_eq!(
            environment.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }
    assert!(
        !environment.contains_key("DATABASE_PASSWORD"),
        "secrets go through SSM"
    );
}

#[test]
fn user_data_copies_the_flags_at_launch_and_installs_a_timer_to_refresh_them() {
    let ran = Test::in_dir(example_repo())
        .args(["--artifacts", "s3://bucket/ci"])
        .args([
            "render",
            "--env",
            "production-ec2",
            "--version",
            "v1",
            "api",
        ])
        .args(["--out", "rendered"])
        .env("TICKETSHOP_DB_PASSWORD", "never-in-user-data")
        .env("PAYMENTS_API_KEY", "never-either")
        .run();
    let script_path = ran.dir.path().join("rendered/api/userdata-api-v1.sh");
    let script = std::fs::read_to_string(&script_path).unwrap();
    let parameter = "'/convoy/ticketshop/production-ec2/flags'";
    // The agent copies them before it deploys…
    assert!(
        script.contains(&format!("  --flags {parameter} \\\n")),
        "{script}"
    );
    // …and a systemd timer every 30 s after, through `convoy host flags-sync`.
    for line in [
        "ExecStart=%s host flags-sync --root %s --region %s --parameter %s",
        "OnUnitActiveSec=30",
        "> /etc/systemd/system/convoy-flags.service",
        "> /etc/systemd/system/convoy-flags.timer",
        "systemctl enable --now convoy-flags.timer",
        parameter,
    ] {
        assert!(script.contains(line), "{line} not in:\n{script}");
    }
    let timer_at = script.find("convoy-flags.timer").unwrap();
    let deploy_at = script.find("exec convoy host deploy").unwrap();
    assert!(
        timer_at < deploy_at,
        "the timer is installed before the agent execs"
    );
    let syntax = std::process::Command::new("sh")
        .arg("-n")
        .arg(&script_path)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "{syntax:?}");
}

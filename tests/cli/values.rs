//! `convoy values`: merged values, provenance with `--explain`, secrets always masked.

use convoy_test_support::cli::{Test, example_dir};

fn example() -> String {
    example_dir().to_str().unwrap().to_string()
}

#[test]
fn explain_names_the_winning_file_and_line_and_what_it_overrode() {
    let ran = Test::new()
        .args([
            "values",
            "--project",
            &example(),
            "--env",
            "production",
            "--service",
            "api",
        ])
        .args(["--explain", "database.host"])
        .run();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines[0], "database.host = db.prod.ticketshop.internal");
    assert!(
        lines[1].contains("set by") && lines[1].contains("values/production.yaml:3:3"),
        "{}",
        ran.stdout
    );
    assert!(
        lines[2].contains("overrode") && lines[2].contains("values/common.yaml:4:3"),
        "{}",
        ran.stdout
    );
}

#[test]
fn set_flag_overrides_every_file_layer() {
    let ran = Test::new()
        .args([
            "values",
            "--project",
            &example(),
            "--env",
            "production",
            "--service",
            "web",
        ])
        .args(["--set", "replicas=12", "--explain", "replicas"])
        .run();
    assert!(ran.stdout.starts_with("replicas = 12\n"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("set by   --set replicas=12"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("overrode") && ran.stdout.contains("values/web.production.yaml"),
        "{}",
        ran.stdout
    );
}

#[test]
fn secrets_are_masked_even_when_the_variable_is_set() {
    let ran = Test::new()
        .env("TICKETSHOP_DB_PASSWORD", "hunter2-do-not-print")
        .env("PAYMENTS_API_KEY", "sk-live-do-not-print")
        .args([
            "values",
            "--project",
            &example(),
            "--env",
            "production",
            "--service",
            "payments",
        ])
        .stdout_has("******** (env TICKETSHOP_DB_PASSWORD)")
        .stdout_lacks("hunter2")
        .stdout_lacks("sk-live")
        .run();
    let json = Test::new()
        .env("TICKETSHOP_DB_PASSWORD", "hunter2-do-not-print")
        .args([
            "--output",
            "json",
            "values",
            "--project",
            &example(),
            "--env",
            "production",
        ])
        .args(["--service", "payments", "--explain", "database.password"])
        .stdout_lacks("hunter2")
        .run();
    assert!(json.stdout.contains("********"), "{}", json.stdout);
    drop(ran);
}

#[test]
fn inline_environment_values_sit_between_common_and_the_environment_file() {
    let ran = Test::new()
        .file(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\nenvironments:\n  prod:\n    target: { host: { root: r } }\n    values: { tier: inline, color: blue }\n",
        )
        .file("values/common.yaml", "tier: common\ncolor: red\n")
        .file("values/prod.yaml", "tier: file\n")
        .args(["values", "--env", "prod", "--service", "api", "--explain", "color"])
        .run();
    assert!(ran.stdout.starts_with("color = blue\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("convoy.yaml:7:"), "{}", ran.stdout);
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    Test::new()
        .args([
            "values",
            "--project",
            &example(),
            "--env",
            "prod",
            "--service",
            "api",
        ])
        .status(2)
        .stderr_has("unknown environment `prod`")
        .stderr_has("help: known: production (closest)")
        .run();
}

#[test]
fn bad_set_argument_is_a_usage_error() {
    Test::new()
        .args([
            "values",
            "--project",
            &example(),
            "--env",
            "local",
            "--service",
            "api",
            "--set",
            "replicas",
        ])
        .status(2)
        .stderr_has("invalid --set `replicas`: there is no `=`")
        .run();
}

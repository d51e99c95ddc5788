//! `convoy render` and the rendering half of `convoy check`: templates, typed validation, lints,
//! secrets, and byte-identical output.

use convoy_test_support::cli::Test;
use convoy_test_support::convoy_snapshot;

/// A Deployment template without probes or resources: it renders, and the lints warn.
pub(crate) const BARE_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: { name: {{ names.deployment | json }}, labels: {{ labels | json }} }
spec:
  selector: { matchLabels: {{ selector | json }} }
  template:
    metadata: { labels: {{ labels | json }} }
    spec:
      containers:
        - name: app
          image: {{ image | json }}
"#;

const PROD: [&str; 5] = ["render", "--project", ".", "--env", "production"];

#[test]
fn example_production_manifests() {
    let ran = Test::example()
        .args(PROD)
        .args(["--version", "1.4.0"])
        .run();
    convoy_snapshot!("render_production", ran);
}

#[test]
fn example_production_ec2_launch_data_and_user_data() {
    let ran = Test::example()
        .args(["render", "--env", "production-ec2", "--version", "1.4.0"])
        .run();
    convoy_snapshot!("render_production_ec2", ran);
}

#[test]
fn rendering_twice_is_byte_identical() {
    let first = Test::example().args(PROD).args(["--version", "7"]).run();
    let second = Test::example().args(PROD).args(["--version", "7"]).run();
    assert_eq!(first.stdout, second.stdout);
    let ec2 = ["render", "--env", "production-ec2", "--version", "7"];
    assert_eq!(
        Test::example().args(ec2).run().stdout,
        Test::example().args(ec2).run().stdout
    );
}

#[test]
fn out_dir_gets_one_file_per_object() {
    let ran = Test::example()
        .args(PROD)
        .args(["--version", "1.4.0", "--out", "rendered", "api"])
        .stdout_has("wrote 6 file(s)")
        .run();
    let file = ran
        .dir
        .path()
        .join("rendered/api/deployment-api-1.4.0.yaml");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains("app.kubernetes.io/version: 1.4.0"), "{text}");
}

#[test]
fn secrets_are_masked_unless_shown() {
    let clear = "hunter2-clear-text";
    let masked = Test::example()
        .env("TICKETSHOP_DB_PASSWORD", clear)
        .env("PAYMENTS_API_KEY", clear)
        .args(PROD)
        .stdout_has("DATABASE_PASSWORD: \"********\"")
        .stdout_lacks(clear)
        .run();
    assert!(!masked.stderr.contains(clear));
    Test::example()
        .env("TICKETSHOP_DB_PASSWORD", clear)
        .env("PAYMENTS_API_KEY", clear)
        .args(PROD)
        .args(["--show-secrets"])
        .stdout_has(&format!("DATABASE_PASSWORD: {clear}"))
        .run();
}

#[test]
fn showing_a_secret_that_is_not_set_is_an_error() {
    Test::example()
        .args(PROD)
        .args(["--show-secrets", "api"])
        .status(2)
        .stderr_has("secret `database.password` cannot be read from env TICKETSHOP_DB_PASSWORD")
        .run();
}

#[test]
fn check_needs_no_secrets() {
    Test::example()
        .args(["check"])
        .stdout_has("production      kubernetes")
        .run();
}

#[test]
fn a_project_template_overrides_the_built_in_one() {
    let service = "apiVersion: v1\nkind: Service\nmetadata: { name: {{ names.service | json }}, annotations: { overridden: \"yes\" } }\nspec: { selector: {{ selector | json }}, ports: [{ port: 80 }] }\n";
    Test::example()
        .file("templates/kubernetes/service.yaml", service)
        .args(PROD)
        .stdout_has("overridden: \"yes\"")
        .stdout_lacks("type: ClusterIP")
        .run();
}

#[test]
fn a_template_syntax_error_points_at_the_file_and_line() {
    Test::example()
        .file(
            "templates/kubernetes/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{ names.deployment \n",
        )
        .args(PROD)
        .status(2)
        .stderr_has("templates/kubernetes/deployment.yaml:3:")
        .stderr_has("help: fix the template at that line")
        .run();
}

#[test]
fn an_unknown_field_in_a_deployment_names_its_path_and_the_right_spelling() {
    let template = format!("{BARE_DEPLOYMENT}          imagPullPolicy: Always\n");
    Test::example()
        .file("templates/kubernetes/deployment.yaml", &template)
        .args(PROD)
        .args(["api"])
        .status(2)
        .stderr_has("spec.template.spec.containers[0].imagPullPolicy: unknown field")
        .stderr_has("templates/kubernetes/deployment.yaml:12:")
        .stderr_has("help: did you mean imagePullPolicy?")
        .run();
}

#[test]
fn a_name_longer_than_kubernetes_allows_is_an_error() {
    let version = "v".repeat(60);
    Test::example()
        .args(PROD)
        .args(["--version", version.as_str(), "api"])
        .status(2)
        .stderr_has("Deployment name `api-vvvv")
        .stderr_has("Kubernetes allows 63")
        .run();
}

#[test]
fn a_missing_required_value_is_an_error() {
    Test::example()
        .file("values/production.yaml", "replicas: 6\n")
        .args(PROD)
        .status(2)
        .stderr_has("required value `database.host` is not set for service `api` in environment `production`")
        .run();
}

#[test]
fn lint_warnings_pass_check_unless_strict() {
    let test = || Test::example().file("templates/kubernetes/deployment.yaml", BARE_DEPLOYMENT);
    test()
        .args(["check", "--env", "production"])
        .stdout_has("warning[missing-readiness-probe]: production/api: Deployment")
        .stdout_has("warning[missing-resources]")
        .run();
    test()
        .args(["check", "--env", "production", "--strict"])
        .status(2)
        .stderr_has("lints failed: 0 lint error(s), 8 warning(s) (--strict)")
        .run();
}

#[test]
fn a_lint_error_fails_check_and_json_lists_findings() {
    let ran = Test::example()
        .file(
            "values/api.production.yaml",
            "autoscaling: { min: 9, max: 3 }\n",
        )
        .args(["--output", "json", "check", "--env", "production"])
        .status(2)
        .run();
    let finding = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "finding")
        .expect("a finding event");
    assert_eq!(finding["rule"], "hpa-min-above-max");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["service"], "api");
}

const SMALL: &str = "\
project: shop
services:
  api: { path: services/api, port: 8080, image: r/api, templates: [deployment.yaml, service.yaml], health: { http: /h } }
environments:
  prod: { target: { kubernetes: { namespace: shop } } }
  local: { target: { host: { root: srv } } }
";

#[test]
fn a_service_can_choose_its_templates() {
    let ran = Test::new()
        .file("convoy.yaml", SMALL)
        .args(["render", "--env", "prod", "--version", "2"])
        .stdout_has("kind: Deployment")
        .stdout_has("kind: Service")
        .run();
    assert!(!ran.stdout.contains("kind: ConfigMap"), "{}", ran.stdout);
    Test::new()
        .file(
            "convoy.yaml",
            &SMALL.replace("service.yaml]", "servce.yaml]"),
        )
        .args(["render", "--env", "prod", "--version", "2"])
        .status(2)
        .stderr_has("service `api` uses template `servce.yaml`, which does not exist")
        .stderr_has("kubernetes/service.yaml")
        .run();
}

#[test]
fn a_host_environment_renders_no_objects_but_checks_values() {
    let ran = Test::new()
        .file("convoy.yaml", SMALL)
        .args(["render", "--env", "local", "--version", "2"])
        .run();
    assert_eq!(ran.stdout.trim(), "");
    Test::new()
        .file("convoy.yaml", SMALL)
        .file("values/local.yaml", "token: { required: an API token }\n")
        .args(["check", "--env", "local"])
        .status(2)
        .stderr_has("required value `token`")
        .run();
}

#[test]
fn a_version_that_cannot_be_a_label_is_an_error() {
    Test::example()
        .args(PROD)
        .args(["--version", "1.4.0+build", "api"])
        .status(2)
        .stderr_has("label `app.kubernetes.io/version` of Deployment `1.4.0+build` is not valid")
        .run();
}

/// `replicas` reached Kubernetes as `value as i32`: 4294967297 became 1 replica, silently.
#[test]
fn replicas_beyond_i32_is_an_error_not_a_truncation() {
    Test::example()
        .file("values/api.production.yaml", "replicas: 4294967297\n")
        .args(["check", "--env", "production"])
        .status(2)
        .stderr_has("service `api` asks for 4294967297 replicas")
        .stderr_has("values/api.production.yaml:1:1 (replicas)")
        .stderr_has("help: `replicas` was set by service api in production")
        .run();
    Test::example()
        .args(["check", "--env", "production-ec2", "--set", "replicas=-1"])
        .status(2)
        .stderr_has("service `web` asks for -1 replicas")
        .run();
    let negative = BARE_DEPLOYMENT.replacen("spec:\n", "spec:\n  replicas: -1\n", 1);
    Test::example()
        .file("templates/kubernetes/deployment.yaml", &negative)
        .args(["check", "--env", "production"])
        .status(2)
        .stderr_has("service `api` asks for -1 replicas")
        .stderr_has("set by template `kubernetes/deployment.yaml`")
        .run();
}

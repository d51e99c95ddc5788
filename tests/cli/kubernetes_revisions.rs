//! Revisions on Kubernetes (the real API server in CI): a values-only change, a template-only
//! change, a `--set` and a rotated secret each roll out through the staged plan, which names the
//! change; `diff` is clean after every deploy; and however many deploys happen inside
//! `keep_warm`, at most `keep_warm_versions` old revisions of a service run.

use std::path::Path;

use crate::kubernetes_e2e::{edit, repo, world};

/// Every revision of `service` with a Deployment (live and warm).
fn revisions_of(names: &[String], service: &str) -> Vec<String> {
    let prefix = format!("{service}-");
    let ids = names.iter().filter_map(|n| n.strip_prefix(&prefix));
    // `api-<version>-<digest>`, not another service whose name starts with `api-`.
    ids.filter(|id| id.split('-').count() == 2)
        .map(str::to_string)
        .collect()
}

/// The project's own copy of the built-in Deployment template, with one more annotation.
fn override_deployment_template(dir: &Path) {
    let builtin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/kubernetes/deployment.yaml");
    let text = std::fs::read_to_string(builtin).unwrap();
    let marked = text.replace(
        r#"annotations: { "convoy.dev/commit": {{ commit | json }} }"#,
        r#"annotations: { "convoy.dev/commit": {{ commit | json }}, "example.com/team": "tickets" }"#,
    );
    assert_ne!(
        text, marked,
        "the built-in template still has its annotation line"
    );
    let dir = dir.join("templates/kubernetes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("deployment.yaml"), marked).unwrap();
}

#[test]
fn configuration_changes_roll_out_like_code_diff_stays_clean_and_old_revisions_retire() {
    let w = world();
    let ran = w.convoy(repo(), &["deploy", "--env", "staging"], 0);
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 0);
    let first = w.live("api").unwrap();

    // 1. Values only.
    edit(
        ran.dir.path(),
        "values/staging.yaml",
        "database:\n  host: db2.staging.ticketshop.internal\n",
    );
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 1);
    let ran = w.convoy(ran.dir, &["plan", "--env", "staging"], 0);
    assert!(
        ran.stdout.contains("value database.host") && ran.stdout.contains("values/staging.yaml:2"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 0);
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 0);
    let second = w.live("api").unwrap();
    assert_ne!(first, second, "a values-only change is a new revision");
    assert_eq!(first.split('-').next(), second.split('-').next());

    // 2. Template only.
    override_deployment_template(ran.dir.path());
    convoy_test_support::cli::commit_all(ran.dir.path(), "team annotation");
    let ran = w.convoy(ran.dir, &["plan", "--env", "staging"], 0);
    assert!(ran.stdout.contains("templates changed"), "{}", ran.stdout);
    let ran = w.convoy(ran.dir, &["deploy", "--env", "staging"], 0);
    let ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 0);

    // 3. A `--set`.
    let set = ["--set", "log_level=warn"];
    let args = |command: &'static str| [command, "--env", "staging", set[0], set[1]];
    let ran = w.convoy(ran.dir, &args("plan"), 0);
    assert!(
        ran.stdout.contains("--set log_level=warn"),
        "{}",
        ran.stdout
    );
    let ran = w.convoy(ran.dir, &args("deploy"), 0);
    let ran = w.convoy(ran.dir, &args("diff"), 0);

    // 4. A rotated secret: named by key, never by value.
    let rotated = [("TICKETSHOP_DB_PASSWORD", "rotated-password-9")];
    let ran = w.convoy_with(ran.dir, &args("plan"), 0, &rotated);
    assert!(
        ran.stdout.contains("secret database.password changed"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("rotated-password-9"));
    let ran = w.convoy_with(ran.dir, &args("deploy"), 0, &rotated);
    let ran = w.convoy_with(ran.dir, &args("diff"), 0, &rotated);
    let last = w.live("api").unwrap();

    // Five revisions of api went live inside keep_warm; one old one stays warm.
    let names = w.staying_deployments();
    let mut running = revisions_of(&names, "api");
    running.sort();
    assert_eq!(running.len(), 2, "{names:?}");
    assert!(running.contains(&last), "{running:?}");
    // The warm one is the revision just replaced, so the instant rollback still works.
    let ran = w.convoy_with(ran.dir, &["rollback", "--env", "staging"], 0, &rotated);
    assert!(!ran.stderr.contains("provision api"), "{}", ran.stderr);
    assert_ne!(w.live("api").unwrap(), last);
}

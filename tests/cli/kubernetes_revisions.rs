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

/// A small deterministic generator (xorshift64*): the seed is printed, and
/// `CONVOY_PROPERTY_SEED` replays a failing sequence.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("CONVOY_PROPERTY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_c0de_2026_1202);
        eprintln!("property seed: {seed} (CONVOY_PROPERTY_SEED replays it)");
        Rng(seed.max(1))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// `values/staging.yaml` with `edits` (dotted keys, YAML scalars) beside the database host.
fn staging_values(edits: &std::collections::BTreeMap<&str, &str>) -> String {
    let mut text = String::from("database:\n  host: db.staging.ticketshop.internal\n");
    let mut sections: std::collections::BTreeMap<&str, Vec<(&str, &str)>> = Default::default();
    for (key, value) in edits {
        match key.split_once('.') {
            Some((section, leaf)) => sections.entry(section).or_default().push((leaf, value)),
            None => text.push_str(&format!("{key}: {value}\n")),
        }
    }
    for (section, leaves) in sections {
        text.push_str(&format!("{section}:\n"));
        for (leaf, value) in leaves {
            text.push_str(&format!("  {leaf}: {value}\n"));
        }
    }
    text
}

#[test]
fn diff_and_plan_agree_over_random_value_edits() {
    let w = world();
    let mut ran = w.convoy(repo(), &["deploy", "--env", "staging"], 0);
    let mut rng = Rng::seeded();
    let mut edits = std::collections::BTreeMap::new();
    for round in 0..5 {
        // An edit, possibly to the value a key already has (then nothing changes).
        let key = rng.pick(&["log_level", "feature.search", "feature.banner", "replicas"]);
        let value = match key {
            "replicas" => rng.pick(&["1", "2"]),
            "log_level" => rng.pick(&["info", "debug"]),
            _ => rng.pick(&["true", "false"]),
        };
        edits.insert(key, value);
        std::fs::write(
            ran.dir.path().join("values/staging.yaml"),
            staging_values(&edits),
        )
        .unwrap();
        convoy_test_support::cli::git(ran.dir.path(), &["add", "-A"]);
        convoy_test_support::cli::git(
            ran.dir.path(),
            &["commit", "-q", "--allow-empty", "-m", "edit"],
        );
        let plan = w.convoy(
            ran.dir,
            &["--output", "json", "plan", "--env", "staging"],
            0,
        );
        let first: serde_json::Value =
            serde_json::from_str(plan.stdout.lines().next().unwrap()).unwrap();
        // Deploy has steps to run (plan prints an empty plan when there are none).
        let steps = first["plan"]["steps"].as_array().map_or(0, Vec::len);
        let changes = first["event"] == "plan" && steps > 0;
        // Whatever plan says, diff says the same: exit 1 exactly when deploy has steps to run.
        let expected = if changes { 1 } else { 0 };
        let diff = w.convoy(plan.dir, &["diff", "--env", "staging"], expected);
        eprintln!("round {round}: {key}={value}: changes {changes}");
        ran = w.convoy(diff.dir, &["deploy", "--env", "staging"], 0);
        ran = w.convoy(ran.dir, &["diff", "--env", "staging"], 0);
    }
}

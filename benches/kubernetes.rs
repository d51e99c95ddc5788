//! `cargo bench --profile dev --bench kubernetes`: the Kubernetes target against the in-process
//! test API server (`convoy_test_support::kube_api`, served over HTTP; the binary connects
//! through a kubeconfig, as it would to a cluster).
//!
//! 1. A generated project (`fleet::write`: 50 services, depth 5) deployed to `staging`: the first
//!    release (all new), a second where every service changed, and a rollback to the first while
//!    its versions are warm. Each against the lower bound of its critical path: pods become Ready
//!    `KUBE_READY_MS` after they are created, and only a provision creates pods (in a bluegreen
//!    switch the new version already has its replicas and the old one is kept warm as it is), so
//!    the bound is the longest chain of the plan's steps weighting a provision by one ready delay
//!    and anything else by nothing — depth × ready delay for a release that changes every
//!    service, and zero for a rollback to warm versions (no ratio then: all of it is Convoy).
//!    Builds are untimed. Then, from the release records' journals, where the time went.
//! 2. The API requests of deploying one service: a 1-service project (same generator) in its own
//!    namespace — first deploy, a change deploy, a rollback — by verb and resource.
//!
//! Figures only; nothing is asserted about speed. KUBE_SERVICES / KUBE_DEPTH / KUBE_READY_MS
//! change the shape; KUBE_PROVISION (`parallel`, the default, or `ordered`) the policy's
//! `provision`.

#[allow(dead_code)] // `fleet::write_host` is the rollout bench's
mod fleet;
mod journal;

use journal::{after, at, commit_all, env_number, git, max, mean, secs, steps};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use convoy_test_support::kube_api::{ApiServer, Request};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_convoy");
const CONTEXT: &str = "convoy-bench";

/// What the bench runs the binary against.
struct Cluster {
    kubeconfig: std::path::PathBuf,
    namespace: String,
}

fn main() {
    let services = env_number("KUBE_SERVICES", 50);
    let depth = env_number("KUBE_DEPTH", 5);
    let ready = Duration::from_millis(env_number("KUBE_READY_MS", 2000) as u64);

    // The server runs on a runtime of its own, kept for the whole bench: the binary is run
    // synchronously meanwhile and talks to it over HTTP.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = ApiServer::new();
    server.ready_delay(ready);
    let served = runtime.block_on(server.serve());
    let client = runtime.block_on(async { server.client() });
    let scratch = tempfile::tempdir().unwrap();
    let kubeconfig = scratch.path().join("kubeconfig");
    served.write_kubeconfig(&kubeconfig, CONTEXT, "default");
    for namespace in ["fleet", "one"] {
        let api: Api<Namespace> = Api::all(client.clone());
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        runtime
            .block_on(api.create(&PostParams::default(), &object))
            .unwrap();
    }

    // 1. The generated release.
    let fleet = Cluster {
        kubeconfig: kubeconfig.clone(),
        namespace: "fleet".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root, services, depth);
    println!(
        "kubernetes: {services} services, depth {depth}, pods Ready {:.1}s after creation, \
         binary {BIN} (profile of this bench), test API server at {}, project in {}",
        ready.as_secs_f64(),
        served.url(),
        root.display()
    );
    let mut rows = Vec::new();
    let mut requests = Vec::new();
    convoy(root, &fleet, &["build"]);
    server.clear_requests();
    let first = timed(root, &fleet, &["deploy", "--env", "staging"]);
    requests.push(server.requests());
    rows.push(("first deploy (all new)", first, release(root, &fleet, 1)));

    fleet::write_sources(root, services, 2);
    commit_all(root, "fleet, revision 2: every service changed");
    convoy(root, &fleet, &["build"]);
    server.clear_requests();
    let second = timed(root, &fleet, &["deploy", "--env", "staging"]);
    requests.push(server.requests());
    rows.push((
        "second deploy (all changed)",
        second,
        release(root, &fleet, 2),
    ));

    server.clear_requests();
    let back = timed(root, &fleet, &["rollback", "--env", "staging"]);
    requests.push(server.requests());
    rows.push((
        "rollback to release 1 (warm)",
        back,
        release(root, &fleet, 3),
    ));

    println!();
    println!(
        "{:<30} {:>9} {:>9} {:>7} {:>9}   steps (provision/switch/cleanup)",
        "", "wall", "bound", "ratio", "requests"
    );
    for ((name, wall, record), log) in rows.iter().zip(&requests) {
        let bound = critical_path(record, ready);
        let ratio = if bound.is_zero() {
            "-".to_string()
        } else {
            format!("{:.2}", wall.as_secs_f64() / bound.as_secs_f64())
        };
        let count = |phase: &str| steps(record).iter().filter(|s| s["phase"] == phase).count();
        println!(
            "{name:<30} {:>8.2}s {:>8.2}s {ratio:>7} {:>9}   {}/{}/{}",
            wall.as_secs_f64(),
            bound.as_secs_f64(),
            log.len(),
            count("provision"),
            count("switch"),
            count("cleanup"),
        );
    }
    println!();
    println!(
        "rollback of the {services}-service release while warm: {:.2}s",
        back.as_secs_f64()
    );
    for ((name, wall, record), log) in rows.iter().zip(&requests) {
        println!();
        breakdown(name, *wall, record, ready);
        busiest(log, 6);
    }

    // 2. One service.
    let one = Cluster {
        kubeconfig,
        namespace: "one".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root, 1, 1);
    convoy(root, &one, &["build"]);
    let mut runs = Vec::new();
    server.clear_requests();
    let wall = timed(root, &one, &["deploy", "--env", "staging"]);
    runs.push(("first", wall, server.requests()));
    fleet::write_sources(root, 1, 2);
    commit_all(root, "svc-0, revision 2");
    convoy(root, &one, &["build"]);
    server.clear_requests();
    let wall = timed(root, &one, &["deploy", "--env", "staging"]);
    runs.push(("change", wall, server.requests()));
    server.clear_requests();
    let wall = timed(root, &one, &["rollback", "--env", "staging"]);
    runs.push(("rollback", wall, server.requests()));
    println!();
    println!(
        "== API requests of deploying one service (a 1-service project, namespace `one`; each \
         whole `convoy` command: connect, lock, observe, dry run, steps, records)"
    );
    requests_table(&runs);
    drop(served);
}

/// `fleet::write`'s project with sources, in a new git repository, `staging` given an explicit
/// policy: bluegreen, no bake (the default too, but the measurement must not be of bake time) and
/// old versions kept warm well past the bench (the default keeps them 15 minutes) for the rollback.
fn project(root: &Path, services: usize, depth: usize) {
    fleet::write(root, services, depth);
    fleet::write_sources(root, services, 1);
    let file = root.join("convoy.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let staging = "staging: { target: { kubernetes: { namespace: fleet } } }";
    assert!(text.contains(staging), "fleet::write's staging changed");
    let provision = std::env::var("KUBE_PROVISION").unwrap_or_else(|_| "parallel".to_string());
    let text = text.replace(
        staging,
        &format!(
            "staging: {{ target: {{ kubernetes: {{ namespace: fleet }} }}, \
             rollout: {{ strategy: bluegreen, provision: {provision}, bake: 0s, keep_warm: 30m }} }}"
        ),
    );
    std::fs::write(&file, text).unwrap();
    std::fs::write(root.join(".gitignore"), ".convoy/\n").unwrap();
    git(root, &["init", "-q"]);
    commit_all(root, "fleet, revision 1");
}

/// Runs convoy in `dir` non-interactively against `cluster`, insists that it succeeded and
/// returns its standard output.
fn convoy(dir: &Path, cluster: &Cluster, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .args(["--yes", "--no-progress", "--context", CONTEXT])
        .args(["--namespace", &cluster.namespace])
        .current_dir(dir)
        .env_remove("CONVOY_PROJECT")
        .env_remove("CONVOY_KUBE_CONTEXT")
        .env_remove("CONVOY_NAMESPACE")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("FLEET_DB", "bench-password")
        .env("NO_COLOR", "1")
        .output()
        .expect("run convoy");
    assert!(
        output.status.success(),
        "convoy {args:?}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn timed(dir: &Path, cluster: &Cluster, args: &[&str]) -> Duration {
    let started = Instant::now();
    convoy(dir, cluster, args);
    started.elapsed()
}

/// Release `number` of staging, as `convoy --output json history` shows it (untimed).
fn release(root: &Path, cluster: &Cluster, number: u64) -> Value {
    let out = convoy(
        root,
        cluster,
        &["--output", "json", "history", "--env", "staging"],
    );
    out.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["event"] == "release")
        .map(|event| event["record"].clone())
        .find(|record| record["number"] == number)
        .unwrap_or_else(|| panic!("no release {number} in the history:\n{out}"))
}

/// The lower bound: the longest chain of the plan's steps, weighting a provision by one ready
/// delay (its pods are new) and anything else by nothing (see the top of the file).
fn critical_path(record: &Value, ready: Duration) -> Duration {
    let mut finish: Vec<Duration> = Vec::new();
    for step in steps(record) {
        let start = after(step)
            .map(|d| finish[d])
            .max()
            .unwrap_or(Duration::ZERO);
        let cost = match step["phase"].as_str().unwrap() {
            "provision" => ready,
            _ => Duration::ZERO,
        };
        finish.push(start + cost);
    }
    finish.into_iter().max().unwrap_or(Duration::ZERO)
}

/// Where one rollout's wall time went, from its release record's journal (as in rollout.rs).
fn breakdown(name: &str, wall: Duration, record: &Value, ready: Duration) {
    let started: Timestamp = record["started"].as_str().unwrap().parse().unwrap();
    let finished: Timestamp = record["finished"].as_str().unwrap().parse().unwrap();
    let inside = secs(started, finished);
    let mut start: BTreeMap<u64, Timestamp> = BTreeMap::new();
    let mut end: BTreeMap<u64, Timestamp> = BTreeMap::new();
    let journal = record["journal"].as_array().unwrap();
    for entry in journal {
        let step = entry["step"].as_u64().unwrap();
        match entry["event"].as_str().unwrap() {
            "started" => {
                start.insert(step, at(entry));
            }
            "succeeded" => {
                end.insert(step, at(entry));
            }
            _ => {}
        }
    }
    println!("== {name}");
    println!(
        "  process wall {:.2}s; release record started→finished {inside:.2}s; before/after the \
         record (process start, load, connect, lock, observe, plan, dry run) {:.2}s; outcome {}; \
         journal {} entries, each a whole-record save",
        wall.as_secs_f64(),
        wall.as_secs_f64() - inside,
        record["outcome"],
        journal.len(),
    );
    for phase in ["provision", "switch", "cleanup"] {
        let ids: Vec<u64> = steps(record)
            .iter()
            .filter(|s| s["phase"] == phase)
            .map(|s| s["id"].as_u64().unwrap())
            .filter(|id| start.contains_key(id))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let first = ids.iter().map(|i| start[i]).min().unwrap();
        let last = ids.iter().filter_map(|i| end.get(i)).max().unwrap();
        let durations: Vec<f64> = ids
            .iter()
            .filter_map(|i| Some(secs(start[i], *end.get(i)?)))
            .collect();
        // How long a step waited, after its last dependency succeeded, to be started.
        let waits: Vec<f64> = ids
            .iter()
            .map(|i| {
                let step = &steps(record)[*i as usize];
                let ready = after(step)
                    .filter_map(|d| end.get(&(d as u64)).copied())
                    .max()
                    .unwrap_or(started);
                secs(ready, start[i])
            })
            .collect();
        println!(
            "  {phase:<9} {:>2} steps, span {:.2}s ({:+.2}s..{:+.2}s); step time avg {:.3}s max \
             {:.3}s (ready delay {:.1}s); start delay after ready avg {:.3}s max {:.3}s",
            ids.len(),
            secs(first, *last),
            secs(started, first),
            secs(started, *last),
            mean(&durations),
            max(&durations),
            if phase == "provision" {
                ready.as_secs_f64()
            } else {
                0.0
            },
            mean(&waits),
            max(&waits),
        );
    }
    // The chain that decided the end: from the last step to finish, back through the dependency
    // that finished last, splitting its time into step work and waiting to be started.
    let Some((&last, _)) = end.iter().max_by_key(|(_, t)| **t) else {
        return;
    };
    let mut chain = vec![last];
    loop {
        let step = &steps(record)[*chain.last().unwrap() as usize];
        let previous = after(step)
            .filter(|d| end.contains_key(&(*d as u64)))
            .max_by_key(|d| end[&(*d as u64)]);
        match previous {
            Some(d) => chain.push(d as u64),
            None => break,
        }
    }
    chain.reverse();
    let work: f64 = chain.iter().map(|i| secs(start[i], end[i])).sum();
    let span = secs(start[&chain[0]], end[&last]);
    println!(
        "  critical chain as run: {} steps, {span:.2}s = {work:.2}s in steps + {:.2}s between \
         them; {:.2}s before its first step, {:.2}s after its last",
        chain.len(),
        span - work,
        secs(started, start[&chain[0]]),
        secs(end[&last], finished),
    );
}

/// `verb resource[/subresource][ dry-run][ → status]`: statuses other than 2xx are told apart.
fn kind(request: &Request) -> String {
    let mut key = format!("{} {}", request.verb, request.resource);
    if let Some(sub) = &request.subresource {
        key.push('/');
        key.push_str(sub);
    }
    if request.dry_run {
        key.push_str(" (dry run)");
    }
    if !(200..300).contains(&request.status) {
        key.push_str(&format!(" → {}", request.status));
    }
    key
}

fn counts(log: &[Request]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in log {
        *counts.entry(kind(request)).or_default() += 1;
    }
    counts
}

/// The most frequent requests of one command.
fn busiest(log: &[Request], top: usize) {
    let mut counts: Vec<(String, usize)> = counts(log).into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown: Vec<String> = counts
        .iter()
        .take(top)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!("  {} API requests; most: {}", log.len(), shown.join(", "));
}

fn requests_table(runs: &[(&str, Duration, Vec<Request>)]) {
    let per_run: Vec<BTreeMap<String, usize>> = runs.iter().map(|(_, _, l)| counts(l)).collect();
    let mut keys: Vec<&String> = per_run.iter().flat_map(|c| c.keys()).collect();
    keys.sort();
    keys.dedup();
    print!("{:<52}", "");
    for (name, _, _) in runs {
        print!(" {name:>9}");
    }
    println!();
    for key in keys {
        print!("{key:<52}");
        for counts in &per_run {
            print!(" {:>9}", counts.get(key).copied().unwrap_or(0));
        }
        println!();
    }
    print!("{:<52}", "total");
    for (_, _, log) in runs {
        print!(" {:>9}", log.len());
    }
    println!();
    print!("{:<52}", "wall");
    for (_, wall, _) in runs {
        print!(" {:>8.2}s", wall.as_secs_f64());
    }
    println!();
}

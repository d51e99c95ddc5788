//! `cargo bench --bench kubernetes` (release profile; `--profile dev` for a dev build): the
//! Kubernetes target against the in-process test API server (`convoy_test_support::kube_api`,
//! served over HTTP), or against a real kube-apiserver + controller-manager when
//! `CONVOY_TEST_KUBECONFIG` names one — `tests/support/k8s/with-cluster.sh cargo bench --bench
//! kubernetes`. The binary connects through a kubeconfig, as it would to a cluster.
//!
//! 1. A generated project (`fleet::write`: KUBE_SERVICES services, default 50, in KUBE_DEPTH
//!    layers, default 5; 2 replicas each) deployed to `staging` (blue/green, no bake): the first
//!    release (all new), a second where every service changed, a rollback to the first while its
//!    revisions are warm, and the rollback of a release SIGKILLed once its provisions started.
//!    Each row against two bounds: the critical path (the longest chain of the plan's steps, a
//!    provision weighing one measured readiness — a 2-replica Deployment from create to
//!    available on this server — and anything else nothing), and a peer: the same Deployments
//!    created and awaited by watch at once (`provision: parallel`) or layer by layer
//!    (`ordered`), or for a rollback the bare writes of every stable Service, layer by layer, a
//!    layer's writes concurrent. On the in-process server, requests in all and per service; on
//!    any, each run's peak memory. Then, from the release records' journals, where the time went,
//!    and on the in-process server each command's timeline by its requests' answers: start to
//!    first answer, first write, and its longest silences (the process decoding or planning).
//! 2. The API requests of deploying one service (in-process server only), by verb and resource.
//!
//! Figures only; nothing is asserted about speed. KUBE_READY_MS sets the pods' readiness delay
//! (in-process server and stand-in kubelet alike); KUBE_PROVISION (`parallel`, the default, or
//! `ordered`) the policy's `provision`.

#[allow(dead_code)] // `fleet::write_host` is the rollout bench's
mod fleet;
mod journal;
mod peak;

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
    context: String,
}

/// The server: the in-process one (whose request log counts requests), or a real one.
struct Server {
    fake: Option<ApiServer>,
    client: kube::Client,
    kubeconfig: std::path::PathBuf,
    context: String,
    describe: String,
    _served: Option<convoy_test_support::kube_api::Served>,
}

impl Server {
    fn clear(&self) {
        if let Some(fake) = &self.fake {
            fake.clear_requests();
        }
    }

    /// The requests since `clear`; `None` on a real server (it keeps no log we can read).
    fn requests(&self) -> Option<Vec<Request>> {
        self.fake.as_ref().map(|f| f.requests())
    }
}

fn main() {
    peak::trampoline();
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
    let scratch = tempfile::tempdir().unwrap();
    let server = match std::env::var_os("CONVOY_TEST_KUBECONFIG").filter(|p| !p.is_empty()) {
        Some(path) => runtime.block_on(real_server(path.into())),
        None => runtime.block_on(fake_server(scratch.path(), ready)),
    };
    let suffix = if server.fake.is_some() {
        String::new()
    } else {
        format!("-{}", std::process::id())
    };
    let (fleet_ns, one_ns) = (format!("fleet{suffix}"), format!("one{suffix}"));
    for namespace in [&fleet_ns, &one_ns] {
        runtime.block_on(create_namespace(&server.client, namespace, ready));
    }

    // 1. The generated release.
    let fleet = Cluster {
        kubeconfig: server.kubeconfig.clone(),
        namespace: fleet_ns.clone(),
        context: server.context.clone(),
    };
    // What one readiness costs on this server: a 2-replica Deployment from create to available
    // (on the in-process server, exactly the ready delay).
    let readiness = match &server.fake {
        Some(_) => ready,
        None => runtime.block_on(calibrate(&server.client, &fleet_ns)),
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root, services, depth);
    println!(
        "kubernetes: {services} services, depth {depth}, pods Ready {:.1}s after first sight \
         (one 2-replica Deployment measured create → available: {:.2}s), binary {BIN} (profile \
         of this bench), {}, project in {}",
        ready.as_secs_f64(),
        readiness.as_secs_f64(),
        server.describe,
        root.display()
    );
    let mut rows = Vec::new();
    let mut requests = Vec::new();
    let mut starts = Vec::new();
    convoy(root, &fleet, &["build"]);
    server.clear();
    starts.push(Instant::now());
    let (first, memory) = timed(root, &fleet, &["deploy", "--env", "staging"]);
    requests.push(server.requests());
    rows.push((
        "first deploy (all new)",
        first,
        memory,
        release(root, &fleet, 1),
    ));

    fleet::write_sources(root, services, 2);
    commit_all(root, "fleet, revision 2: every service changed");
    convoy(root, &fleet, &["build"]);
    server.clear();
    starts.push(Instant::now());
    let (second, memory) = timed(root, &fleet, &["deploy", "--env", "staging"]);
    requests.push(server.requests());
    rows.push((
        "second deploy (all changed)",
        second,
        memory,
        release(root, &fleet, 2),
    ));

    server.clear();
    starts.push(Instant::now());
    let (back, memory) = timed(root, &fleet, &["rollback", "--env", "staging"]);
    requests.push(server.requests());
    rows.push((
        "rollback to release 1 (warm)",
        back,
        memory,
        release(root, &fleet, 3),
    ));

    // A release killed (SIGKILL) once its provisions have started, then rolled back.
    fleet::write_sources(root, services, 3);
    commit_all(root, "fleet, revision 3");
    convoy(root, &fleet, &["build"]);
    killed_mid_provision(root, &fleet);
    server.clear();
    starts.push(Instant::now());
    // It ends as "release 4 failed and was rolled back": non-zero by design.
    let cost = peak::measured(command(root, &fleet, &["rollback", "--env", "staging"]));
    assert!(cost.stdout.contains("rolled back"), "{}", cost.stdout);
    requests.push(server.requests());
    rows.push((
        "rollback of a killed release",
        cost.wall,
        cost.peak,
        release(root, &fleet, 4),
    ));

    // The bare API work of the warm rollback: one write to each stable Service, layer by layer
    // from the clients down, each layer's writes concurrent.
    let bare = runtime.block_on(bare_switches(&server.client, &fleet_ns, services, depth));
    // The bare API work of provisioning the same shape: 2-replica Deployments created and
    // awaited by watch, layer by layer (`ordered`) or all at once (`parallel`), concurrent within
    // a layer: what a hand-written layered kubectl script does at the least.
    let ordered = std::env::var("KUBE_PROVISION").is_ok_and(|p| p == "ordered");
    let layers = if ordered { depth } else { 1 };
    let peer = runtime.block_on(bare_provision(
        &server.client,
        &fleet_ns,
        "bare",
        services,
        layers,
    ));

    println!();
    println!(
        "{:<30} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>8} {:>7}   steps (provision/switch/cleanup/rollback)",
        "", "wall", "bound", "ratio", "peer", "ratio", "requests", "/service", "peak"
    );
    for ((name, wall, memory, record), log) in rows.iter().zip(&requests) {
        // A rollback provisions nothing: all of its time is Convoy's and the API's.
        let bound = if name.starts_with("rollback") {
            Duration::ZERO
        } else {
            critical_path(record, readiness)
        };
        let ratio = if bound.is_zero() {
            "-".to_string()
        } else {
            format!("{:.2}", wall.as_secs_f64() / bound.as_secs_f64())
        };
        let count = |phase: &str| steps(record).iter().filter(|s| s["phase"] == phase).count();
        let rollback = record["rollback"]["steps"].as_array().map_or(0, Vec::len);
        let requests = log
            .as_ref()
            .map_or("-".to_string(), |l| l.len().to_string());
        let per_service = log.as_ref().map_or("-".to_string(), |l| {
            format!("{:.1}", l.len() as f64 / services as f64)
        });
        let memory = format!("{}MB", memory / 1_000_000);
        let (peer, peer_ratio) = if bound.is_zero() {
            (bare, wall.as_secs_f64() / bare.as_secs_f64())
        } else {
            (peer, wall.as_secs_f64() / peer.as_secs_f64())
        };
        println!(
            "{name:<30} {:>8.2}s {:>8.2}s {ratio:>7} {:>8.2}s {peer_ratio:>7.2} {requests:>9} {per_service:>8} {memory:>7}   {}/{}/{}/{rollback}",
            wall.as_secs_f64(),
            bound.as_secs_f64(),
            peer.as_secs_f64(),
            count("provision"),
            count("switch"),
            count("cleanup"),
        );
    }
    println!();
    println!(
        "rollback of the {services}-service release while warm: {:.2}s; the bare API work \
         ({services} Service writes, {depth} layers, concurrent within a layer): {:.2}s → ratio \
         {:.2}",
        back.as_secs_f64(),
        bare.as_secs_f64(),
        back.as_secs_f64() / bare.as_secs_f64()
    );
    // The issue's own measure of the bare work: the same writes with kubectl, one process per
    // patch (start-up, kubeconfig, connection and all), when a kubectl is on PATH.
    if let Some(kubectl) = kubectl_switches(&fleet, services, depth) {
        println!(
            "the same {services} Service writes with kubectl (one `kubectl patch` per Service, \
             a layer's at once): {:.2}s → ratio {:.2}",
            kubectl.as_secs_f64(),
            back.as_secs_f64() / kubectl.as_secs_f64()
        );
    }
    for (((name, wall, _, record), log), started) in rows.iter().zip(&requests).zip(&starts) {
        println!();
        breakdown(name, *wall, record, readiness);
        if let Some(log) = log {
            busiest(log, 6);
            timeline(log, *started, *wall);
        }
    }

    // 2. One service.
    let one = Cluster {
        kubeconfig: server.kubeconfig.clone(),
        namespace: one_ns.clone(),
        context: server.context.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project(root, 1, 1);
    convoy(root, &one, &["build"]);
    let mut runs = Vec::new();
    server.clear();
    let (wall, _) = timed(root, &one, &["deploy", "--env", "staging"]);
    runs.push(("first", wall, server.requests()));
    fleet::write_sources(root, 1, 2);
    commit_all(root, "svc-0, revision 2");
    convoy(root, &one, &["build"]);
    server.clear();
    let (wall, _) = timed(root, &one, &["deploy", "--env", "staging"]);
    runs.push(("change", wall, server.requests()));
    server.clear();
    let (wall, _) = timed(root, &one, &["rollback", "--env", "staging"]);
    runs.push(("rollback", wall, server.requests()));
    if runs.iter().all(|(_, _, log)| log.is_some()) {
        println!();
        println!(
            "== API requests of deploying one service (a 1-service project, namespace `one`; each \
             whole `convoy` command: connect, lock, observe, dry run, steps, records)"
        );
        let runs: Vec<(&str, Duration, Vec<Request>)> = runs
            .into_iter()
            .map(|(n, w, l)| (n, w, l.unwrap_or_default()))
            .collect();
        requests_table(&runs);
    }
    if server.fake.is_none() {
        for namespace in [fleet_ns, one_ns] {
            let api: Api<Namespace> = Api::all(server.client.clone());
            let _ = runtime.block_on(api.delete(&namespace, &Default::default()));
        }
    }
}

async fn fake_server(scratch: &Path, ready: Duration) -> Server {
    let server = ApiServer::new();
    server.ready_delay(ready);
    let served = server.serve().await;
    let client = server.client();
    let kubeconfig = scratch.join("kubeconfig");
    served.write_kubeconfig(&kubeconfig, CONTEXT, "default");
    Server {
        describe: format!("test API server at {}", served.url()),
        fake: Some(server),
        client,
        kubeconfig,
        context: CONTEXT.to_string(),
        _served: Some(served),
    }
}

/// The cluster `CONVOY_TEST_KUBECONFIG` names (`tests/support/k8s/with-cluster.sh cargo bench
/// --bench kubernetes`): a real kube-apiserver and controller-manager.
async fn real_server(kubeconfig: std::path::PathBuf) -> Server {
    let config = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read the kubeconfig");
    let context = config.current_context.clone().expect("a current context");
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .expect("kubeconfig");
    let describe = format!("real API server at {}", config.cluster_url);
    Server {
        fake: None,
        client: kube::Client::try_from(config).expect("client"),
        kubeconfig,
        context,
        describe,
        _served: None,
    }
}

/// A namespace whose pods the stand-in kubelet makes Ready `ready` after it first sees them.
async fn create_namespace(client: &kube::Client, name: &str, ready: Duration) {
    let api: Api<Namespace> = Api::all(client.clone());
    let annotations = [(
        "convoy.dev/test-ready-delay".to_string(),
        ready.as_secs_f64().to_string(),
    )];
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(annotations.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &object).await.unwrap();
}

/// How long a 2-replica Deployment takes from create to all replicas available, followed by a
/// watch: the readiness one provision cannot beat, as `kubectl rollout status` would see it.
async fn calibrate(client: &kube::Client, namespace: &str) -> Duration {
    let mut samples = Vec::new();
    for round in 0..3 {
        let prefix = format!("calibrate-{round}");
        samples.push(bare_provision(client, namespace, &prefix, 1, 1).await);
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// Starts a deploy and SIGKILLs it once its first provision has been journaled as started.
fn killed_mid_provision(dir: &Path, cluster: &Cluster) {
    use std::io::BufRead;
    let mut child = command(
        dir,
        cluster,
        &["--output", "json", "deploy", "--env", "staging"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("run convoy");
    let stdout = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains("\"step_started\"") && line.contains("\"provision\"") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `services` 2-replica Deployments in `layers` groups, each group created at once and awaited
/// (all available) before the next; returns the time, deleting them after.
async fn bare_provision(
    client: &kube::Client,
    namespace: &str,
    prefix: &str,
    services: usize,
    layers: usize,
) -> Duration {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let per_layer = services.div_ceil(layers.max(1));
    let started = Instant::now();
    for layer in 0..layers {
        let group = (layer * per_layer)..((layer + 1) * per_layer).min(services);
        let made = group.map(|index| {
            let api = api.clone();
            async move {
                let name = format!("{prefix}-{index}");
                let object: Deployment = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"bare": name}},
                        "template": {
                            "metadata": {"labels": {"bare": name}},
                            "spec": {"containers": [{"name": "c", "image": "registry.example.com/peer"}]},
                        },
                    },
                }))
                .unwrap();
                api.create(&PostParams::default(), &object).await.unwrap();
                let available = |d: Option<&Deployment>| {
                    d.and_then(|d| d.status.as_ref())
                        .and_then(|s| s.available_replicas)
                        == Some(2)
                };
                // A watch can expire (410) while a thousand Deployments change at once: as a
                // hand-written peer would, start it again (from a fresh list).
                for attempt in 1.. {
                    let waited =
                        kube::runtime::wait::await_condition(api.clone(), &name, available).await;
                    match waited {
                        Ok(_) => break,
                        Err(e) if attempt < 10 => eprintln!("peer: {name}: {e}; watching again"),
                        Err(e) => panic!("peer: {name}: {e}"),
                    }
                }
            }
        });
        futures::future::join_all(made).await;
    }
    let took = started.elapsed();
    for index in 0..services {
        let _ = api
            .delete(&format!("bare-{index}"), &Default::default())
            .await;
    }
    took
}

/// Layer by layer from the clients down, a merge patch of each stable Service (an annotation),
/// a layer's patches concurrent: what a hand-written rollback with kubectl does at the least.
async fn bare_switches(
    client: &kube::Client,
    namespace: &str,
    services: usize,
    depth: usize,
) -> Duration {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Patch, PatchParams};
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let per_layer = services.div_ceil(depth.max(1));
    let started = Instant::now();
    for layer in (0..depth).rev() {
        let first = layer * per_layer;
        let last = ((layer + 1) * per_layer).min(services);
        let patches = (first..last).map(|index| {
            let api = api.clone();
            async move {
                let patch =
                    serde_json::json!({"metadata": {"annotations": {"bench/touched": "1"}}});
                api.patch(
                    &format!("svc-{index}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .unwrap();
            }
        });
        futures::future::join_all(patches).await;
    }
    started.elapsed()
}

/// [`bare_switches`] with one `kubectl patch` process per Service write, a layer's processes run
/// at once; `None` when no kubectl runs here.
fn kubectl_switches(cluster: &Cluster, services: usize, depth: usize) -> Option<Duration> {
    let kubectl = |args: &[&str]| {
        let mut command = Command::new("kubectl");
        command
            .args(["--kubeconfig", &cluster.kubeconfig.to_string_lossy()])
            .args([
                "--context",
                &cluster.context,
                "--namespace",
                &cluster.namespace,
            ])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    let found = kubectl(&["version", "--client"]).status();
    if !found.is_ok_and(|s| s.success()) {
        return None;
    }
    let per_layer = services.div_ceil(depth.max(1));
    let patch = r#"{"metadata":{"annotations":{"bench/touched":"2"}}}"#;
    let started = Instant::now();
    for layer in (0..depth).rev() {
        let first = layer * per_layer;
        let last = ((layer + 1) * per_layer).min(services);
        let children: Vec<_> = (first..last)
            .map(|index| {
                let name = format!("service/svc-{index}");
                kubectl(&["patch", &name, "--type", "merge", "-p", patch])
                    .spawn()
                    .expect("run kubectl")
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success(), "kubectl patch failed");
        }
    }
    Some(started.elapsed())
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
    // KUBE_QPS / KUBE_BURST: the target's client-side request limit (Convoy's defaults else).
    let limit = |name: &str, key: &str| {
        std::env::var(name)
            .map(|v| format!(", {key}: {v}"))
            .unwrap_or_default()
    };
    let limits = format!(
        "{}{}",
        limit("KUBE_QPS", "qps"),
        limit("KUBE_BURST", "burst")
    );
    let text = text.replace(
        staging,
        &format!(
            "staging: {{ target: {{ kubernetes: {{ namespace: fleet{limits} }} }}, \
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
    let output = command(dir, cluster, args).output().expect("run convoy");
    assert!(
        output.status.success(),
        "convoy {args:?}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn command(dir: &Path, cluster: &Cluster, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--yes", "--no-progress", "--context", &cluster.context])
        .args(["--namespace", &cluster.namespace])
        .current_dir(dir)
        .env_remove("CONVOY_PROJECT")
        .env_remove("CONVOY_KUBE_CONTEXT")
        .env_remove("CONVOY_NAMESPACE")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("FLEET_DB", "bench-password")
        .env("NO_COLOR", "1");
    command
}

/// Runs convoy like [`convoy`]; its wall time and peak memory.
fn timed(dir: &Path, cluster: &Cluster, args: &[&str]) -> (Duration, u64) {
    let cost = peak::measured(command(dir, cluster, args));
    assert!(cost.success, "convoy {args:?}\n{}", cost.stdout);
    (cost.wall, cost.peak)
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
         journal {} entries",
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
        let Some(last) = ids.iter().filter_map(|i| end.get(i)).max() else {
            continue; // killed before any finished
        };
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
    let mut slowest: Vec<(f64, String)> = end
        .iter()
        .filter_map(|(i, t)| {
            let step = &steps(record)[*i as usize];
            let action = step["action"].to_string();
            Some((
                secs(*start.get(i)?, *t),
                format!("{} {action}", step["service"]),
            ))
        })
        .collect();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (took, what) in slowest.iter().take(3) {
        println!("  slow step {took:.3}s: {what}");
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

/// Where one command's time went between its requests (in-process server: each answer's time):
/// process start → first answer (load, render, connect), the first write that is not a dry run,
/// and the longest silences — the process working (decoding, planning) or waiting on something
/// that is not the server.
fn timeline(log: &[Request], started: Instant, wall: Duration) {
    let mut answered: Vec<&Request> = log.iter().collect();
    answered.sort_by_key(|r| r.answered);
    let (Some(first), Some(last)) = (answered.first(), answered.last()) else {
        return;
    };
    let at = |r: &Request| r.answered.saturating_duration_since(started).as_secs_f64();
    let reads = ["get", "list", "watch"];
    let write = answered
        .iter()
        .find(|r| !r.dry_run && !reads.contains(&r.verb.as_str()))
        .map_or("-".to_string(), |r| format!("{:.2}s ({})", at(r), kind(r)));
    println!(
        "  timeline: first answer {:.2}s ({}), first write {write}, last answer {:.2}s, exit {:.2}s",
        at(first),
        kind(first),
        at(last),
        wall.as_secs_f64()
    );
    let mut gaps: Vec<(Duration, &Request, &Request)> = answered
        .windows(2)
        .map(|w| (w[1].answered - w[0].answered, w[0], w[1]))
        .collect();
    gaps.sort_by_key(|g| std::cmp::Reverse(g.0));
    for (gap, before, after) in gaps
        .iter()
        .take(5)
        .filter(|g| g.0 >= Duration::from_millis(20))
    {
        println!(
            "    {:.2}s silent from {:.2}s: after {} before {}",
            gap.as_secs_f64(),
            at(before),
            kind(before),
            kind(after)
        );
    }
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

//! `cargo bench --profile dev --bench rollout` (issue 5): wall time of deploying a generated
//! 50-service host project (depth 5, a 200 ms health command per service) against the lower
//! bound of the critical path — the health commands along the deepest chain, provision phase then
//! switch phase — as a ratio. Three rollouts: the first release (all new), a second release where
//! every service changed (provision + switch + cleanup), and a rollback to the first (warm
//! versions: switches only). Builds are untimed. Then, from the release records' journals, where
//! the time went. Figures only; nothing is asserted about speed.
//! ROLLOUT_SERVICES / ROLLOUT_DEPTH / ROLLOUT_HEALTH_MS change the shape.

#[allow(dead_code)] // `fleet::write` is the render bench's
mod fleet;
mod journal;

use journal::{after, at, commit_all, env_number, git, max, mean, secs, steps};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_convoy");

fn main() {
    let services = env_number("ROLLOUT_SERVICES", 50);
    let depth = env_number("ROLLOUT_DEPTH", 5);
    let health_ms = env_number("ROLLOUT_HEALTH_MS", 200) as u64;
    let health = Duration::from_millis(health_ms);
    let health_command = format!("sleep {}", health.as_secs_f64());

    // ROLLOUT_DIR puts the project elsewhere (e.g. /dev/shm, where fsync costs nothing).
    let dir = match std::env::var_os("ROLLOUT_DIR") {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let root = dir.path();
    fleet::write_host(root, services, depth, &health_command, 1);
    git(root, &["init", "-q"]);
    commit_all(root, "fleet, revision 1");
    println!(
        "rollout: {services} services, depth {depth}, health `{health_command}`, binary {BIN} (profile of this bench), in {}",
        root.display()
    );

    let mut rows = Vec::new();
    convoy(root, &["build"]);
    let first = timed(root, &["deploy", "--env", "local"]);
    rows.push(("first deploy (all new)", first, release(root, 1)));

    fleet::write_host(root, services, depth, &health_command, 2);
    commit_all(root, "fleet, revision 2: every service changed");
    convoy(root, &["build"]);
    let second = timed(root, &["deploy", "--env", "local"]);
    rows.push(("second deploy (all changed)", second, release(root, 2)));

    let back = timed(root, &["rollback", "--env", "local"]);
    rows.push(("rollback to release 1", back, release(root, 3)));

    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>7}   steps (provision/switch/cleanup)",
        "", "wall", "bound", "ratio"
    );
    for (name, wall, record) in &rows {
        let bound = critical_path(record, health);
        let count = |phase: &str| steps(record).iter().filter(|s| s["phase"] == phase).count();
        println!(
            "{name:<28} {:>8.2}s {:>8.2}s {:>7.2}   {}/{}/{}",
            wall.as_secs_f64(),
            bound.as_secs_f64(),
            wall.as_secs_f64() / bound.as_secs_f64(),
            count("provision"),
            count("switch"),
            count("cleanup"),
        );
    }
    for (name, wall, record) in &rows {
        println!();
        breakdown(name, *wall, record, health, root);
    }
    overheads(root, &health_command, services);
}

/// Runs convoy in `dir` non-interactively and insists that it succeeded.
fn convoy(dir: &Path, args: &[&str]) {
    let output = Command::new(BIN)
        .args(args)
        .args(["--yes", "--no-progress"])
        .current_dir(dir)
        .env_remove("CONVOY_PROJECT")
        .env("NO_COLOR", "1")
        .output()
        .expect("run convoy");
    assert!(
        output.status.success(),
        "convoy {args:?}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn timed(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    convoy(dir, args);
    started.elapsed()
}

fn release(root: &Path, number: u64) -> Value {
    let path = records_dir(root).join(format!("{number:08}.json"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

fn records_dir(root: &Path) -> PathBuf {
    root.join(".convoy/srv/releases")
}

/// The lower bound: the longest chain of the plan's steps, weighting a provision or a switch by
/// one health command (each runs it once) and anything else by nothing.
fn critical_path(record: &Value, health: Duration) -> Duration {
    let mut finish: Vec<Duration> = Vec::new();
    for step in steps(record) {
        let start = after(step)
            .map(|d| finish[d])
            .max()
            .unwrap_or(Duration::ZERO);
        let cost = match step["phase"].as_str().unwrap() {
            "provision" | "switch" => health,
            _ => Duration::ZERO,
        };
        finish.push(start + cost);
    }
    finish.into_iter().max().unwrap_or(Duration::ZERO)
}

/// Where one rollout's wall time went, from its release record's journal.
fn breakdown(name: &str, wall: Duration, record: &Value, health: Duration, root: &Path) {
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
    let size = std::fs::metadata(
        records_dir(root).join(format!("{:08}.json", record["number"].as_u64().unwrap())),
    )
    .map(|m| m.len())
    .unwrap_or(0);
    println!("== {name}");
    println!(
        "  process wall {:.2}s; release record started→finished {inside:.2}s; before/after the record \
         (process start, load, git, observe, plan, lock) {:.2}s",
        wall.as_secs_f64(),
        wall.as_secs_f64() - inside
    );
    let (saves, serialize, write) = replay_saves(record, root);
    println!(
        "  journal: {} entries; for comparison, rewriting the whole record per entry (the design before \
         the append-only journal; {saves} saves, {} KiB at the end) would cost {:.2}s, of which \
         serializing {serialize:.2}s and write + fsync + rename {:.2}s",
        journal.len(),
        size / 1024,
        serialize + write,
        write,
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
            "  {phase:<9} {:>2} steps, span {:.2}s ({:+.2}s..{:+.2}s); step time avg {:.3}s max {:.3}s \
             (health {:.1}s); start delay after ready avg {:.3}s max {:.3}s",
            ids.len(),
            secs(first, *last),
            secs(started, first),
            secs(started, *last),
            mean(&durations),
            max(&durations),
            if phase == "cleanup" {
                0.0
            } else {
                health.as_secs_f64()
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
        "  critical chain as run: {} steps, {span:.2}s = {work:.2}s in steps + {:.2}s between them; \
         {:.2}s before its first step, {:.2}s after its last",
        chain.len(),
        span - work,
        secs(started, start[&chain[0]]),
        secs(end[&last], finished),
    );
}

/// Saves the record as the executor did, once per journal entry (plus the final save), through
/// the host target's release store into a scratch directory: the time the journal costs.
fn replay_saves(record: &Value, root: &Path) -> (usize, f64, f64) {
    use convoy::execute::{ReleaseRecord, ReleaseStore};
    let full: ReleaseRecord = serde_json::from_value(record.clone()).unwrap();
    let scratch = root.join("journal-replay");
    let store = convoy::targets::host::ReleaseFiles::new(&scratch);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut serialize = 0.0;
    let mut total = 0.0;
    let mut saves = 0;
    let journals = (full.journal.len(), full.rollback_journal.len());
    for k in 0..=journals.0 + journals.1 {
        let mut partial = full.clone();
        partial.journal.truncate(k.min(journals.0));
        partial
            .rollback_journal
            .truncate(k.saturating_sub(journals.0));
        let started = Instant::now();
        std::hint::black_box(serde_json::to_vec_pretty(&partial).unwrap());
        serialize += started.elapsed().as_secs_f64();
        let started = Instant::now();
        runtime.block_on(store.save(&partial)).unwrap();
        total += started.elapsed().as_secs_f64();
        saves += 1;
    }
    std::fs::remove_dir_all(&scratch).unwrap();
    (saves, serialize, total - serialize)
}

/// Costs measured outside convoy, for comparison with the breakdowns.
fn overheads(root: &Path, health_command: &str, services: usize) {
    println!();
    println!("== costs outside convoy");
    let started = Instant::now();
    for _ in 0..5 {
        convoy(root, &["--version"]);
    }
    println!(
        "  `convoy --version` (process start): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0 / 5.0
    );
    let started = Instant::now();
    convoy(root, &["status", "--env", "local"]);
    println!(
        "  `convoy status --env local` (start, load, observe): {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    for _ in 0..5 {
        let ok = Command::new("sh")
            .args(["-c", health_command])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    println!(
        "  one `sh -c \"{health_command}\"`, serially: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0 / 5.0
    );
    let started = Instant::now();
    let children: Vec<_> = (0..services)
        .map(|_| {
            Command::new("sh")
                .args(["-c", health_command])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    println!(
        "  {services} of them at once: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // A release record rewrite as the journal does it: the whole file, fsync, rename.
    let record = records_dir(root).join(format!("{:08}.json", 2));
    let bytes = std::fs::read(&record).unwrap();
    let scratch = root.join("fsync-probe");
    std::fs::create_dir_all(&scratch).unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        let mut file = tempfile::NamedTempFile::new_in(&scratch).unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file.as_file().sync_all().unwrap();
        file.persist(scratch.join("record.json")).unwrap();
    }
    println!(
        "  rewrite + fsync + rename of a {} KiB record: {:.2} ms",
        bytes.len() / 1024,
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let started = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(serde_json::to_vec_pretty(&value).unwrap());
    }
    println!(
        "  serializing it (serde_json::Value, pretty; this bench's profile): {:.2} ms",
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
}

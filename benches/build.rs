//! `cargo bench --profile dev --bench build`: a generated 200-service repository where one
//! service changed (the build should cost about one recipe), and packaging throughput of a large
//! output against `git archive | gzip` on the same tree. Figures only; nothing is asserted.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use convoy::artifacts::LocalStore;
use convoy::build::{BuildRequest, NoProgress, build, package};
use convoy::config::Project;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=B", "-c", "user.email=b@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut yaml = String::from("project: fleet\nservices:\n");
    for i in 0..200 {
        yaml.push_str(&format!(
            "  s{i}: {{ path: services/s{i}, build: ['mkdir -p dist && cp -r src/. dist/'], output: dist }}\n"
        ));
        let src = root.join(format!("services/s{i}/src"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main"), format!("service {i}\n")).unwrap();
    }
    std::fs::write(root.join("convoy.yaml"), yaml).unwrap();
    std::fs::write(root.join(".gitignore"), ".convoy/\n").unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "fleet"]);
    let project = Project::load(&root.join("convoy.yaml")).unwrap();
    let store = LocalStore::new(root.join("store"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request = BuildRequest {
        rev: "HEAD".into(),
        services: Vec::new(),
    };
    let started = Instant::now();
    runtime
        .block_on(build(&project, &request, &store, &NoProgress))
        .unwrap();
    println!("200 services, cold build:          {:?}", started.elapsed());
    std::fs::write(root.join("services/s7/src/main"), "changed\n").unwrap();
    git(root, &["commit", "-qam", "s7"]);
    let started = Instant::now();
    let outcomes = runtime
        .block_on(build(&project, &request, &store, &NoProgress))
        .unwrap();
    let built = outcomes.iter().filter(|o| o.status() == "built").count();
    println!(
        "200 services, one changed ({built} built): {:?}",
        started.elapsed()
    );

    // Packaging: ~200 MB of mixed files (compressible text and incompressible bytes).
    let big = tempfile::tempdir().unwrap();
    let out = big.path().join("dist");
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut total = 0usize;
    for i in 0..400 {
        let sub = out.join(format!("d{}", i % 20));
        std::fs::create_dir_all(&sub).unwrap();
        let bytes: Vec<u8> = if i % 2 == 0 {
            format!("line {i} of some text that compresses well\n")
                .repeat(12_000)
                .into_bytes()
        } else {
            (0..500_000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        total += bytes.len();
        std::fs::write(sub.join(format!("f{i}")), bytes).unwrap();
    }
    let mb = total as f64 / 1e6;
    let started = Instant::now();
    let packaged = package(
        "big",
        big.path(),
        &["dist".into()],
        0,
        &big.path().join("a.tgz"),
    )
    .unwrap();
    let ours = started.elapsed();
    println!(
        "package {mb:.0} MB: {ours:?} ({:.1} MB/s, {} bytes out)",
        mb / ours.as_secs_f64(),
        packaged.size
    );
    git(big.path(), &["init", "-q"]);
    git(big.path(), &["add", "-A"]);
    git(big.path(), &["commit", "-qm", "big"]);
    let started = Instant::now();
    let ok = Command::new("sh")
        .args(["-c", "git archive HEAD dist | gzip > g.tgz"])
        .current_dir(big.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let theirs = started.elapsed();
    println!(
        "git archive | gzip {mb:.0} MB: {theirs:?} ({:.1} MB/s)",
        mb / theirs.as_secs_f64()
    );
}

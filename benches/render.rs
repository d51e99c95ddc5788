//! Renders and validates a generated fleet (1,000 services × 3 environments by default) and, if
//! `kubectl` is installed, times `kubectl kustomize` over the same objects for a ratio.
//! `cargo bench --profile dev --bench render` (FLEET_SERVICES / FLEET_DEPTH to change the size).

mod fleet;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use convoy::config::Project;
use convoy::render::{RenderInput, SecretMode, ServiceVersion, render_environment};

fn main() {
    let services = env_number("FLEET_SERVICES", 1000);
    let depth = env_number("FLEET_DEPTH", 6);
    let dir = tempfile::tempdir().unwrap();
    fleet::write(dir.path(), services, depth);

    let started = Instant::now();
    let project = Project::load(&dir.path().join("convoy.yaml")).expect("fleet project loads");
    let version = ServiceVersion {
        version: "1.0.0".into(),
        commit: "abc1234".into(),
        artifact_sha256: None,
        ..ServiceVersion::default()
    };
    let versions: BTreeMap<String, ServiceVersion> = project
        .services
        .keys()
        .map(|name| (name.clone(), version.clone()))
        .collect();
    let load = started.elapsed();

    let started = Instant::now();
    let mut objects = 0;
    let mut streams = Vec::new();
    for environment in project.environments.keys() {
        let input = RenderInput {
            project: &project,
            environment,
            services: &[],
            versions: &versions,
            sets: &[],
            release: 1,
            secrets: SecretMode::Mask,
            namespace: None,
        };
        let rendered = render_environment(&input).expect("fleet renders");
        objects += rendered
            .services
            .iter()
            .map(|s| s.manifests.len())
            .sum::<usize>();
        if rendered.target == "kubernetes" {
            streams.push((environment.clone(), rendered));
        }
    }
    let render = started.elapsed();
    println!("fleet: {services} services, depth {depth}, 3 environments, {objects} objects");
    println!("convoy load: {load:?}, render + validate + lint: {render:?}");

    let kubectl = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output();
    if !kubectl.is_ok_and(|o| o.status.success()) {
        println!("kubectl not installed (or not working): no comparison");
        return;
    }
    // The equivalent kustomize tree: per Kubernetes environment, the same objects as files and a
    // kustomization listing them (kustomize then parses, merges labels and emits them).
    let tree = dir.path().join("kustomize");
    for (environment, rendered) in &streams {
        let env_dir = tree.join(environment);
        let mut resources = String::from(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nlabels: [{ pairs: { convoy.dev/bench: \"yes\" } }]\nresources:\n",
        );
        for (file, text) in rendered.files() {
            let path = env_dir.join(&file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            resources.push_str(&format!("  - {file}\n"));
        }
        std::fs::write(env_dir.join("kustomization.yaml"), resources).unwrap();
    }
    let started = Instant::now();
    for (environment, _) in &streams {
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(tree.join(environment))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let kustomize = started.elapsed();
    let k8s_envs = streams.len();
    println!("kubectl kustomize ({k8s_envs} Kubernetes environments, same objects): {kustomize:?}");
    println!(
        "ratio convoy (3 environments incl. AWS) / kustomize ({k8s_envs}): {:.2}",
        render.as_secs_f64() / kustomize.as_secs_f64()
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

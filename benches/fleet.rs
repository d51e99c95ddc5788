//! A generated project: `services` services whose `depends_on` edges form a DAG of `depth`
//! layers, three environments (two Kubernetes, one AWS) and a few values files.

use std::fmt::Write as _;
use std::path::Path;

pub fn write(dir: &Path, services: usize, depth: usize) {
    let per_layer = services.div_ceil(depth.max(1));
    let mut project =
        String::from("project: fleet\nartifacts: { store: file://.convoy/artifacts }\nservices:\n");
    for index in 0..services {
        let layer = index / per_layer;
        let mut depends = Vec::new();
        if layer > 0 {
            // Two providers from the layer below, so every path down has `depth` layers.
            let below = (layer - 1) * per_layer;
            depends.push(format!("svc-{}", below + index % per_layer));
            depends.push(format!("svc-{}", below + (index * 7 + 3) % per_layer));
            depends.dedup();
        }
        let _ = writeln!(
            project,
            "  svc-{index}: {{ path: services/svc-{index}, port: 8080, image: registry.example.com/fleet/svc-{index}, \
             depends_on: [{}], health: {{ http: /healthz, timeout: 5s }} }}",
            depends.join(", ")
        );
    }
    project.push_str(
        "environments:\n\
         \x20 staging: { target: { kubernetes: { namespace: fleet } } }\n\
         \x20 production: { target: { kubernetes: { namespace: fleet } } }\n\
         \x20 production-ec2: { target: { aws: { region: eu-west-1, ami: ami-123, iam_instance_profile: fleet } } }\n",
    );
    std::fs::write(dir.join("convoy.yaml"), project).unwrap();
    let values = dir.join("values");
    std::fs::create_dir_all(&values).unwrap();
    std::fs::write(
        values.join("common.yaml"),
        "log_level: info\ndatabase: { host: db.internal, password: { secret: { env: FLEET_DB } } }\n",
    )
    .unwrap();
    std::fs::write(values.join("production.yaml"), "replicas: 4\n").unwrap();
    for index in (0..services).step_by(10) {
        let text = format!("feature_{index}: {{ enabled: true }}\n");
        std::fs::write(values.join(format!("svc-{index}.yaml")), text).unwrap();
    }
}

/// Sources for `write`'s services (it writes none; builds need a committed tree per service,
/// and a service's version is the last commit that changed it): one file each, naming
/// `revision`, so bumping it changes every service.
#[allow(dead_code)] // the Kubernetes bench's; render.rs includes this module too
pub fn write_sources(dir: &Path, services: usize, revision: u32) {
    for index in 0..services {
        let src = dir.join(format!("services/svc-{index}/src"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("main"),
            format!("service {index} revision {revision}\n"),
        )
        .unwrap();
    }
}

/// A host project for rollout timing: `services` services in `depth` layers, each depending on
/// one to three services of the layer below (deterministic), each built by a trivial recipe into
/// `dist` and gated by `health_command`; one environment `local` on the host target (bluegreen,
/// no keep-warm delay). `revision` goes into every service's sources, so bumping it changes all.
#[allow(dead_code)] // the rollout bench's; render.rs includes this module too
pub fn write_host(dir: &Path, services: usize, depth: usize, health_command: &str, revision: u32) {
    let per_layer = services.div_ceil(depth.max(1));
    let mut project = String::from(
        "project: hostfleet\nartifacts: { store: file://.convoy/artifacts }\nservices:\n",
    );
    for index in 0..services {
        let layer = index / per_layer;
        let mut depends = Vec::new();
        if layer > 0 {
            let below = (layer - 1) * per_layer;
            let below_count = per_layer.min(services - below);
            for k in 0..=(index % 3) {
                depends.push(below + (index + k * 3) % below_count);
            }
            depends.sort_unstable();
            depends.dedup();
        }
        let depends: Vec<String> = depends.iter().map(|d| format!("svc-{d}")).collect();
        let _ = writeln!(
            project,
            "  svc-{index}: {{ path: services/svc-{index}, build: ['mkdir -p dist && cp -r src/. dist/ && echo built > dist/BUILT'], \
             output: dist, depends_on: [{}], health: {{ command: \"{health_command}\", timeout: 10s }} }}",
            depends.join(", ")
        );
        let src = dir.join(format!("services/svc-{index}/src"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("main"),
            format!("service {index} revision {revision}\n"),
        )
        .unwrap();
        std::fs::write(src.join("config"), format!("port: {}\n", 9000 + index)).unwrap();
    }
    project.push_str(
        "environments:\n\
         \x20 local:\n\
         \x20   target: { host: { root: .convoy/srv } }\n\
         \x20   rollout: { strategy: bluegreen, keep_warm: 0s }\n",
    );
    std::fs::write(dir.join("convoy.yaml"), project).unwrap();
    std::fs::write(dir.join(".gitignore"), ".convoy/\n").unwrap();
}

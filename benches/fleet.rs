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
         \x20 production-ec2: { target: { aws: { region: eu-west-1, ami: ami-123 } } }\n",
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

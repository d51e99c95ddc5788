//! The defaults the real API server fills in on every write, for the fields Convoy's tests read:
//! Deployment strategy, replicas and deadlines, pod-spec and container defaults, Service ports.

use serde_json::{Value, json};

use super::discovery::ResourceDef;

fn default(obj: &mut Value, field: &str, value: Value) {
    if obj.get(field).is_none_or(Value::is_null) {
        obj[field] = value;
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("");
    let tag = image.rsplit('/').next().unwrap_or("");
    let latest = !tag.contains(':') && !image.contains('@') || tag.ends_with(":latest");
    default(
        c,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    for port in c["ports"].as_array_mut().into_iter().flatten() {
        default(port, "protocol", json!("TCP"));
    }
}

fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for c in spec["containers"].as_array_mut().into_iter().flatten() {
        container(c);
    }
}

/// Fills in defaults in place.
pub fn apply(res: &ResourceDef, obj: &mut Value) {
    match res.plural {
        "deployments" => {
            let spec = &mut obj["spec"];
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(spec, "strategy", json!({"type": "RollingUpdate"}));
            if spec["strategy"]["type"] == "RollingUpdate" {
                default(&mut spec["strategy"], "rollingUpdate", json!({}));
                let rolling = &mut spec["strategy"]["rollingUpdate"];
                default(rolling, "maxSurge", json!("25%"));
                default(rolling, "maxUnavailable", json!("25%"));
            }
            pod_spec(&mut spec["template"]["spec"]);
        }
        "replicasets" => {
            default(&mut obj["spec"], "replicas", json!(1));
            pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        "pods" => pod_spec(&mut obj["spec"]),
        "services" => {
            let spec = &mut obj["spec"];
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            for port in spec["ports"].as_array_mut().into_iter().flatten() {
                default(port, "protocol", json!("TCP"));
                let target = port["port"].clone();
                default(port, "targetPort", target);
            }
        }
        _ => {}
    }
}

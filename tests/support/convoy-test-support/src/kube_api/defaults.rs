//! The defaults the real API server fills in on every write, for the fields Convoy's tests read:
//! Deployment strategy, replicas and deadlines, pod-spec and container defaults, Service ports and
//! cluster IPs, Secret `stringData` folded into `data`, the namespace name label.

use base64::Engine;
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
        "secrets" => {
            default(obj, "type", json!("Opaque"));
            if let Some(Value::Object(plain)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                for (k, v) in plain {
                    let encoded =
                        base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or(""));
                    obj["data"][k] = json!(encoded);
                }
            }
        }
        "namespaces" => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        }
        "services" => {
            let spec = &mut obj["spec"];
            default(spec, "ipFamilies", json!(["IPv4"]));
            default(spec, "ipFamilyPolicy", json!("SingleStack"));
            default(spec, "internalTrafficPolicy", json!("Cluster"));
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

/// A cluster IP for a new Service (from the 10.96.0.0/12 range kind clusters use).
pub fn allocate(res: &ResourceDef, obj: &mut Value, seed: u64) {
    let spec = &mut obj["spec"];
    if res.plural != "services" || spec["type"] == "ExternalName" || !spec["clusterIP"].is_null() {
        return;
    }
    let ip = format!("10.96.{}.{}", seed / 250 % 256, seed % 250 + 1);
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
}

/// An update that leaves out allocated values keeps them, as the real server does.
pub fn keep_allocated(res: &ResourceDef, old: &Value, new: &mut Value) {
    if res.plural != "services" {
        return;
    }
    for field in ["clusterIP", "clusterIPs"] {
        if new["spec"][field].is_null() && !old["spec"][field].is_null() {
            new["spec"][field] = old["spec"][field].clone();
        }
    }
}

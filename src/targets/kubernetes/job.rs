//! A release task as a Kubernetes Job, as plain data: its name, the Job built from the revision's
//! rendered pod template, who owns an existing one, and what a finished one's pods say. No
//! request is made here (see `task.rs`).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use sha2::{Digest, Sha256};

/// Seconds a finished task's Job (and its pod, so its log) is kept before the TTL controller
/// deletes it: a day, long enough to read what happened, short enough not to pile up.
pub const TTL_AFTER_FINISHED: i32 = 86_400;
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const TASK_LABEL: &str = "convoy.dev/task";
pub const SERVICE_LABEL: &str = "convoy.dev/service";
pub const REVISION_LABEL: &str = "convoy.dev/revision";
pub const RELEASE_LABEL: &str = "convoy.dev/release";
/// The `convoy.dev/release` value of a task run by hand (`convoy task run`).
pub const BY_HAND_LABEL: &str = "by-hand";

/// The Job of task `task` of Deployment `deployment`: `<deployment>-<task>`, or, beyond the 63
/// characters a `job-name` label value can hold, cut and suffixed with a hash of the whole name
/// so two long names stay apart.
pub fn job_name(deployment: &str, task: &str) -> String {
    let full = format!("{deployment}-{task}");
    if full.len() <= 63 {
        return full;
    }
    let hash = hex::encode(Sha256::digest(full.as_bytes()));
    let cut = full[..54].trim_end_matches('-');
    format!("{cut}-{}", &hash[..8])
}

/// What the Job is made from.
pub struct JobSpec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub service: &'a str,
    pub revision: &'a str,
    pub task: &'a str,
    pub command: &'a str,
    /// `convoy.dev/release`: the release number, or [`BY_HAND_LABEL`].
    pub release: &'a str,
    pub timeout_secs: u64,
}

/// The Job running `spec.command` in the service's container of the revision's pod template
/// (`template`: the rendered Deployment's `spec.template`): its image, env, envFrom, volumes,
/// resources and service account as they are; the command `sh -c <command>`; no probes or
/// ports (a task serves nothing); sidecars dropped (they would keep the Job from finishing).
/// Its pods carry neither the Deployment's selector labels (the stable Service must not send
/// them traffic) nor anything that would make them count as the version's pods.
pub fn build_job(spec: &JobSpec<'_>, template: &serde_json::Value) -> Result<Job, String> {
    let mut pod_spec = template
        .get("spec")
        .cloned()
        .ok_or("the Deployment has no spec.template.spec")?;
    let containers = pod_spec["containers"]
        .as_array()
        .ok_or("the pod template has no containers")?;
    let main = containers
        .iter()
        .find(|c| c["name"] == spec.service)
        .or_else(|| containers.first())
        .cloned()
        .ok_or("the pod template has no containers")?;
    let mut main = main;
    if let Some(container) = main.as_object_mut() {
        for field in [
            "args",
            "ports",
            "readinessProbe",
            "livenessProbe",
            "startupProbe",
            "lifecycle",
        ] {
            container.remove(field);
        }
        container.insert(
            "command".into(),
            serde_json::json!(["sh", "-c", spec.command]),
        );
        let env = container
            .entry("env")
            .or_insert_with(|| serde_json::json!([]));
        if let Some(env) = env.as_array_mut() {
            env.push(serde_json::json!({"name": "CONVOY_TASK", "value": spec.task}));
        }
    }
    pod_spec["containers"] = serde_json::json!([main]);
    pod_spec["restartPolicy"] = "Never".into();
    let labels = labels(spec);
    let job = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": labels,
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.timeout_secs.max(1),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": labels},
                "spec": pod_spec,
            },
        },
    });
    serde_json::from_value(job).map_err(|e| e.to_string())
}

fn labels(spec: &JobSpec<'_>) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (MANAGED_BY, "convoy".to_string()),
        (SERVICE_LABEL, spec.service.to_string()),
        (REVISION_LABEL, spec.revision.to_string()),
        (TASK_LABEL, spec.task.to_string()),
        (RELEASE_LABEL, spec.release.to_string()),
    ])
}

/// Whether an existing Job is this task's, of this revision: made by Convoy for it.
pub fn is_ours(job: &Job, service: &str, revision: &str, task: &str) -> bool {
    let labels = job.metadata.labels.clone().unwrap_or_default();
    let is = |key: &str, value: &str| labels.get(key).is_some_and(|v| v == value);
    is(MANAGED_BY, "convoy")
        && is(SERVICE_LABEL, service)
        && is(REVISION_LABEL, revision)
        && is(TASK_LABEL, task)
}

/// Where a Job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Running,
    Complete,
    /// The Job's `Failed` condition: its reason (`BackoffLimitExceeded`, `DeadlineExceeded`)
    /// and message.
    Failed {
        reason: String,
        message: String,
    },
}

pub fn job_state(job: &Job) -> JobState {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    for condition in conditions.into_iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        match condition.type_.as_str() {
            "Complete" => return JobState::Complete,
            "Failed" => {
                return JobState::Failed {
                    reason: condition.reason.clone().unwrap_or_default(),
                    message: condition.message.clone().unwrap_or_default(),
                };
            }
            _ => {}
        }
    }
    JobState::Running
}

/// A pod's container waiting on an image it cannot get (or a config it cannot use): the Job
/// would only fail at its deadline, so the task fails now.
pub fn stuck(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|s| {
        let waiting = s.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        let blocked = matches!(
            reason,
            "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError"
        );
        blocked.then(|| {
            let message = waiting.message.clone().unwrap_or_default();
            format!("{reason}: {message}")
                .trim_end_matches([' ', ':'])
                .to_string()
        })
    })
}

/// How the task's container ended, from its pods: `exit code 1 (Error)`, `OOMKilled (exit code
/// 137)`, or a pull failure; `None` when no pod says.
pub fn pod_reason(pods: &[Pod]) -> Option<String> {
    for pod in pods {
        if let Some(stuck) = stuck(pod) {
            return Some(stuck);
        }
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for status in statuses.into_iter().flatten() {
            let Some(ended) = status.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                continue;
            };
            let reason = ended.reason.clone().unwrap_or_default();
            return Some(match reason.as_str() {
                "OOMKilled" => format!("OOMKilled (exit code {})", ended.exit_code),
                "" => format!("exit code {}", ended.exit_code),
                _ => format!("exit code {} ({reason})", ended.exit_code),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> serde_json::Value {
        serde_json::json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "api", "app.kubernetes.io/version": "a2"}},
            "spec": {
                "serviceAccountName": "api",
                "volumes": [{"name": "convoy-flags", "configMap": {"name": "shop-flags", "optional": true}}],
                "containers": [
                    {"name": "api", "image": "reg/api:2", "args": ["serve"],
                     "ports": [{"name": "http", "containerPort": 8080}],
                     "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                     "envFrom": [{"configMapRef": {"name": "api-config-1"}}],
                     "resources": {"limits": {"memory": "256Mi"}}},
                    {"name": "proxy", "image": "reg/proxy:1"}
                ]
            }
        })
    }

    fn spec() -> JobSpec<'static> {
        JobSpec {
            name: "api-a2-migrate",
            namespace: "shop",
            service: "api",
            revision: "a2",
            task: "migrate",
            command: "bin/migrate",
            release: "7",
            timeout_secs: 600,
        }
    }

    #[test]
    fn the_job_runs_the_command_in_the_revisions_container_once() {
        let job = serde_json::to_value(build_job(&spec(), &template()).unwrap()).unwrap();
        let job_spec = &job["spec"];
        assert_eq!(job_spec["backoffLimit"], 0);
        assert_eq!(job_spec["activeDeadlineSeconds"], 600);
        assert_eq!(job_spec["ttlSecondsAfterFinished"], TTL_AFTER_FINISHED);
        let pod = &job_spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["serviceAccountName"], "api");
        assert_eq!(pod["volumes"][0]["name"], "convoy-flags");
        let containers = pod["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "the sidecar is dropped");
        let c = &containers[0];
        assert_eq!(c["image"], "reg/api:2");
        assert_eq!(c["command"], serde_json::json!(["sh", "-c", "bin/migrate"]));
        assert_eq!(c["envFrom"][0]["configMapRef"]["name"], "api-config-1");
        assert!(c.get("args").is_none() && c.get("readinessProbe").is_none());
        let labels = &job_spec["template"]["metadata"]["labels"];
        assert!(
            labels.get("app.kubernetes.io/version").is_none(),
            "not selected by the stable Service: {labels}"
        );
        assert_eq!(labels[TASK_LABEL], "migrate");
    }

    #[test]
    fn a_long_name_is_cut_to_63_with_a_hash_and_short_ones_are_kept() {
        assert_eq!(job_name("api-a2", "migrate"), "api-a2-migrate");
        let long = job_name(&format!("api-{}", "f".repeat(60)), "migrate");
        assert_eq!(long.len(), 63);
        let other = job_name(&format!("api-{}", "f".repeat(60)), "migrate2");
        assert_ne!(long, other);
    }

    #[test]
    fn pod_reasons_name_exit_codes_oom_and_pulls() {
        let pod = |status: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"status": {"containerStatuses": [
                {"name": "api", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": status}]}}))
            .unwrap()
        };
        let exit = pod(serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error"}}));
        assert_eq!(pod_reason(&[exit]).unwrap(), "exit code 1 (Error)");
        let oom = pod(serde_json::json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}));
        assert_eq!(pod_reason(&[oom]).unwrap(), "OOMKilled (exit code 137)");
        let pull = pod(
            serde_json::json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}),
        );
        assert_eq!(pod_reason(&[pull]).unwrap(), "ImagePullBackOff: Back-off");
    }
}

//! Rules over one service's validated objects: each finding has a rule name and a severity.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Serialize;

use crate::render::Manifest;
use crate::render::validate::TypedObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub kind: String,
    pub name: String,
    pub message: String,
}

pub fn lint(manifests: &[Manifest]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut pod_labels: Vec<BTreeMap<String, String>> = Vec::new();
    for manifest in manifests {
        if let Some(template) = pod_template(manifest) {
            pod_labels.push(
                template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default(),
            );
            containers(manifest, template, &mut findings);
        }
    }
    for manifest in manifests {
        let mut finding = |rule, severity, message: String| {
            findings.push(Finding {
                rule,
                severity,
                kind: manifest.kind.clone(),
                name: manifest.name.clone(),
                message,
            });
        };
        match &manifest.object {
            Some(TypedObject::Service(service)) => {
                let selector = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default();
                let matches = |labels: &BTreeMap<String, String>| {
                    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                };
                if !selector.is_empty() && !pod_labels.iter().any(matches) {
                    finding(
                        "selector-matches-nothing",
                        Severity::Error,
                        "the Service's selector matches no pod template rendered with it".into(),
                    );
                }
            }
            Some(TypedObject::HorizontalPodAutoscaler(hpa)) => {
                let min = hpa.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1);
                let max = hpa.spec.as_ref().map_or(0, |s| s.max_replicas);
                if min > max {
                    finding(
                        "hpa-min-above-max",
                        Severity::Error,
                        format!("minReplicas {min} is above maxReplicas {max}"),
                    );
                }
            }
            _ => {}
        }
    }
    findings
}

fn pod_template(manifest: &Manifest) -> Option<&PodTemplateSpec> {
    match manifest.object.as_ref()? {
        TypedObject::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
        TypedObject::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
        TypedObject::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        TypedObject::Job(j) => j.spec.as_ref().map(|s| &s.template),
        _ => None,
    }
}

fn containers(manifest: &Manifest, template: &PodTemplateSpec, findings: &mut Vec<Finding>) {
    let Some(spec) = &template.spec else { return };
    for container in &spec.containers {
        let mut finding = |rule, message: String| {
            let severity = if rule == "missing-image" {
                Severity::Error
            } else {
                Severity::Warning
            };
            findings.push(Finding {
                rule,
                severity,
                kind: manifest.kind.clone(),
                name: manifest.name.clone(),
                message: format!("container `{}`: {message}", container.name),
            });
        };
        let resources = container.resources.as_ref();
        if resources.is_none_or(|r| r.requests.as_ref().is_none_or(|q| q.is_empty())) {
            finding(
                "missing-resources",
                "no resource requests; the scheduler cannot place it sensibly".into(),
            );
        }
        if container.readiness_probe.is_none() && manifest.kind == "Deployment" {
            finding(
                "missing-readiness-probe",
                "no readiness probe; rollouts cannot gate on health".into(),
            );
        }
        let image = container.image.as_deref().unwrap_or_default();
        let last = image.rsplit('/').next().unwrap_or_default();
        if image.is_empty() {
            finding(
                "missing-image",
                "no image; give the service `image:` in convoy.yaml".into(),
            );
        } else if image.ends_with(":latest") || (!last.contains(':') && !image.contains('@')) {
            finding(
                "mutable-image-tag",
                format!("image `{image}` has no fixed tag; use the version, not `latest`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::validate::TypedObject;
    use serde_json::json;

    fn manifest(document: serde_json::Value) -> Manifest {
        let kind = document["kind"].as_str().unwrap().to_string();
        let object = match kind.as_str() {
            "Deployment" => {
                TypedObject::Deployment(Box::new(serde_json::from_value(document.clone()).unwrap()))
            }
            _ => TypedObject::Service(Box::new(serde_json::from_value(document.clone()).unwrap())),
        };
        Manifest {
            template: "t".into(),
            kind,
            name: "x".into(),
            text: String::new(),
            document,
            object: Some(object),
        }
    }

    fn deployment(image: &str) -> Manifest {
        manifest(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "a", "v": "1"}},
            "spec": {"containers": [{"name": "c", "image": image,
                "resources": {"requests": {"cpu": "1"}}, "readinessProbe": {"exec": {"command": ["true"]}}}]}}}}),
        )
    }

    fn rules(manifests: &[Manifest]) -> Vec<&'static str> {
        lint(manifests).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_pinned_image_with_resources_and_probe_is_clean() {
        assert_eq!(rules(&[deployment("registry/app:1.2")]), Vec::<&str>::new());
    }

    #[test]
    fn latest_untagged_and_missing_images_are_found() {
        assert_eq!(
            rules(&[deployment("registry:5000/app:latest")]),
            ["mutable-image-tag"]
        );
        assert_eq!(
            rules(&[deployment("registry:5000/app")]),
            ["mutable-image-tag"]
        );
        assert_eq!(rules(&[deployment("app@sha256:abc")]), Vec::<&str>::new());
        assert_eq!(rules(&[deployment("")]), ["missing-image"]);
    }

    #[test]
    fn a_service_selector_must_match_a_pod_template() {
        let service = |v: &str| {
            manifest(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
            "spec": {"selector": {"app": "a", "v": v}}}),
            )
        };
        assert_eq!(
            rules(&[deployment("a:1"), service("1")]),
            Vec::<&str>::new()
        );
        assert_eq!(
            rules(&[deployment("a:1"), service("2")]),
            ["selector-matches-nothing"]
        );
    }
}

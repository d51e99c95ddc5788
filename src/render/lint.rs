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
            findings.push(Finding {
                rule,
                severity: Severity::Warning,
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
        if image.ends_with(":latest") || (!last.contains(':') && !image.contains('@')) {
            finding(
                "mutable-image-tag",
                format!("image `{image}` has no fixed tag; use the version, not `latest`"),
            );
        }
    }
}

//! Rendered text → documents → typed Kubernetes objects, refusing fields the types do not know.

use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy};
use serde_json::Value;

use crate::render::error::RenderError;
use crate::render::strict;
use crate::render::templates::Templates;

/// A validated object of a kind Convoy knows the schema of.
#[derive(Debug, Clone)]
pub enum TypedObject {
    Deployment(Box<apps::v1::Deployment>),
    StatefulSet(Box<apps::v1::StatefulSet>),
    DaemonSet(Box<apps::v1::DaemonSet>),
    Service(Box<core::v1::Service>),
    ConfigMap(Box<core::v1::ConfigMap>),
    Secret(Box<core::v1::Secret>),
    ServiceAccount(Box<core::v1::ServiceAccount>),
    PersistentVolumeClaim(Box<core::v1::PersistentVolumeClaim>),
    HorizontalPodAutoscaler(Box<autoscaling::v2::HorizontalPodAutoscaler>),
    PodDisruptionBudget(Box<policy::v1::PodDisruptionBudget>),
    Ingress(Box<networking::v1::Ingress>),
    NetworkPolicy(Box<networking::v1::NetworkPolicy>),
    Job(Box<batch::v1::Job>),
    CronJob(Box<batch::v1::CronJob>),
}

/// Where a document came from, for errors.
pub struct Origin<'a> {
    pub templates: &'a Templates,
    pub template: &'a str,
    pub service: &'a str,
}

/// Splits one template's output into its non-empty YAML documents.
pub fn documents(text: &str, origin: &Origin<'_>) -> Result<Vec<Value>, RenderError> {
    use serde::Deserialize;
    let mut found = Vec::new();
    for document in yaml_serde::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| RenderError::Yaml {
            location: origin.templates.locate(origin.template, "\u{0}", ""),
            template: origin.template.to_string(),
            service: origin.service.to_string(),
            message: error.to_string(),
        })?;
        if !value.is_null() {
            found.push(value);
        }
    }
    Ok(found)
}

/// Checks identity, name length and, for known kinds, every field. Returns the typed object.
pub fn validate(
    document: &Value,
    origin: &Origin<'_>,
) -> Result<(String, String, Option<TypedObject>), Vec<RenderError>> {
    let (api_version, kind, name) = identity(document, origin)?;
    let mut errors = name_errors(&kind, &name, origin);
    errors.extend(label_errors(document, &kind, origin));
    errors.extend(replicas_error(document, &kind, origin));
    let typed = match typed(&api_version, &kind, document) {
        None => None,
        Some(Ok((object, unknown))) => {
            errors.extend(
                unknown
                    .into_iter()
                    .map(|u| unknown_field(u, origin, &kind, &name)),
            );
            Some(object)
        }
        Some(Err(mismatch)) => {
            errors.extend(mismatch_errors(mismatch, origin, &kind, &name));
            None
        }
    };
    if errors.is_empty() {
        Ok((kind, name, typed))
    } else {
        Err(errors)
    }
}

/// `apiVersion`, `kind` and `metadata.name`, which every document needs.
fn identity(
    document: &Value,
    origin: &Origin<'_>,
) -> Result<(String, String, String), Vec<RenderError>> {
    let text = |pointer: &str| {
        document
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let missing = |missing: &'static str| {
        vec![RenderError::MissingIdentity {
            location: origin.templates.locate(origin.template, "\u{0}", ""),
            template: origin.template.to_string(),
            service: origin.service.to_string(),
            missing,
        }]
    };
    let api_version = text("/apiVersion").ok_or_else(|| missing("apiVersion"))?;
    let kind = text("/kind").ok_or_else(|| missing("kind"))?;
    let name = text("/metadata/name").ok_or_else(|| missing("metadata.name"))?;
    Ok((api_version, kind, name))
}

/// The object's name: DNS-1123, and short enough for its kind.
fn name_errors(kind: &str, name: &str, origin: &Origin<'_>) -> Vec<RenderError> {
    let location = || {
        origin
            .templates
            .locate(origin.template, "name:", "metadata.name")
    };
    let mut errors = Vec::new();
    if let Some(reason) = name_problem(name) {
        errors.push(RenderError::InvalidName {
            location: location(),
            what: format!("{kind} name"),
            value: name.to_string(),
            reason,
        });
    }
    let limit = name_limit(kind);
    if name.len() > limit {
        errors.push(RenderError::NameTooLong {
            location: location(),
            kind: kind.to_string(),
            name: name.to_string(),
            length: name.len(),
            limit,
        });
    }
    errors
}

/// Every label value: valid characters, at most 63 of them.
fn label_errors(document: &Value, kind: &str, origin: &Origin<'_>) -> Vec<RenderError> {
    let Some(Value::Object(labels)) = document.pointer("/metadata/labels") else {
        return Vec::new();
    };
    let location = || {
        origin
            .templates
            .locate(origin.template, "labels", "metadata.labels")
    };
    let mut errors = Vec::new();
    for (key, value) in labels {
        let value = value.as_str().unwrap_or_default();
        if let Some(reason) = label_value_problem(value) {
            errors.push(RenderError::InvalidName {
                location: location(),
                what: format!("label `{key}` of {kind}"),
                value: value.to_string(),
                reason,
            });
        }
        if value.len() > 63 {
            errors.push(RenderError::NameTooLong {
                location: location(),
                kind: format!("label `{key}` of {kind}"),
                name: value.to_string(),
                length: value.len(),
                limit: 63,
            });
        }
    }
    errors
}

/// A negative `spec.replicas` of a workload, which its type (`i32`) accepts but Kubernetes does
/// not: refused here, before any change, rather than when the rollout scales it. Counts beyond
/// `i32` are the type's to refuse.
fn replicas_error(document: &Value, kind: &str, origin: &Origin<'_>) -> Option<RenderError> {
    if !matches!(kind, "Deployment" | "StatefulSet") {
        return None;
    }
    let replicas = document.pointer("/spec/replicas")?.as_i64()?;
    (replicas < 0).then(|| RenderError::Replicas {
        location: Some(
            origin
                .templates
                .locate(origin.template, "replicas:", "spec.replicas"),
        ),
        service: origin.service.to_string(),
        value: replicas.to_string(),
        set_by: format!("template `{}`", origin.template),
    })
}

/// A document that does not fit its type: the unknown keys met before the mismatch (often its
/// cause), then the mismatch itself.
fn mismatch_errors(
    mismatch: strict::Mismatch,
    origin: &Origin<'_>,
    kind: &str,
    name: &str,
) -> Vec<RenderError> {
    let mut errors: Vec<RenderError> = mismatch
        .unknown
        .into_iter()
        .map(|u| unknown_field(u, origin, kind, name))
        .collect();
    let field = mismatch
        .path
        .rsplit(['.', '['])
        .next()
        .unwrap_or_default()
        .to_string();
    errors.push(RenderError::Invalid {
        location: origin
            .templates
            .locate(origin.template, &format!("{field}:"), &mismatch.path),
        service: origin.service.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        path: mismatch.path,
        message: mismatch.message,
    });
    errors
}

fn unknown_field(
    unknown: strict::UnknownField,
    origin: &Origin<'_>,
    kind: &str,
    name: &str,
) -> RenderError {
    RenderError::UnknownField {
        location: origin.templates.locate(
            origin.template,
            &format!("{}:", unknown.field),
            &unknown.path,
        ),
        service: origin.service.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        path: unknown.path,
        suggestion: unknown.suggestion,
    }
}

/// A DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, alphanumeric at both ends.
fn name_problem(name: &str) -> Option<&'static str> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !name.chars().all(allowed) {
        Some("only lowercase letters, digits, `-` and `.` are allowed")
    } else if !edge(name.chars().next()) || !edge(name.chars().last()) {
        Some("must start and end with a letter or digit")
    } else {
        None
    }
}

/// A label value: empty, or alphanumerics, `-`, `_` and `.`, alphanumeric at both ends.
fn label_value_problem(value: &str) -> Option<&'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if value.is_empty() {
        None
    } else if !value.chars().all(allowed) {
        Some("label values hold only letters, digits, `-`, `_` and `.`")
    } else if !edge(value.chars().next()) || !edge(value.chars().last()) {
        Some("label values start and end with a letter or digit")
    } else {
        None
    }
}

/// Objects whose name becomes a DNS label (Service) or a pod name prefix and a label value
/// (Deployment and friends) are limited to 63 characters; the rest to a DNS subdomain's 253.
fn name_limit(kind: &str) -> usize {
    match kind {
        "Service" | "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" => 63,
        _ => 253,
    }
}

type Typed = Result<(TypedObject, Vec<strict::UnknownField>), strict::Mismatch>;

fn typed(api_version: &str, kind: &str, document: &Value) -> Option<Typed> {
    macro_rules! parse {
        ($variant:ident) => {
            Some(
                strict::from_value(document)
                    .map(|(object, unknown)| (TypedObject::$variant(Box::new(object)), unknown)),
            )
        };
    }
    match (api_version, kind) {
        ("apps/v1", "Deployment") => parse!(Deployment),
        ("apps/v1", "StatefulSet") => parse!(StatefulSet),
        ("apps/v1", "DaemonSet") => parse!(DaemonSet),
        ("v1", "Service") => parse!(Service),
        ("v1", "ConfigMap") => parse!(ConfigMap),
        ("v1", "Secret") => parse!(Secret),
        ("v1", "ServiceAccount") => parse!(ServiceAccount),
        ("v1", "PersistentVolumeClaim") => parse!(PersistentVolumeClaim),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => parse!(HorizontalPodAutoscaler),
        ("policy/v1", "PodDisruptionBudget") => parse!(PodDisruptionBudget),
        ("networking.k8s.io/v1", "Ingress") => parse!(Ingress),
        ("networking.k8s.io/v1", "NetworkPolicy") => parse!(NetworkPolicy),
        ("batch/v1", "Job") => parse!(Job),
        ("batch/v1", "CronJob") => parse!(CronJob),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_values_follow_kubernetes_rules() {
        assert_eq!(name_problem("api-1.4.0"), None);
        assert!(name_problem("api-feature/x").is_some());
        assert!(name_problem("api-").is_some());
        assert_eq!(label_value_problem("1.4.0_rc1"), None);
        assert_eq!(label_value_problem(""), None);
        assert!(label_value_problem("1.4.0+build").is_some());
    }
}

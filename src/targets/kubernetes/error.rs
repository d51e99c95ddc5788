//! What can go wrong talking to a cluster, each with what to do about it.

use crate::diagnostic::Diagnose;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot load the kubeconfig{}", context.as_ref().map(|c| format!(" context `{c}`")).unwrap_or_default())]
    Config {
        context: Option<String>,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot {action} {object}: {message}")]
    Api {
        action: &'static str,
        object: String,
        message: String,
        /// The HTTP status, when the API server answered.
        code: Option<u16>,
    },
    #[error("cannot apply {object}: {}", describe_conflicts(conflicts))]
    Conflict {
        object: String,
        /// Each field another manager owns with a different value; never empty.
        conflicts: Vec<FieldConflict>,
    },
    #[error("cannot {action} {object}: namespace `{namespace}` is being deleted")]
    NamespaceTerminating {
        action: &'static str,
        object: String,
        namespace: String,
    },
    #[error("{object} is not a Kubernetes object Convoy can apply: {detail}")]
    Object { object: String, detail: String },
}

/// A field of an applied object that another field manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    pub manager: String,
    /// As the API server writes it: `.spec.selector`, `.metadata.labels.app.kubernetes.io/name`.
    pub field: String,
}

impl KubeError {
    /// From a kube client error while doing `action` to `object`; conflicts of server-side apply
    /// name the other field manager.
    pub fn from_kube(action: &'static str, object: impl Into<String>, error: kube::Error) -> Self {
        let object = object.into();
        match error {
            kube::Error::Api(status) => {
                let conflicts = field_conflicts(&status);
                if !conflicts.is_empty() {
                    return KubeError::Conflict { object, conflicts };
                }
                if let Some(namespace) = terminating_namespace(&status) {
                    return KubeError::NamespaceTerminating {
                        action,
                        object,
                        namespace,
                    };
                }
                KubeError::Api {
                    action,
                    object,
                    message: status.message.clone(),
                    code: Some(status.code),
                }
            }
            other => KubeError::Api {
                action,
                object,
                message: crate::diagnostic::chain(&other),
                code: None,
            },
        }
    }

    /// Not found: the object is absent, which some callers expect.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            KubeError::Api {
                code: Some(404),
                ..
            }
        )
    }

    /// The managers a conflict is with, each once.
    pub fn conflicting_managers(&self) -> Vec<&str> {
        let KubeError::Conflict { conflicts, .. } = self else {
            return Vec::new();
        };
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        managers
    }
}

/// The field conflicts of a server-side apply's 409: its `details.causes` of reason
/// `FieldManagerConflict`, each naming one field and (in its message,
/// `conflict with "kubectl-edit" using v1`) the manager. The summary message's wording changes
/// with the number of conflicts and managers, so it is never parsed.
fn field_conflicts(status: &kube::core::Status) -> Vec<FieldConflict> {
    if status.code != 409 {
        return Vec::new();
    }
    let causes = status.details.iter().flat_map(|d| &d.causes);
    causes
        .filter(|c| c.reason == "FieldManagerConflict")
        .map(|c| FieldConflict {
            manager: quoted_manager(&c.message).unwrap_or_else(|| c.message.clone()),
            field: c.field.clone(),
        })
        .collect()
}

/// The namespace of a create the API server refused because the namespace is being deleted (a
/// 403 whose cause is `NamespaceTerminating`: `namespace shop is being terminated`) — not a
/// missing permission.
pub(super) fn terminating_namespace(status: &kube::core::Status) -> Option<String> {
    if status.code != 403 {
        return None;
    }
    let cause = status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .find(|c| c.reason == "NamespaceTerminating")?;
    let name = cause.message.split_whitespace().nth(1).unwrap_or_default();
    Some(name.to_string())
}

/// The Go-quoted manager in `conflict with "kubectl-edit" using v1`.
fn quoted_manager(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('"')?;
    let mut manager = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(manager),
            '\\' => manager.push(chars.next()?),
            c => manager.push(c),
        }
    }
    None
}

/// `field manager `kubectl` owns .spec.selector; field manager `helm` owns .spec.ports`.
fn describe_conflicts(conflicts: &[FieldConflict]) -> String {
    let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in conflicts {
        match by_manager.iter_mut().find(|(m, _)| *m == c.manager) {
            Some((_, fields)) => fields.push(&c.field),
            None => by_manager.push((&c.manager, vec![&c.field])),
        }
    }
    by_manager
        .iter()
        .map(|(manager, fields)| format!("field manager `{manager}` owns {}", fields.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Diagnose for KubeError {
    fn help(&self) -> Option<String> {
        Some(match self {
            KubeError::Config { .. } => "check KUBECONFIG and the environment's `context`, or pass `--context`; inside a cluster Convoy uses the pod's service account".to_string(),
            KubeError::Api { code: Some(401 | 403), .. } => "the credentials lack a permission Convoy needs: apply manifests/rbac.yaml to the namespace and use its service account".to_string(),
            KubeError::Api { code: Some(404), .. } => "check the namespace (`--namespace` or the environment's `namespace`) exists".to_string(),
            KubeError::Api { code: Some(422), .. } => "the object was refused by the API server's validation or an admission webhook; `convoy render` shows what was sent".to_string(),
            KubeError::Api { .. } => "check that the cluster is reachable (`kubectl --context … get ns`) and retry".to_string(),
            KubeError::Conflict { .. } => {
                let managers = self.conflicting_managers().iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
                format!("another tool ({managers}) manages these fields; remove them from its configuration, or let Convoy own them with `kubectl apply --server-side --force-conflicts --field-manager convoy`")
            }
            KubeError::NamespaceTerminating { namespace, .. } => format!("wait until the namespace is gone (`kubectl get namespace {namespace}`) and create it again, or deploy elsewhere with `--namespace`"),
            KubeError::Object { .. } => "fix the template so it renders a complete object with apiVersion, kind and metadata.name".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Status the API server (v1.34.4) answered, as kube's client returns it.
    fn recorded(json: &str) -> kube::Error {
        kube::Error::Api(
            serde_json::from_str::<kube::core::Status>(json)
                .unwrap()
                .boxed(),
        )
    }

    #[test]
    fn a_conflict_is_read_from_the_status_causes_not_its_message() {
        // Recorded: two managers, so the summary says "conflicts with" — the wording the
        // message parser this replaced did not know (issue 13).
        let error = KubeError::from_kube(
            "apply",
            "Service/payments",
            recorded(include_str!("testdata/apply_conflict_two_managers.json")),
        );
        let KubeError::Conflict { conflicts, .. } = &error else {
            panic!("not a conflict: {error:?}");
        };
        let field = |manager: &str, field: &str| FieldConflict {
            manager: manager.into(),
            field: field.into(),
        };
        assert_eq!(
            conflicts,
            &[
                field("kubectl", ".metadata.labels.app.kubernetes.io/managed-by"),
                field("kubectl-edit", ".spec.selector"),
            ]
        );
        assert_eq!(
            error.to_string(),
            "cannot apply Service/payments: field manager `kubectl` owns \
             .metadata.labels.app.kubernetes.io/managed-by; field manager `kubectl-edit` owns .spec.selector"
        );
        assert!(
            error
                .help()
                .unwrap()
                .contains("(`kubectl`, `kubectl-edit`)")
        );
    }

    #[test]
    fn regression_hpa_conflict_with_prewarm_during_a_window_is_recognised() {
        // Recorded: prewarm's merge patch owns both bounds, and a plain apply of the HPA conflicts.
        let error = KubeError::from_kube(
            "apply",
            "HorizontalPodAutoscaler/api-a1",
            recorded(include_str!("testdata/apply_conflict_prewarm.json")),
        );
        assert_eq!(error.conflicting_managers(), vec!["convoy-prewarm"]);
        assert!(
            error.to_string().ends_with(
                "field manager `convoy-prewarm` owns .spec.maxReplicas, .spec.minReplicas"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_conflict_without_causes_is_a_plain_api_error() {
        // A stale resourceVersion is a 409 Conflict too, with no field causes.
        let stale = r#"{"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "Operation cannot be fulfilled on services \"payments\": the object has been modified",
            "reason": "Conflict", "details": {"name": "payments", "kind": "services"}, "code": 409}"#;
        let error = KubeError::from_kube("apply", "Service/payments", recorded(stale));
        assert!(
            matches!(
                error,
                KubeError::Api {
                    code: Some(409),
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn regression_a_namespace_being_deleted_is_not_a_missing_permission() {
        let error = KubeError::from_kube(
            "dry-run apply",
            "ConfigMap/x",
            recorded(include_str!("testdata/namespace_terminating.json")),
        );
        assert_eq!(
            error.to_string(),
            "cannot dry-run apply ConfigMap/x: namespace `term` is being deleted"
        );
        assert!(error.help().unwrap().contains("kubectl get namespace term"));
    }

    #[test]
    fn a_manager_is_unquoted_as_go_quotes_it() {
        assert_eq!(
            quoted_manager(r#"conflict with "kubectl-edit" using v1"#).as_deref(),
            Some("kubectl-edit")
        );
        assert_eq!(
            quoted_manager(r#"conflict with "my \"tool\"""#).as_deref(),
            Some(r#"my "tool""#)
        );
        assert_eq!(quoted_manager("no manager here"), None);
    }
}

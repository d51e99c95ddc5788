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
    #[error("cannot apply {object}: field manager `{manager}` owns {fields}")]
    Conflict {
        object: String,
        manager: String,
        fields: String,
    },
    #[error("{object} is not a Kubernetes object Convoy can apply: {detail}")]
    Object { object: String, detail: String },
}

impl KubeError {
    /// From a kube client error while doing `action` to `object`; conflicts of server-side apply
    /// name the other field manager.
    pub fn from_kube(action: &'static str, object: impl Into<String>, error: kube::Error) -> Self {
        let object = object.into();
        match error {
            kube::Error::Api(status) => {
                if status.code == 409
                    && action.ends_with("apply")
                    && let Some((manager, fields)) = conflict_manager(&status.message)
                {
                    return KubeError::Conflict {
                        object,
                        manager,
                        fields,
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
}

/// The manager and fields of the API server's message
/// `Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas`.
fn conflict_manager(message: &str) -> Option<(String, String)> {
    let rest = message.split("conflict with \"").nth(1)?;
    let (manager, rest) = rest.split_once('"')?;
    let fields = rest.split_once(": ").map_or("", |(_, f)| f).trim();
    Some((manager.to_string(), fields.to_string()))
}

impl Diagnose for KubeError {
    fn help(&self) -> Option<String> {
        Some(match self {
            KubeError::Config { .. } => "check KUBECONFIG and the environment's `context`, or pass `--context`; inside a cluster Convoy uses the pod's service account".to_string(),
            KubeError::Api { code: Some(401 | 403), .. } => "the credentials lack a permission Convoy needs: apply manifests/rbac.yaml to the namespace and use its service account".to_string(),
            KubeError::Api { code: Some(404), .. } => "check the namespace (`--namespace` or the environment's `namespace`) exists".to_string(),
            KubeError::Api { code: Some(422), .. } => "the object was refused by the API server's validation or an admission webhook; `convoy render` shows what was sent".to_string(),
            KubeError::Api { .. } => "check that the cluster is reachable (`kubectl --context … get ns`) and retry".to_string(),
            KubeError::Conflict { manager, .. } => format!("another tool (`{manager}`) manages these fields; remove them from its configuration, or let Convoy own them with `kubectl apply --server-side --force-conflicts --field-manager convoy`"),
            KubeError::Object { .. } => "fix the template so it renders a complete object with apiVersion, kind and metadata.name".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_names_the_other_manager_and_its_fields() {
        let message = "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas";
        assert_eq!(
            conflict_manager(message),
            Some(("kubectl-edit".to_string(), ".spec.replicas".to_string()))
        );
        assert_eq!(conflict_manager("the object has been modified"), None);
    }
}

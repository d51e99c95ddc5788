//! Retiring and removing versions: scale to zero, delete the version's objects, keep the
//! ConfigMaps and Secrets another version still reads (their names are content hashes); and
//! waiting for a version's Deployment someone else is deleting to be gone.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;

use crate::execute::TargetError;

use super::KubeError;
use super::objects::api_resource;
use super::retry::{Backoff, retrying};
use super::target::{KubeTarget, action, kube};
use super::traffic::NAME_LABEL;

impl KubeTarget {
    /// Scales a version to zero and deletes its objects, keeping ConfigMaps and Secrets another
    /// version of the service still uses (their names are content hashes, so versions share them).
    pub(super) async fn delete_version(
        &self,
        service: &str,
        version: &str,
        scale_first: bool,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let api = self.deployments();
        let fail = |e: KubeError| kube(service, "delete", e);
        let Some(deployment) = self.deployment(service, version, "delete").await? else {
            return Ok(());
        };
        // One being deleted already (someone else's finalizer holds it) is not scaled: its
        // controller no longer acts. Deleting it again, and its objects, still succeeds.
        let deleting = deployment.metadata.deletion_timestamp.is_some();
        if scale_first && !deleting {
            self.scale(service, version, 0, 0).await?;
        }
        let params = ListParams::default().labels(&format!("{NAME_LABEL}={service}"));
        let siblings = retrying(Backoff::default(), || api.list(&params))
            .await
            .map_err(|e| fail(KubeError::from_kube("list", "Deployments", e)))?;
        let still_used: BTreeSet<(String, String)> = siblings
            .items
            .iter()
            .filter(|d| d.metadata.name.as_deref() != Some(name.as_str()))
            .flat_map(references)
            .collect();
        let configmap = api_resource("v1", "ConfigMap")
            .ok_or_else(|| action(service, "delete", "no ConfigMap resource"))?;
        let secret = api_resource("v1", "Secret")
            .ok_or_else(|| action(service, "delete", "no Secret resource"))?;
        let hpa = api_resource("autoscaling/v2", "HorizontalPodAutoscaler")
            .ok_or_else(|| action(service, "delete", "no HPA resource"))?;
        let pdb = api_resource("policy/v1", "PodDisruptionBudget")
            .ok_or_else(|| action(service, "delete", "no PDB resource"))?;
        let deployment_resource = api_resource("apps/v1", "Deployment")
            .ok_or_else(|| action(service, "delete", "no Deployment resource"))?;
        // Each delete is of an object of its own: all at once, not one round trip at a time.
        let mut deletes = vec![
            (&hpa, name.clone()),
            (&deployment_resource, name.clone()),
            (&pdb, name.clone()),
        ];
        for (kind, referenced) in references(&deployment) {
            if still_used.contains(&(kind.clone(), referenced.clone())) {
                continue;
            }
            let resource = if kind == "ConfigMap" {
                &configmap
            } else {
                &secret
            };
            deletes.push((resource, referenced));
        }
        // From here on no view of it serves, however recent it looks.
        self.tracker.deleting(&name);
        let deleting = deletes
            .iter()
            .map(|(resource, name)| self.applier.delete(resource, name));
        futures::future::try_join_all(deleting)
            .await
            .map_err(fail)?;
        Ok(())
    }

    /// Waits until a version's Deployment that is being deleted is gone, before the version is
    /// provisioned again: an apply would change an object about to vanish (and its controller no
    /// longer acts on it), so its rollout could never finish — or look finished and then vanish.
    /// The step's timeout bounds the wait. Returns the version's Deployment if it exists and is
    /// not being deleted.
    pub(super) async fn await_gone(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<Deployment>, TargetError> {
        let Some(existing) = self.deployment(service, version, "provision").await? else {
            return Ok(None);
        };
        let (Some(_), Some(uid)) = (
            &existing.metadata.deletion_timestamp,
            existing.metadata.uid.as_deref(),
        ) else {
            return Ok(Some(existing));
        };
        let name = format!("{service}-{version}");
        // Boxed: a watch's future is most of a provision's, and it is rarely needed.
        Box::pin(kube::runtime::wait::await_condition(
            self.deployments(),
            &name,
            kube::runtime::wait::conditions::is_deleted(uid),
        ))
        .await
        .map(|_| None)
        .map_err(|e| {
            action(
                service,
                "provision",
                format!("Deployment {name} is being deleted and cannot be followed: {e}"),
            )
        })
    }
}

/// The ConfigMaps and Secrets a Deployment's pods read (`envFrom` and volumes).
pub(super) fn references(deployment: &Deployment) -> Vec<(String, String)> {
    let Some(pod) = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        for source in container.env_from.iter().flatten() {
            if let Some(name) = source.config_map_ref.as_ref().map(|r| r.name.clone()) {
                found.push(("ConfigMap".to_string(), name));
            }
            if let Some(name) = source.secret_ref.as_ref().map(|r| r.name.clone()) {
                found.push(("Secret".to_string(), name));
            }
        }
    }
    for volume in pod.volumes.iter().flatten() {
        if let Some(name) = volume.config_map.as_ref().map(|c| c.name.clone()) {
            found.push(("ConfigMap".to_string(), name));
        }
        if let Some(name) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            found.push(("Secret".to_string(), name));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_cover_env_from_and_volumes() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api-a1"},
            "spec": {"selector": {}, "template": {"spec": {
                "containers": [{"name": "api", "envFrom": [
                    {"configMapRef": {"name": "api-config-1"}},
                    {"secretRef": {"name": "api-secret-1"}},
                ]}],
                "volumes": [{"name": "v", "configMap": {"name": "api-files-1"}}],
            }}},
        }))
        .unwrap();
        assert_eq!(
            references(&deployment),
            vec![
                ("ConfigMap".to_string(), "api-config-1".to_string()),
                ("Secret".to_string(), "api-secret-1".to_string()),
                ("ConfigMap".to_string(), "api-files-1".to_string()),
            ]
        );
    }
}

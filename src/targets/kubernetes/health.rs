//! Is a version still healthy after a bake: the rollout rules again, no new container restarts,
//! and the service's own `health.check` command.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::execute::TargetError;

use super::KubeError;
use super::retry::{Backoff, retrying};
use super::rollout_status::{RolloutStatus, rollout_status_of};
use super::target::{KubeTarget, kube};
use super::traffic::{self};

impl KubeTarget {
    /// The service's `health.check` command, with the version and namespace in its environment.
    pub(super) async fn run_check(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let Some((command, budget)) = self.checks.get(service) else {
            return Ok(());
        };
        let env = crate::targets::host::CommandEnv {
            vars: vec![
                ("CONVOY_SERVICE".to_string(), service.to_string()),
                ("CONVOY_VERSION".to_string(), version.to_string()),
                (
                    "CONVOY_ENVIRONMENT".to_string(),
                    self.renderer.environment.clone(),
                ),
                ("CONVOY_NAMESPACE".to_string(), self.namespace().to_string()),
            ],
            // Errors are masked as they leave the target (`MaskedTarget`); the check itself
            // sees none of the deployer's variables but those the service declares.
            secrets: Vec::new(),
            pass: Some(
                self.renderer
                    .project
                    .services
                    .get(service)
                    .map(|s| s.env.clone())
                    .unwrap_or_default(),
            ),
        };
        crate::targets::host::run_in(service, "check", command, &self.check_dir, &env, *budget)
            .await
            .map_err(|detail| TargetError::Unhealthy {
                service: service.to_string(),
                version: version.to_string(),
                detail,
            })
    }

    pub(super) async fn pods(&self, service: &str, version: &str) -> Result<Vec<Pod>, TargetError> {
        let pods: Api<Pod> = Api::namespaced(self.client(), self.namespace());
        let params = ListParams::default().labels(&traffic::selector_string(&traffic::selector(
            service,
            Some(version),
        )));
        retrying(Backoff::default(), || pods.list(&params))
            .await
            .map(|l| l.items)
            .map_err(|e| kube(service, "verify", KubeError::from_kube("list", "Pods", e)))
    }

    pub(super) async fn restart_count(
        &self,
        service: &str,
        version: &str,
    ) -> Result<i32, TargetError> {
        Ok(self
            .pods(service, version)
            .await?
            .iter()
            .flat_map(|p| {
                p.status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
            })
            .map(|c| c.restart_count)
            .sum())
    }

    pub(super) async fn check(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let unhealthy = |detail: String| TargetError::Unhealthy {
            service: service.to_string(),
            version: version.to_string(),
            detail,
        };
        let deployment = self
            .deployment(service, version, "verify")
            .await?
            .ok_or_else(|| unhealthy(format!("Deployment {name} is gone")))?;
        let replica_sets: Api<ReplicaSet> = Api::namespaced(self.client(), self.namespace());
        let selector = traffic::selector_string(&traffic::selector(service, Some(version)));
        let params = ListParams::default().labels(&selector);
        let replica_sets = retrying(Backoff::default(), || replica_sets.list(&params))
            .await
            .map_err(|e| {
                kube(
                    service,
                    "verify",
                    KubeError::from_kube("list", "ReplicaSets", e),
                )
            })?;
        let pods = self.pods(service, version).await?;
        let applied_at = deployment
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(jiff::Timestamp::UNIX_EPOCH, |t| t.0);
        match rollout_status_of(
            &deployment,
            &replica_sets.items,
            &pods,
            applied_at,
            self.clock.now(),
            &self.graces,
        ) {
            RolloutStatus::Done => {}
            RolloutStatus::Failed(failure) => return Err(unhealthy(failure.to_string())),
            other => return Err(unhealthy(format!("no longer fully available: {other}"))),
        }
        let restarts: i32 = pods
            .iter()
            .flat_map(|p| {
                p.status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
            })
            .map(|c| c.restart_count)
            .sum();
        let before = self
            .restarts
            .lock()
            .ok()
            .and_then(|s| s.get(&(service.to_string(), version.to_string())).copied());
        if let Some(before) = before
            && restarts > before
        {
            return Err(unhealthy(format!(
                "{} container restart(s) since it took traffic",
                restarts - before
            )));
        }
        Ok(())
    }
}

//! Provisioning a version beside the others and moving traffic to it: server-side apply,
//! replicas by patch, readiness by watch, the stable Service's selector or canary replica shares.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};

use crate::config::Strategy;
use crate::execute::TargetError;

use super::records::FIELD_MANAGER;
use super::retry::{Backoff, retrying};
use super::target::{KubeTarget, action, kube};
use super::traffic::{self, TRAFFIC_ANNOTATION};
use super::{KubeError, track};

impl KubeTarget {
    /// Applies a version's ConfigMaps, Secrets, PDB and Deployment (at `replicas`), then waits by
    /// watch until the rollout is done or fails.
    pub(super) async fn provision(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let objects = self.objects(service, version).await?;
        let Some(deployment) = objects.deployment.clone() else {
            return Err(action(
                service,
                "provision",
                "the templates render no Deployment",
            ));
        };
        self.await_gone(service, version).await?;
        let total = objects.replicas();
        let replicas =
            if self.strategy == Strategy::Canary && self.has_other_live(service, version).await? {
                traffic::canary_counts(total, &self.steps)
                    .first()
                    .copied()
                    .unwrap_or(total)
            } else {
                total
            };
        for object in &objects.supporting {
            self.applier
                .apply(object, false)
                .await
                .map_err(|e| kube(service, "provision", e))?;
        }
        let applied_at = self.clock.now();
        self.applier
            .apply(&deployment, false)
            .await
            .map_err(|e| kube(service, "provision", e))?;
        self.set_replicas(service, version, replicas, 0).await?;
        self.wait(service, version, applied_at).await
    }

    /// Whether another revision of `service` takes its traffic now (a canary starts beside it).
    async fn has_other_live(&self, service: &str, version: &str) -> Result<bool, TargetError> {
        let state = self
            .observe_all(&[service.to_string()])
            .await
            .map_err(|e| kube(service, "observe", e))?;
        Ok(state
            .get(service)
            .and_then(|s| s.live.as_ref())
            .is_some_and(|l| l != version))
    }

    pub(super) async fn wait(
        &self,
        service: &str,
        version: &str,
        applied_at: jiff::Timestamp,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let selector = traffic::selector_string(&traffic::selector(service, Some(version)));
        track::wait_rollout(
            &self.client(),
            self.namespace(),
            &name,
            &selector,
            applied_at,
            self.clock.clone(),
            self.graces,
        )
        .await
        .map_err(|failure| TargetError::Unhealthy {
            service: service.to_string(),
            version: version.to_string(),
            detail: failure.to_string(),
        })
    }

    /// Sets a version's replicas (and the traffic share it was given); waits for readiness when
    /// scaling up.
    pub(super) async fn scale(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
        share: u8,
    ) -> Result<(), TargetError> {
        let applied_at = self.clock.now();
        let before = self.set_replicas(service, version, replicas, share).await?;
        let count = before.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        // A warm revision already serving at this count (a rollback's switch back) has nothing
        // to wait for: its own status says so, without starting three watches.
        if replicas > 0 && replicas >= count && !(replicas == count && settled(&before)) {
            self.wait(service, version, applied_at).await?;
        }
        Ok(())
    }

    /// Sets a version's replicas and traffic share (a merge patch: replicas are not applied
    /// server-side, see [`VersionObjects`]); returns the Deployment as it was before.
    pub(super) async fn set_replicas(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
        share: u8,
    ) -> Result<Deployment, TargetError> {
        let name = format!("{service}-{version}");
        let patch = serde_json::json!({
            "metadata": {"annotations": {TRAFFIC_ANNOTATION: share.to_string()}},
            "spec": {"replicas": replicas},
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let api = self.deployments();
        let current = self
            .deployment(service, version, "scale")
            .await?
            .ok_or_else(|| {
                action(
                    service,
                    "scale",
                    format!("Deployment {name} does not exist"),
                )
            })?;
        let (api_ref, name_ref, params_ref, body) = (&api, &name, &params, &patch);
        retrying(Backoff::default(), move || async move {
            api_ref
                .patch(name_ref, params_ref, &Patch::Merge(body))
                .await
        })
        .await
        .map_err(|e| {
            kube(
                service,
                "scale",
                KubeError::from_kube("scale", format!("Deployment/{name}"), e),
            )
        })?;
        Ok(current)
    }

    pub(super) async fn switch(
        &self,
        service: &str,
        from: Option<&str>,
        to: &str,
        percent: u8,
    ) -> Result<(), TargetError> {
        let objects = self.objects(service, to).await?;
        let total = objects.replicas();
        let pinned = percent >= 100;
        let count = if pinned {
            total
        } else {
            traffic::canary_count(total, &self.steps, percent)
        };
        // The new version first takes its replicas and is ready, then traffic moves.
        self.scale(service, to, count, percent.min(100)).await?;
        if !pinned && objects.service.is_some() {
            // The widened selector must find only the two revisions in play.
            let keep: Vec<&str> = [Some(to), from].into_iter().flatten().collect();
            self.isolate(service, &keep).await?;
        }
        if let Some(mut stable) = objects.service.clone() {
            let selector = traffic::selector(service, pinned.then_some(to));
            stable.object.data["spec"]["selector"] =
                serde_json::to_value(selector).unwrap_or_default();
            self.applier
                .apply_owning(&stable, traffic::SELECTOR_FIELD, false)
                .await
                .map_err(|e| kube(service, "switch", e))?;
        }
        // What is left touches other objects each: the outgoing revision, the incoming one's
        // autoscaler, the restart baseline. Issued together, not one round trip after another.
        let outgoing = async {
            let Some(from) = from.filter(|f| *f != to) else {
                return Ok(());
            };
            let (old_replicas, old_share) = match (&objects.service, pinned) {
                // A pinned selector sends nothing to the old version: it stays warm as it is.
                (Some(_), true) => (None, 0),
                // A worker takes work by running: it switches by scaling.
                (None, true) => (Some(0), 0),
                (_, false) => (Some((total - count).max(0)), 100 - percent),
            };
            match old_replicas {
                Some(replicas) if !pinned => {
                    // Its autoscaler must not resize it under the step's shares.
                    self.pin_autoscaler(service, from, replicas).await?;
                    self.scale(service, from, replicas, old_share).await?
                }
                Some(replicas) => self.scale(service, from, replicas, old_share).await?,
                None => self.annotate(service, from, old_share).await?,
            }
            if pinned {
                self.unpin_autoscaler(service, from).await?;
            }
            Ok::<(), TargetError>(())
        };
        let incoming = async {
            if pinned {
                // A switch back to a revision a canary had pinned (a rollback) frees its
                // autoscaler.
                self.unpin_autoscaler(service, to).await?;
                if let Some(autoscaler) = &objects.autoscaler {
                    self.apply_autoscaler(autoscaler)
                        .await
                        .map_err(|e| kube(service, "switch", e))?;
                }
            }
            Ok::<(), TargetError>(())
        };
        let ((), (), restarts) =
            futures::try_join!(outgoing, incoming, self.restart_count(service, to))?;
        if let Ok(mut seen) = self.restarts.lock() {
            seen.insert((service.to_string(), to.to_string()), restarts);
        }
        Ok(())
    }

    pub(super) async fn annotate(
        &self,
        service: &str,
        version: &str,
        share: u8,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let patch = serde_json::json!({"metadata": {"annotations": {TRAFFIC_ANNOTATION: share.to_string()}}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let api = self.deployments();
        let (api, name_ref, params, body) = (&api, &name, &params, &patch);
        let result = retrying(Backoff::default(), move || async move {
            api.patch(name_ref, params, &Patch::Merge(body)).await
        });
        match result.await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(kube(
                service,
                "switch",
                KubeError::from_kube("annotate", format!("Deployment/{name}"), e),
            )),
        }
    }
}

/// Whether `deployment`'s controller has seen its latest spec and every one of its replicas is
/// updated, ready and available, with no other pod left: a finished rollout, by its status alone.
pub(super) fn settled(deployment: &Deployment) -> bool {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = &deployment.status else {
        return false;
    };
    let seen =
        status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(1);
    let all = |count: Option<i32>| count.unwrap_or(0) == wanted;
    seen && wanted > 0
        && all(status.replicas)
        && all(status.updated_replicas)
        && all(status.ready_replicas)
        && all(status.available_replicas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(generation: i64, observed: i64, counts: [i32; 4]) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "api-a1", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {
                "observedGeneration": observed,
                "replicas": counts[0],
                "updatedReplicas": counts[1],
                "readyReplicas": counts[2],
                "availableReplicas": counts[3],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_is_settled_only_when_its_status_has_caught_up_with_every_replica() {
        assert!(settled(&deployment(3, 3, [2, 2, 2, 2])));
        // The controller has not seen the latest spec yet.
        assert!(!settled(&deployment(4, 3, [2, 2, 2, 2])));
        // An old pod still around, one not updated, one not ready, one not yet available.
        assert!(!settled(&deployment(3, 3, [3, 2, 2, 2])));
        assert!(!settled(&deployment(3, 3, [2, 1, 2, 2])));
        assert!(!settled(&deployment(3, 3, [2, 2, 1, 2])));
        assert!(!settled(&deployment(3, 3, [2, 2, 2, 1])));
        // No status at all.
        let mut fresh = deployment(1, 1, [0; 4]);
        fresh.status = None;
        assert!(!settled(&fresh));
    }
}

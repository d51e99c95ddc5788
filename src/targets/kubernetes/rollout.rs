//! Provisioning a version beside the others and moving traffic to it: server-side apply,
//! replicas by patch, readiness by watch, the stable Service's selector or canary replica shares.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
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
        let state = self
            .observe_all(&[service.to_string()])
            .await
            .map_err(|e| kube(service, "observe", e))?;
        let has_live = state
            .get(service)
            .and_then(|s| s.live.as_ref())
            .is_some_and(|l| l != version);
        let total = objects.replicas();
        let replicas = if self.strategy == Strategy::Canary && has_live {
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
        if replicas > 0 && replicas >= before {
            self.wait(service, version, applied_at).await?;
        }
        Ok(())
    }

    /// Sets a version's replicas and traffic share (a merge patch: replicas are not applied
    /// server-side, see [`VersionObjects`]); returns the replicas it had.
    pub(super) async fn set_replicas(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
        share: u8,
    ) -> Result<i32, TargetError> {
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
        let before = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
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
        Ok(before)
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
        if let Some(mut stable) = objects.service.clone() {
            let selector = traffic::selector(service, pinned.then_some(to));
            stable.object.data["spec"]["selector"] =
                serde_json::to_value(selector).unwrap_or_default();
            self.applier
                .apply_owning(&stable, traffic::SELECTOR_FIELD, false)
                .await
                .map_err(|e| kube(service, "switch", e))?;
        }
        if let Some(from) = from.filter(|f| *f != to) {
            let (old_replicas, old_share) = match (&objects.service, pinned) {
                // A pinned selector sends nothing to the old version: it stays warm as it is.
                (Some(_), true) => (None, 0),
                // A worker takes work by running: it switches by scaling.
                (None, true) => (Some(0), 0),
                (_, false) => (Some((total - count).max(0)), 100 - percent),
            };
            match old_replicas {
                Some(replicas) => {
                    let replicas = self.autoscaler_bounds(service, from, replicas).await?;
                    self.scale(service, from, replicas, old_share).await?
                }
                None => self.annotate(service, from, old_share).await?,
            }
        }
        if pinned && let Some(autoscaler) = &objects.autoscaler {
            self.apply_autoscaler(autoscaler)
                .await
                .map_err(|e| kube(service, "switch", e))?;
        }
        let restarts = self.restart_count(service, to).await?;
        if let Ok(mut seen) = self.restarts.lock() {
            seen.insert((service.to_string(), to.to_string()), restarts);
        }
        Ok(())
    }

    /// `replicas` within the bounds of the version's HPA, if it has one. On a real cluster the
    /// HPA controller restores `minReplicas` (and `maxReplicas`) within its 15 s sync period, so a
    /// canary step that shrank the outgoing version below them only held until then and the
    /// shares drifted; the outgoing version keeps what its autoscaler demands instead, so the
    /// canary's share is below the step's while the HPA's minimum holds the outgoing version up.
    /// (Pinning the HPA during the steps is issue 19.)
    async fn autoscaler_bounds(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
    ) -> Result<i32, TargetError> {
        let name = format!("{service}-{version}");
        let api: kube::Api<HorizontalPodAutoscaler> =
            kube::Api::namespaced(self.client(), self.namespace());
        let found = retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| {
                kube(
                    service,
                    "switch",
                    KubeError::from_kube("read", format!("HorizontalPodAutoscaler/{name}"), e),
                )
            })?;
        let Some(spec) = found.and_then(|h| h.spec) else {
            return Ok(replicas);
        };
        let min = spec.min_replicas.unwrap_or(1);
        Ok(replicas.clamp(min, spec.max_replicas.max(min)))
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

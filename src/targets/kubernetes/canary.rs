//! A canary feeds exactly two revisions. Its steps widen the stable Service's selector to the
//! whole service (`app.kubernetes.io/name`), which would also select every other warm revision
//! still running — an older one could take more traffic than the canary. So before a step
//! widens the selector, every other revision of the service is scaled to zero and Convoy waits,
//! by watch, until none of its pods can serve (each is gone or terminating, which takes it out of
//! the endpoints). A revision scaled to zero stays warm: its objects remain, and a switch back to
//! it scales it up first.
//!
//! The outgoing revision's HorizontalPodAutoscaler is pinned for the steps: its min and max are
//! set to the step's count (the bounds it had are kept in an annotation), so the autoscaler
//! cannot resize it under the shares. The last step, or a rollback's switch back, restores them.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};

use crate::execute::TargetError;

use super::KubeError;
use super::records::FIELD_MANAGER;
use super::retry::{Backoff, retrying};
use super::target::{KubeTarget, kube};
use super::traffic::{self, VERSION_LABEL};

/// On a pinned autoscaler: the `min,max` it had before the canary pinned it.
pub const PINNED_ANNOTATION: &str = "convoy.dev/canary-pinned-from";

impl KubeTarget {
    /// Scales every revision of `service` but `keep` to zero and waits until none serves.
    pub(super) async fn isolate(&self, service: &str, keep: &[&str]) -> Result<(), TargetError> {
        // Only Deployments Convoy made for this service: nothing another tool runs is scaled.
        let labels = traffic::selector_string(&traffic::selector(service, None));
        let labels = format!("{labels},{}", super::observe::MANAGED);
        let api = self.deployments();
        let params = ListParams::default().labels(&labels);
        let listed = retrying(Backoff::default(), || api.list(&params))
            .await
            .map_err(|e| {
                let error = KubeError::from_kube("list", format!("Deployments of {service}"), e);
                kube(service, "switch", error)
            })?;
        for deployment in listed.items {
            let labels = deployment.metadata.labels.clone().unwrap_or_default();
            let Some(version) = labels.get(VERSION_LABEL) else {
                continue;
            };
            let replicas = deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1);
            let being_deleted = deployment.metadata.deletion_timestamp.is_some();
            if keep.contains(&version.as_str()) || being_deleted {
                continue;
            }
            if replicas > 0 {
                self.set_replicas(service, version, 0, 0).await?;
            }
            self.wait_unserved(service, version).await?;
        }
        Ok(())
    }

    /// Until every pod of `version` is gone or terminating (the step's timeout bounds it).
    async fn wait_unserved(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let pods: kube::Api<Pod> = kube::Api::namespaced(self.client(), self.namespace());
        let labels = traffic::selector_string(&traffic::selector(service, Some(version)));
        let config = watcher::Config::default().labels(&labels);
        let mut events = watcher::watcher(pods, config).boxed();
        let mut seen: BTreeMap<String, bool> = BTreeMap::new();
        let mut listed = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => {
                    seen.clear();
                    listed = false;
                }
                Ok(Event::InitApply(pod) | Event::Apply(pod)) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    seen.insert(name, pod.metadata.deletion_timestamp.is_none());
                }
                Ok(Event::Delete(pod)) => {
                    seen.remove(&pod.metadata.name.unwrap_or_default());
                }
                Ok(Event::InitDone) => listed = true,
                Err(watcher::Error::WatchError(status)) if matches!(status.code, 401 | 403) => {
                    let detail = format!("cannot watch pods of {service}-{version}: {status:?}");
                    return Err(super::target::action(service, "switch", detail));
                }
                Err(_) => continue, // the watcher backs off and resumes by itself
            }
            if listed && !seen.values().any(|serving| *serving) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Pins the autoscaler of `version` (if it has one) at `replicas`, keeping its own bounds.
    pub(super) async fn pin_autoscaler(
        &self,
        service: &str,
        version: &str,
        replicas: i32,
    ) -> Result<(), TargetError> {
        let Some(hpa) = self.autoscaler(service, version).await? else {
            return Ok(());
        };
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let annotations = hpa.metadata.annotations.clone().unwrap_or_default();
        let spec = hpa.spec.unwrap_or_default();
        let original = annotations
            .get(PINNED_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| format!("{},{}", spec.min_replicas.unwrap_or(1), spec.max_replicas));
        let replicas = replicas.max(1);
        let patch = serde_json::json!({
            "metadata": {"annotations": {PINNED_ANNOTATION: original}},
            "spec": {"minReplicas": replicas, "maxReplicas": replicas},
        });
        self.patch_autoscaler(service, version, &patch).await?;
        self.pins.set(&self.autoscalers(), &name, true).await;
        Ok(())
    }

    /// Gives the autoscaler of `version` back the bounds it had before a canary pinned it.
    pub(super) async fn unpin_autoscaler(
        &self,
        service: &str,
        version: &str,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        // Nearly always nothing pinned it: known without a read (see [`super::pins`]).
        if !self.pins.may_be_pinned(&self.autoscalers(), &name).await {
            return Ok(());
        }
        let Some(hpa) = self.autoscaler(service, version).await? else {
            return Ok(());
        };
        let annotations = hpa.metadata.annotations.unwrap_or_default();
        let Some((min, max)) = annotations
            .get(PINNED_ANNOTATION)
            .and_then(|pinned| pinned.split_once(','))
            .and_then(|(min, max)| Some((min.parse::<i32>().ok()?, max.parse::<i32>().ok()?)))
        else {
            return Ok(());
        };
        let patch = serde_json::json!({
            "metadata": {"annotations": {PINNED_ANNOTATION: null}},
            "spec": {"minReplicas": min, "maxReplicas": max},
        });
        self.patch_autoscaler(service, version, &patch).await?;
        self.pins.set(&self.autoscalers(), &name, false).await;
        Ok(())
    }

    fn autoscalers(&self) -> kube::Api<HorizontalPodAutoscaler> {
        kube::Api::namespaced(self.client(), self.namespace())
    }

    async fn autoscaler(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<HorizontalPodAutoscaler>, TargetError> {
        let name = format!("{service}-{version}");
        let api = self.autoscalers();
        let found = retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| {
                let object = format!("HorizontalPodAutoscaler/{name}");
                kube(service, "switch", KubeError::from_kube("read", object, e))
            })?;
        // Only an autoscaler Convoy applied is pinned or restored.
        let (key, value) = super::observe::MANAGED.split_once('=').unwrap_or_default();
        Ok(found.filter(|hpa| {
            let labels = hpa.metadata.labels.as_ref();
            labels.and_then(|l| l.get(key)).map(String::as_str) == Some(value)
        }))
    }

    async fn patch_autoscaler(
        &self,
        service: &str,
        version: &str,
        patch: &serde_json::Value,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let api = self.autoscalers();
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let (api, name_ref, params) = (&api, &name, &params);
        retrying(Backoff::default(), move || async move {
            api.patch(name_ref, params, &Patch::Merge(patch)).await
        })
        .await
        .map(drop)
        .map_err(|e| {
            let object = format!("HorizontalPodAutoscaler/{name}");
            kube(service, "switch", KubeError::from_kube("patch", object, e))
        })
    }
}

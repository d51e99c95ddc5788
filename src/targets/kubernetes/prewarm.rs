//! Pre-warming on Kubernetes: the schedule in a ConfigMap `convoy-prewarm-<env>` (windows and the
//! baselines to restore, as readable JSON), and capacity moved on the live version: the HPA's
//! `minReplicas` (and `maxReplicas` when it must widen) or, with no HPA, the Deployment's
//! replicas. Raising also scales the Deployment up at once rather than waiting for the HPA's
//! next sync, so the capacity is Ready as early as possible.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams};

use crate::execute::Clock;
use crate::plan::prewarm::{Change, Level, Reason, Schedule};
use crate::targets::TargetsError;
use crate::targets::prewarm::{Capacity, Prewarmer, RaisedBy, SetsCapacity, Stored, enforce_due};

use super::objects::api_resource;
use super::records::ENVIRONMENT_LABEL;
use super::retry::{Backoff, retrying};
use super::{Connection, KubeError, observe, traffic};

const SCHEDULE_KEY: &str = "schedule.json";
/// Its own field manager: the HPA's other fields stay Convoy's applied ones.
pub const FIELD_MANAGER: &str = "convoy-prewarm";

pub struct KubePrewarm {
    connection: Connection,
    environment: String,
}

impl KubePrewarm {
    pub fn new(connection: Connection, environment: &str) -> Self {
        KubePrewarm {
            connection,
            environment: environment.to_string(),
        }
    }

    fn name(&self) -> String {
        format!("convoy-prewarm-{}", self.environment)
    }

    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.connection.client.clone(), &self.connection.namespace)
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.connection.client.clone(), &self.connection.namespace)
    }

    fn autoscalers(&self) -> Result<Api<DynamicObject>, KubeError> {
        let resource =
            api_resource("autoscaling/v2", "HorizontalPodAutoscaler").ok_or_else(|| {
                KubeError::Object {
                    object: "HorizontalPodAutoscaler".into(),
                    detail: "no API resource".into(),
                }
            })?;
        Ok(Api::namespaced_with(
            self.connection.client.clone(),
            &self.connection.namespace,
            &resource,
        ))
    }

    fn object(&self) -> String {
        format!("ConfigMap/{}", self.name())
    }

    async fn capacity(&self, service: &str, version: &str) -> Result<Option<Capacity>, KubeError> {
        let name = format!("{service}-{version}");
        let deployments = self.deployments();
        let Some(deployment) = retrying(Backoff::default(), || deployments.get_opt(&name))
            .await
            .map_err(|e| KubeError::from_kube("read", format!("Deployment/{name}"), e))?
        else {
            return Ok(None);
        };
        let desired = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let autoscalers = self.autoscalers()?;
        let hpa = retrying(Backoff::default(), || autoscalers.get_opt(&name))
            .await
            .map_err(|e| {
                KubeError::from_kube("read", format!("HorizontalPodAutoscaler/{name}"), e)
            })?;
        let level = match hpa {
            Some(hpa) => Level {
                replicas: count(&hpa.data["spec"]["minReplicas"]).unwrap_or(1),
                max: count(&hpa.data["spec"]["maxReplicas"]),
                desired: None,
            },
            None => Level {
                replicas: non_negative(desired),
                max: None,
                desired: None,
            },
        };
        Ok(Some(Capacity {
            version: version.to_string(),
            level,
            desired: non_negative(desired),
            ready: non_negative(ready),
        }))
    }
}

impl KubePrewarm {
    /// Sets an HPA's bounds under prewarm's own field manager.
    async fn bound_autoscaler(&self, name: &str, min: u32, max: u32) -> Result<(), KubeError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let patch = serde_json::json!({"spec": {"minReplicas": min, "maxReplicas": max}});
        let api = self.autoscalers()?;
        let (api, params, body) = (&api, &params, &patch);
        retrying(Backoff::default(), move || async move {
            api.patch(name, params, &Patch::Merge(body)).await
        })
        .await
        .map(drop)
        .map_err(|e| KubeError::from_kube("patch", format!("HorizontalPodAutoscaler/{name}"), e))
    }

    /// The service's other HPAs whose fields prewarm set.
    async fn touched_autoscalers(
        &self,
        service: &str,
        live: &str,
    ) -> Result<Vec<String>, KubeError> {
        let api = self.autoscalers()?;
        let params = ListParams::default().labels(&format!("{}={service}", traffic::NAME_LABEL));
        let list = retrying(Backoff::default(), || api.list(&params))
            .await
            .map_err(|e| KubeError::from_kube("list", "HorizontalPodAutoscalers", e))?;
        Ok(list
            .items
            .into_iter()
            .filter(|hpa| {
                hpa.metadata
                    .managed_fields
                    .iter()
                    .flatten()
                    .any(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
            })
            .filter_map(|hpa| hpa.metadata.name)
            .filter(|name| name != live)
            .collect())
    }
}

#[async_trait]
impl SetsCapacity for KubePrewarm {
    async fn set(&self, change: &Change) -> Result<(), TargetsError> {
        let service = &change.service;
        let levels = self.levels(std::slice::from_ref(service)).await?;
        let Some(capacity) = levels.get(service) else {
            return Ok(());
        };
        let name = format!("{service}-{}", capacity.version);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let to = change.to;
        let replicas = match to.max {
            Some(max) => {
                let mut names = vec![name.clone()];
                if change.reason == Reason::Restore {
                    // Versions kept warm were raised while they were live: give that back too.
                    names.extend(self.touched_autoscalers(service, &name).await?);
                }
                for hpa in &names {
                    self.bound_autoscaler(hpa, to.replicas, max).await?;
                }
                // The HPA would get there on its next sync; raising now saves that minute.
                capacity.desired.clamp(to.replicas, max)
            }
            None => to.replicas,
        };
        if replicas != capacity.desired {
            let patch = serde_json::json!({"spec": {"replicas": replicas}});
            let api = self.deployments();
            let (api, name_ref, params, body) = (&api, &name, &params, &patch);
            retrying(Backoff::default(), move || async move {
                api.patch(name_ref, params, &Patch::Merge(body)).await
            })
            .await
            .map_err(|e| KubeError::from_kube("scale", format!("Deployment/{name}"), e))?;
        }
        Ok(())
    }
}

fn count(value: &serde_json::Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn non_negative(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

#[async_trait]
impl Prewarmer for KubePrewarm {
    fn raised_by(&self) -> RaisedBy {
        RaisedBy::Apply
    }

    fn location(&self) -> String {
        format!("ConfigMap {}/{}", self.connection.namespace, self.name())
    }

    async fn load(&self) -> Result<Stored, TargetsError> {
        let api = self.configmaps();
        let name = self.name();
        let found = retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| KubeError::from_kube("read", self.object(), e))?;
        let Some(object) = found else {
            return Ok(Stored::default());
        };
        let text = object
            .data
            .as_ref()
            .and_then(|d| d.get(SCHEDULE_KEY))
            .cloned()
            .unwrap_or_default();
        let schedule = if text.is_empty() {
            Schedule::default()
        } else {
            serde_json::from_str(&text).map_err(|e| TargetsError::CorruptSchedule {
                location: self.location(),
                detail: e.to_string(),
            })?
        };
        Ok(Stored {
            schedule,
            token: object.metadata.resource_version,
        })
    }

    async fn save(&self, schedule: &Schedule, token: Option<&str>) -> Result<String, TargetsError> {
        let text = serde_json::to_string_pretty(schedule).map_err(|e| KubeError::Object {
            object: self.location(),
            detail: e.to_string(),
        })?;
        let object = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name()),
                namespace: Some(self.connection.namespace.clone()),
                resource_version: token.map(str::to_string),
                labels: Some(BTreeMap::from([
                    (ENVIRONMENT_LABEL.to_string(), self.environment.clone()),
                    ("convoy.dev/prewarm".to_string(), "schedule".to_string()),
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "convoy".to_string(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(SCHEDULE_KEY.to_string(), text)])),
            ..ConfigMap::default()
        };
        let api = self.configmaps();
        let params = PostParams::default();
        // Not retried blindly: a conflict means another runner changed the schedule.
        let written = match token {
            Some(_) => api.replace(&self.name(), &params, &object).await,
            None => api.create(&params, &object).await,
        };
        let written = written.map_err(|e| match e {
            kube::Error::Api(status) if status.code == 409 => KubeError::Api {
                action: "write",
                object: self.object(),
                message: "another run changed the prewarm schedule meanwhile; nothing of this run's change was stored".to_string(),
                code: Some(409),
            },
            other => KubeError::from_kube("write", self.object(), other),
        })?;
        Ok(written.metadata.resource_version.unwrap_or_default())
    }

    async fn levels(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, Capacity>, TargetsError> {
        let states = observe::observe(
            &self.connection.client,
            &self.connection.namespace,
            services,
        )
        .await?;
        let mut out = BTreeMap::new();
        for (service, state) in states {
            let Some(version) = state.live else { continue };
            if let Some(capacity) = self.capacity(&service, &version).await? {
                out.insert(service, capacity);
            }
        }
        Ok(out)
    }

    async fn enforce(&self, stored: Stored, now: Timestamp) -> Result<Vec<Change>, TargetsError> {
        Ok(enforce_due(self, stored, now).await?.0)
    }

    async fn wait_ready(
        &self,
        wanted: &BTreeMap<String, u32>,
        clock: Arc<dyn Clock>,
    ) -> Result<(), TargetsError> {
        let services: Vec<String> = wanted.keys().cloned().collect();
        // Every service at once: independent rollouts, followed through one set of watches
        // started now, after the writes being waited for.
        let levels = self.levels(&services).await?;
        let tracker = super::track::Tracker::new(
            self.connection.client.clone(),
            &self.connection.namespace,
            services.iter().cloned().collect(),
        );
        let graces = super::Graces::default();
        let written = super::track::Written::default();
        let waits = levels.into_iter().map(|(service, capacity)| {
            let (clock, tracker, graces, written) = (clock.clone(), &tracker, &graces, &written);
            async move {
                let name = format!("{service}-{}", capacity.version);
                tracker
                    .wait_rollout(&name, written, clock.now(), &*clock, graces)
                    .await
                    .map_err(|failure| KubeError::Api {
                        action: "prewarm",
                        object: format!("Deployment/{name}"),
                        message: failure.to_string(),
                        code: None,
                    })
            }
        });
        futures::future::try_join_all(waits).await?;
        Ok(())
    }
}

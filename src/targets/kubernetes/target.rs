//! The Kubernetes target: each version a Deployment `<service>-<version>` beside the others,
//! traffic moved by the stable Service's selector (or replica share for canary steps), readiness
//! followed by watch, cleanup by scaling to zero and deleting.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::artifacts::ArtifactStore;
use crate::config::Strategy;
use crate::execute::{Clock, Target, TargetError};
use crate::plan::{Action, Plan, ServiceState, Step};
use crate::render::SecretMode;

use super::apply::Applier;
use super::objects::{Renderer, VersionObjects, api_resource};
use super::records::FIELD_MANAGER;
use super::retry::{Backoff, retrying};
use super::rollout_status::{Graces, RolloutStatus, rollout_status};
use super::traffic::{self, NAME_LABEL, TRAFFIC_ANNOTATION};
use super::{KubeError, observe, track};

pub struct KubeTarget {
    pub applier: Applier,
    pub renderer: Renderer,
    pub store: Option<Arc<dyn ArtifactStore>>,
    pub clock: Arc<dyn Clock>,
    pub graces: Graces,
    pub strategy: Strategy,
    pub steps: Vec<u8>,
    /// The release being run, for the `convoy.dev/release` label.
    pub release: AtomicU64,
    /// Restart counts of each version's pods when it last took traffic, to tell new restarts.
    restarts: Mutex<BTreeMap<(String, String), i32>>,
    /// Each service's `health.check` command and its budget, run from `check_dir` after a bake.
    pub checks: BTreeMap<String, (String, std::time::Duration)>,
    pub check_dir: std::path::PathBuf,
    /// Prewarm: the capacity of services inside an active window, which a version deployed now
    /// starts at (see [`VersionObjects::at_least`]).
    pub prewarm_floors: BTreeMap<String, u32>,
}

impl KubeTarget {
    pub fn new(
        applier: Applier,
        renderer: Renderer,
        store: Option<Arc<dyn ArtifactStore>>,
        clock: Arc<dyn Clock>,
        strategy: Strategy,
        steps: Vec<u8>,
    ) -> Self {
        KubeTarget {
            applier,
            renderer,
            store,
            clock,
            graces: Graces::default(),
            strategy,
            steps,
            release: AtomicU64::new(0),
            restarts: Mutex::new(BTreeMap::new()),
            checks: BTreeMap::new(),
            check_dir: std::path::PathBuf::from("."),
            prewarm_floors: BTreeMap::new(),
        }
    }

    /// Versions of these services are provisioned at least this big (an active prewarm window).
    pub fn with_prewarm_floors(mut self, floors: BTreeMap<String, u32>) -> Self {
        self.prewarm_floors = floors;
        self
    }

    /// Runs each service's `health.check` command (from `dir`, within its budget) after a bake.
    pub fn with_checks(
        mut self,
        dir: &std::path::Path,
        checks: BTreeMap<String, (String, std::time::Duration)>,
    ) -> Self {
        self.check_dir = dir.to_path_buf();
        self.checks = checks;
        self
    }

    /// The service's `health.check` command, with the version and namespace in its environment.
    async fn run_check(&self, service: &str, version: &str) -> Result<(), TargetError> {
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
            secrets: Vec::new(),
        };
        crate::targets::host::run_in(service, "check", command, &self.check_dir, &env, *budget)
            .await
            .map_err(|detail| TargetError::Unhealthy {
                service: service.to_string(),
                version: version.to_string(),
                detail,
            })
    }

    fn client(&self) -> kube::Client {
        self.applier.client.clone()
    }

    fn namespace(&self) -> &str {
        &self.applier.namespace
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client(), self.namespace())
    }

    async fn objects(&self, service: &str, version: &str) -> Result<VersionObjects, TargetError> {
        let versions = BTreeMap::from([(service.to_string(), version.to_string())]);
        let mut rendered = self
            .renderer
            .render(
                &versions,
                self.store.as_deref(),
                self.release.load(Ordering::Relaxed),
                SecretMode::Reveal,
            )
            .await
            .map_err(|e| action(service, "render", crate::diagnostic::chain(&e)))?;
        let mut objects = rendered.remove(service).unwrap_or_default();
        if let Some(&floor) = self.prewarm_floors.get(service) {
            objects.at_least(floor);
        }
        Ok(objects)
    }

    async fn observe_all(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, KubeError> {
        observe::observe(&self.client(), self.namespace(), services).await
    }

    /// Applies a version's ConfigMaps, Secrets, PDB and Deployment (at `replicas`), then waits by
    /// watch until the rollout is done or fails.
    async fn provision(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let objects = self.objects(service, version).await?;
        let Some(deployment) = objects.deployment.clone() else {
            return Err(action(
                service,
                "provision",
                "the templates render no Deployment",
            ));
        };
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

    async fn wait(
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
    async fn scale(
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
    async fn set_replicas(
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
        let current = retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| {
                kube(
                    service,
                    "scale",
                    KubeError::from_kube("read", format!("Deployment/{name}"), e),
                )
            })?
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

    async fn switch(
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
                .apply(&stable, false)
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
                Some(replicas) => self.scale(service, from, replicas, old_share).await?,
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

    /// Applies a version's HPA. Prewarm moves its `minReplicas`/`maxReplicas` under its own field
    /// manager; a version switched to again takes them back (any other manager still conflicts).
    async fn apply_autoscaler(&self, autoscaler: &super::objects::Object) -> Result<(), KubeError> {
        match self.applier.apply(autoscaler, false).await {
            Err(KubeError::Conflict { manager, .. })
                if manager == super::prewarm::FIELD_MANAGER =>
            {
                self.applier.apply_forced(autoscaler).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    async fn annotate(&self, service: &str, version: &str, share: u8) -> Result<(), TargetError> {
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

    async fn pods(&self, service: &str, version: &str) -> Result<Vec<Pod>, TargetError> {
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

    async fn restart_count(&self, service: &str, version: &str) -> Result<i32, TargetError> {
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

    /// Scales a version to zero and deletes its objects, keeping ConfigMaps and Secrets another
    /// version of the service still uses (their names are content hashes, so versions share them).
    async fn delete_version(
        &self,
        service: &str,
        version: &str,
        scale_first: bool,
    ) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let api = self.deployments();
        let fail = |e: KubeError| kube(service, "delete", e);
        let found = retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| {
                fail(KubeError::from_kube(
                    "read",
                    format!("Deployment/{name}"),
                    e,
                ))
            })?;
        let Some(deployment) = found else {
            return Ok(());
        };
        if scale_first {
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
        self.applier.delete(&hpa, &name).await.map_err(fail)?;
        let deployment_resource = api_resource("apps/v1", "Deployment")
            .ok_or_else(|| action(service, "delete", "no Deployment resource"))?;
        self.applier
            .delete(&deployment_resource, &name)
            .await
            .map_err(fail)?;
        self.applier.delete(&pdb, &name).await.map_err(fail)?;
        for (kind, referenced) in references(&deployment) {
            if still_used.contains(&(kind.clone(), referenced.clone())) {
                continue;
            }
            let resource = if kind == "ConfigMap" {
                &configmap
            } else {
                &secret
            };
            self.applier
                .delete(resource, &referenced)
                .await
                .map_err(fail)?;
        }
        Ok(())
    }

    async fn check(&self, service: &str, version: &str) -> Result<(), TargetError> {
        let name = format!("{service}-{version}");
        let unhealthy = |detail: String| TargetError::Unhealthy {
            service: service.to_string(),
            version: version.to_string(),
            detail,
        };
        let api = self.deployments();
        let deployment = retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| {
                kube(
                    service,
                    "verify",
                    KubeError::from_kube("read", format!("Deployment/{name}"), e),
                )
            })?
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
        match rollout_status(
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

    /// Server-side dry run of every object of every version `plan` provisions or switches to:
    /// an admission or schema error stops the release before anything changes.
    pub async fn dry_run(&self, plan: &Plan) -> Result<(), TargetError> {
        let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for step in &plan.steps {
            match &step.action {
                Action::Provision { version } => {
                    versions
                        .entry(step.service.clone())
                        .or_default()
                        .insert(version.clone());
                }
                Action::Switch { to, .. } => {
                    versions
                        .entry(step.service.clone())
                        .or_default()
                        .insert(to.clone());
                }
                Action::Retire { .. } | Action::Remove { .. } => {}
            }
        }
        let mut checks = Vec::new();
        for (service, versions) in &versions {
            for version in versions {
                checks.push(async move {
                    let objects = self.objects(service, version).await?;
                    let results =
                        join_all(objects.all().map(|o| self.applier.apply(o, true))).await;
                    let problems: Vec<String> = results
                        .into_iter()
                        .filter_map(Result::err)
                        .map(|e| {
                            let help = crate::diagnostic::Diagnose::help(&e)
                                .map(|h| format!(" (help: {h})"))
                                .unwrap_or_default();
                            format!("{e}{help}")
                        })
                        .collect();
                    if problems.is_empty() {
                        Ok(())
                    } else {
                        Err(action(service, "dry-run", problems.join("; ")))
                    }
                });
            }
        }
        let problems: Vec<String> = join_all(checks)
            .await
            .into_iter()
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TargetError::Action {
                service: format!(
                    "{} of {} version(s)",
                    problems.len(),
                    versions.values().map(BTreeSet::len).sum::<usize>()
                ),
                action: "server-side dry run".to_string(),
                detail: format!("\n  {}", problems.join("\n  ")),
            })
        }
    }
}

/// The ConfigMaps and Secrets a Deployment's pods read (`envFrom` and volumes).
fn references(deployment: &Deployment) -> Vec<(String, String)> {
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

fn action(service: &str, what: &str, detail: impl Into<String>) -> TargetError {
    TargetError::Action {
        service: service.to_string(),
        action: what.to_string(),
        detail: detail.into(),
    }
}

fn kube(service: &str, what: &str, error: KubeError) -> TargetError {
    action(service, what, crate::diagnostic::chain(&error))
}

#[async_trait]
impl Target for KubeTarget {
    fn weighted_traffic(&self) -> bool {
        true
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetError> {
        self.observe_all(services)
            .await
            .map_err(|e| kube("environment", "observe", e))
    }

    async fn preflight(&self, plan: &Plan, release: u64) -> Result<(), TargetError> {
        self.release.store(release, Ordering::Relaxed);
        self.dry_run(plan).await
    }

    async fn apply(&self, step: &Step) -> Result<(), TargetError> {
        let service = step.service.as_str();
        match &step.action {
            Action::Provision { version } => self.provision(service, version).await,
            Action::Switch {
                from, to, percent, ..
            } => self.switch(service, from.as_deref(), to, *percent).await,
            Action::Retire { version } => self.delete_version(service, version, true).await,
            Action::Remove { version } => self.delete_version(service, version, false).await,
        }
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        self.check(service, version).await?;
        self.run_check(service, version).await
    }
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

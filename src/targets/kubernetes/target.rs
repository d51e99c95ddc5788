//! The Kubernetes target: each version a Deployment `<service>-<version>` beside the others,
//! traffic moved by the stable Service's selector (or replica share for canary steps), readiness
//! followed by watch, cleanup by scaling to zero and deleting; release tasks run as Jobs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::artifacts::ArtifactStore;
use crate::config::Strategy;
use crate::execute::{Clock, Target, TargetError};
use crate::plan::{Action, Plan, ServiceState, Step};
use crate::render::SecretMode;

use super::apply::Applier;
use super::objects::{PARSED_AT_ONCE, Packed, Renderer, VersionObjects};
use super::pins::Pins;
use super::retry::{Backoff, retrying};
use super::rollout_status::Graces;
use super::track::Tracker;
use super::{KubeError, observe};

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
    pub(super) restarts: Mutex<BTreeMap<(String, String), i32>>,
    /// Each service's `health.check` command and its budget, run from `check_dir` after a bake.
    pub checks: BTreeMap<String, (String, std::time::Duration)>,
    pub check_dir: std::path::PathBuf,
    /// Prewarm windows: a version deployed inside an active one starts at its capacity (see
    /// [`VersionObjects::at_least`]); checked at each step, so one after the window ends does not.
    pub prewarm: crate::plan::prewarm::Schedule,
    /// Each revision's objects as rendered for this release: the dry run, the provision and
    /// every switch of a revision apply the same ones, rendered once (per release number: its
    /// label is in them) and kept as text.
    rendered: Mutex<BTreeMap<(String, String, u64), Arc<Packed>>>,
    /// Slots for revisions' objects parsed at once (see [`PARSED_AT_ONCE`]).
    parsed: Arc<tokio::sync::Semaphore>,
    /// The namespace's rollouts, followed by one set of watches for every wait.
    pub(super) tracker: Tracker,
    /// Which autoscalers a canary has pinned, listed once when a switch first asks.
    pub(super) pins: Pins,
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
        let services = renderer.project.services.keys().cloned().collect();
        KubeTarget {
            tracker: Tracker::new(applier.client.clone(), &applier.namespace, services),
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
            prewarm: crate::plan::prewarm::Schedule::default(),
            rendered: Mutex::new(BTreeMap::new()),
            parsed: Arc::new(tokio::sync::Semaphore::new(PARSED_AT_ONCE)),
            pins: Pins::default(),
        }
    }

    /// Versions deployed inside a window of `schedule` start at the window's capacity.
    pub fn with_prewarm(mut self, schedule: crate::plan::prewarm::Schedule) -> Self {
        self.prewarm = schedule;
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

    pub(super) fn client(&self) -> kube::Client {
        self.applier.client.clone()
    }

    pub(super) fn namespace(&self) -> &str {
        &self.applier.namespace
    }

    /// The Deployment of `version` of `service`, if it exists (`what`: the action, for errors).
    pub(super) async fn deployment(
        &self,
        service: &str,
        version: &str,
        what: &str,
    ) -> Result<Option<Deployment>, TargetError> {
        let name = format!("{service}-{version}");
        let api = self.deployments();
        retrying(Backoff::default(), || api.get_opt(&name))
            .await
            .map_err(|e| {
                kube(
                    service,
                    what,
                    KubeError::from_kube("read", format!("Deployment/{name}"), e),
                )
            })
    }

    pub(super) fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client(), self.namespace())
    }

    /// A revision's objects for one use: the caller's own copy, holding one of the slots for
    /// objects parsed at once until it is dropped (drop it before waiting).
    pub(super) async fn objects(
        &self,
        service: &str,
        version: &str,
    ) -> Result<VersionObjects, TargetError> {
        let held = Arc::clone(&self.parsed)
            .acquire_owned()
            .await
            .map_err(|e| action(service, "render", e.to_string()))?;
        let release = self.release.load(Ordering::Relaxed);
        let key = (service.to_string(), version.to_string(), release);
        let cached = self.rendered.lock().ok().and_then(|r| r.get(&key).cloned());
        let mut objects = match cached {
            Some(packed) => packed.unpack().map_err(|e| kube(service, "render", e))?,
            None => {
                let versions = BTreeMap::from([(key.0.clone(), key.1.clone())]);
                let mut rendered = self
                    .renderer
                    .render(
                        &versions,
                        self.store.as_deref(),
                        release,
                        SecretMode::Reveal,
                    )
                    .await
                    .map_err(|e| action(service, "render", crate::diagnostic::chain(&e)))?;
                let objects = rendered.remove(service).unwrap_or_default();
                let packed = objects.pack().map_err(|e| kube(service, "render", e))?;
                if let Ok(mut cache) = self.rendered.lock() {
                    cache.insert(key, Arc::new(packed));
                }
                objects
            }
        };
        if let Some(floor) = crate::plan::prewarm::floor(&self.prewarm, service, self.clock.now()) {
            objects.at_least(floor);
        }
        objects.held = Some(Arc::new(held));
        Ok(objects)
    }

    /// Applies a version's HPA. Prewarm moves its `minReplicas`/`maxReplicas` under its own field
    /// manager; a version switched to again takes them back (any other manager still conflicts).
    pub(super) async fn apply_autoscaler(
        &self,
        autoscaler: &super::objects::Object,
    ) -> Result<(), KubeError> {
        match self.applier.apply(autoscaler, false).await {
            Err(conflict) if conflict.conflicting_managers() == [super::prewarm::FIELD_MANAGER] => {
                self.applier.apply_forced(autoscaler).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    pub(super) async fn observe_all(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, KubeError> {
        observe::observe(&self.client(), self.namespace(), services).await
    }
}

pub(super) fn action(service: &str, what: &str, detail: impl Into<String>) -> TargetError {
    TargetError::Action {
        service: service.to_string(),
        action: what.to_string(),
        detail: detail.into(),
    }
}

pub(super) fn kube(service: &str, what: &str, error: KubeError) -> TargetError {
    TargetError::failed(service, what, error)
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
        let (states, deployments) =
            observe::observe_seen(&self.client(), self.namespace(), services)
                .await
                .map_err(|e| kube("environment", "observe", e))?;
        // A switch to a warm revision observed serving moves the selector at once.
        self.tracker.observed(deployments);
        Ok(states)
    }

    async fn preflight(&self, plan: &Plan, release: u64) -> Result<(), TargetError> {
        self.release.store(release, Ordering::Relaxed);
        // A release that provisions will wait on rollouts: watch from before the first one.
        // One that only switches warm revisions (most rollbacks) waits for nothing.
        let provisions = |s: &Step| matches!(s.action, Action::Provision { .. });
        if plan.steps.iter().any(provisions) {
            self.tracker.start();
        }
        self.dry_run(plan).await
    }

    /// Each action's future is boxed on its own: one future for every action is as large as the
    /// largest (a task's or a switch's, ~25 KB), and a thousand steps run at once.
    async fn apply(&self, step: &Step) -> Result<(), TargetError> {
        let service = step.service.as_str();
        match &step.action {
            Action::Provision { version } => Box::pin(self.provision(service, version)).await,
            Action::Switch {
                from,
                to,
                percent,
                bake,
            } => {
                // Restarts are counted from here only for the health check after a bake.
                let baseline = !bake.0.is_zero();
                Box::pin(self.switch(service, from.as_deref(), to, *percent, baseline)).await
            }
            Action::Retire { version } => {
                Box::pin(self.delete_version(service, version, true)).await
            }
            Action::Remove { version } => {
                Box::pin(self.delete_version(service, version, false)).await
            }
            Action::Task {
                task,
                version,
                command,
                ..
            } => Box::pin(self.task(service, version, task, command, step.timeout.0)).await,
        }
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        self.check(service, version).await?;
        self.run_check(service, version).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use futures::FutureExt;

    use super::*;
    use crate::config::Project;
    use crate::execute::SystemClock;

    /// A thousand provisions starting together must not each hold a parsed copy of their
    /// objects while they wait for a request slot: a copy holds one of [`PARSED_AT_ONCE`]
    /// slots until it is dropped, clones included.
    #[tokio::test]
    async fn parsed_objects_hold_a_slot_until_every_copy_is_dropped() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ticketshop/convoy.yaml");
        let project = Project::load(&file).unwrap();
        // Never contacted: rendering needs no request.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let applier = Applier {
            client: kube::Client::try_from(config).unwrap(),
            namespace: "parsed".to_string(),
        };
        // A plain value for the secret the example reads from the environment.
        let sets = ["database.password=not-a-secret".to_string()];
        let renderer = Renderer::new(Arc::new(project), "staging", &sets, "parsed");
        let clock = Arc::new(SystemClock);
        let target = KubeTarget::new(applier, renderer, None, clock, Strategy::Bluegreen, vec![]);

        let mut held = Vec::new();
        for _ in 0..PARSED_AT_ONCE {
            held.push(target.objects("api", "1.0.0").await.unwrap());
        }
        assert!(
            held[0].deployment.is_some(),
            "the objects are the revision's"
        );
        assert!(
            target.objects("api", "1.0.0").now_or_never().is_none(),
            "every slot is held"
        );
        let copy = held.pop().unwrap();
        let clone = copy.clone();
        drop(copy);
        assert!(
            target.objects("api", "1.0.0").now_or_never().is_none(),
            "a clone still holds the slot"
        );
        drop(clone);
        let next = target.objects("api", "1.0.0").now_or_never();
        assert!(
            next.is_some_and(|o| o.is_ok()),
            "a dropped copy frees its slot"
        );
    }
}

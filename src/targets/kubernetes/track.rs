//! Following Deployments' rollouts by watch — the Deployments, their ReplicaSets and their pods —
//! and classifying every change with [`rollout_status`].
//!
//! One [`Tracker`] per target: three watches for the whole namespace (Convoy's Deployments, and
//! the ReplicaSets and pods carrying a version's labels), started at the first wait, folded into
//! one view keyed by Deployment, and each change handed to the waiters of the Deployment it
//! belongs to. A thousand services provisioning at once share three connections and one copy of
//! what they watch, rather than three watches each. Watches are resumed from their last
//! resourceVersion after a drop and re-listed after `410 Gone` (kube-runtime's watcher), each
//! request ends after a bound so a silent watch is re-established, and a slow tick re-classifies
//! so that grace periods expire even when nothing changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::Notify;

use crate::execute::Clock;

use super::observe::MANAGED;
use super::rollout_status::{
    DeploymentSeen, Graces, PodSeen, ReplicaSetSeen, RolloutFailure, RolloutStatus, rollout_status,
};
use super::traffic::{NAME_LABEL, VERSION_LABEL};

/// Server-side bound of one watch request; the watcher then starts the next one.
const WATCH_TIMEOUT_SECS: u32 = 55;
/// How often grace periods are re-checked when no event arrives.
const TICK: Duration = Duration::from_secs(5);

/// The watches of one namespace and the waiters following Deployments through them.
pub struct Tracker {
    client: kube::Client,
    namespace: String,
    /// Only these services' objects are kept.
    services: Arc<BTreeSet<String>>,
    shared: Arc<Mutex<Shared>>,
    watches: OnceLock<Vec<tokio::task::JoinHandle<()>>>,
}

/// What a write left: a wait is for this Deployment at this generation or later, so that a view
/// the watches have not yet brought up to date is not taken for the written one.
#[derive(Debug, Clone, Default)]
pub struct Written {
    uid: Option<String>,
    generation: i64,
}

impl Written {
    /// As the write's answer returned it.
    pub fn of(deployment: &Deployment) -> Self {
        Self::of_meta(&deployment.metadata)
    }

    /// As the write's answer returned it, by its metadata (an apply's untyped answer).
    pub fn of_meta(meta: &kube::api::ObjectMeta) -> Self {
        Written {
            uid: meta.uid.clone(),
            generation: meta.generation.unwrap_or(0),
        }
    }

    fn admits(&self, deployment: &DeploymentSeen) -> bool {
        let same = match (&self.uid, &deployment.uid) {
            (Some(written), Some(seen)) => written == seen,
            _ => true,
        };
        same && deployment.generation >= self.generation
    }
}

/// What the watches have seen of one Deployment: itself, its ReplicaSets and its pods, each as
/// much as its rollout is judged by.
#[derive(Default)]
struct Seen {
    deployments: Vec<DeploymentSeen>,
    replica_sets: Vec<ReplicaSetSeen>,
    pods: Vec<PodSeen>,
}

impl Seen {
    fn is_empty(&self) -> bool {
        self.deployments.is_empty() && self.replica_sets.is_empty() && self.pods.is_empty()
    }
}

#[derive(Default)]
struct Shared {
    seen: HashMap<String, Seen>,
    /// Each Deployment's waiters, woken by any change of what is seen of it.
    waiters: HashMap<String, Vec<(u64, Arc<Notify>)>>,
    next_waiter: u64,
    /// A watch refused for good (no permission): every wait fails with it.
    refused: Option<String>,
    /// The Deployments as the release's observation listed them, by name: what [`Tracker::serving`]
    /// reads until the watches start (a rollback starts none). Never read by a wait.
    observed: HashMap<String, DeploymentSeen>,
    /// This process's last write of each Deployment it wrote (`None`: it deleted it): a view
    /// from before that write — the observation, or watches not yet up to date — is not taken
    /// for serving by [`Tracker::serving`].
    written: HashMap<String, Option<Written>>,
}

impl Shared {
    fn wake(&self, key: &str) {
        for (_, notify) in self.waiters.get(key).into_iter().flatten() {
            notify.notify_one();
        }
    }

    fn wake_all(&self) {
        for notify in self.waiters.values().flatten() {
            notify.1.notify_one();
        }
    }
}

/// A watched kind: which Deployment an object belongs to, and what of it is kept where.
trait Tracked:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
{
    /// What [`rollout_status`] reads of it, made on arrival: a thousand services' objects are
    /// held for the whole release, and what it never reads is most of each.
    type Kept: From<Self> + Send + 'static;
    fn key(&self) -> Option<String>;
    fn slot(seen: &mut Seen) -> &mut Vec<Self::Kept>;
    fn name(kept: &Self::Kept) -> &str;
    /// The watch's scope: the server sends nothing else.
    fn scope() -> String;
}

/// `<service>-<version>`: the name of the Deployment whose selector carries these labels.
fn version_key<K: kube::Resource>(object: &K) -> Option<String> {
    let labels = object.meta().labels.as_ref()?;
    Some(format!(
        "{}-{}",
        labels.get(NAME_LABEL)?,
        labels.get(VERSION_LABEL)?
    ))
}

fn versioned_scope() -> String {
    format!("{NAME_LABEL},{VERSION_LABEL}")
}

impl Tracked for Deployment {
    type Kept = DeploymentSeen;
    fn key(&self) -> Option<String> {
        self.metadata.name.clone()
    }
    fn slot(seen: &mut Seen) -> &mut Vec<DeploymentSeen> {
        &mut seen.deployments
    }
    fn name(kept: &DeploymentSeen) -> &str {
        &kept.name
    }
    fn scope() -> String {
        MANAGED.to_string()
    }
}

impl Tracked for ReplicaSet {
    type Kept = ReplicaSetSeen;
    fn key(&self) -> Option<String> {
        version_key(self)
    }
    fn slot(seen: &mut Seen) -> &mut Vec<ReplicaSetSeen> {
        &mut seen.replica_sets
    }
    fn name(kept: &ReplicaSetSeen) -> &str {
        &kept.name
    }
    fn scope() -> String {
        versioned_scope()
    }
}

impl Tracked for Pod {
    type Kept = PodSeen;
    fn key(&self) -> Option<String> {
        version_key(self)
    }
    fn slot(seen: &mut Seen) -> &mut Vec<PodSeen> {
        &mut seen.pods
    }
    fn name(kept: &PodSeen) -> &str {
        &kept.name
    }
    fn scope() -> String {
        versioned_scope()
    }
}

/// Whether a watch error is permanent: the credentials lack a permission. Anything else (drops,
/// 5xx, 410 Gone) the watcher recovers from by itself.
fn refused(error: &watcher::Error) -> Option<String> {
    let code = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        _ => return None,
    };
    matches!(code, 401 | 403).then(|| error.to_string())
}

impl Tracker {
    /// Nothing is watched until the first wait.
    pub fn new(client: kube::Client, namespace: &str, services: BTreeSet<String>) -> Self {
        Tracker {
            client,
            namespace: namespace.to_string(),
            services: Arc::new(services),
            shared: Arc::new(Mutex::new(Shared::default())),
            watches: OnceLock::new(),
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    /// Waits until Deployment `name` — as `written` or later — is done or has failed.
    /// `applied_at` is when its spec was last written by us.
    pub async fn wait_rollout(
        &self,
        name: &str,
        written: &Written,
        applied_at: Timestamp,
        clock: &dyn Clock,
        graces: &Graces,
    ) -> Result<(), RolloutFailure> {
        let waiter = self.register(name);
        self.start();
        loop {
            let now = clock.now();
            let status = {
                let shared = self.shared();
                if let Some(message) = &shared.refused {
                    return Err(RolloutFailure::ReplicaFailure {
                        deployment: name.to_string(),
                        reason: "WatchRefused".to_string(),
                        message: Some(format!(
                            "{message} (the credentials need get/list/watch on deployments, replicasets and pods: see manifests/rbac.yaml)"
                        )),
                    });
                }
                shared.seen.get(name).and_then(|seen| {
                    let deployment = seen.deployments.first()?;
                    written.admits(deployment).then(|| {
                        rollout_status(
                            deployment,
                            &seen.replica_sets,
                            &seen.pods,
                            applied_at,
                            now,
                            graces,
                        )
                    })
                })
            };
            match status {
                Some(RolloutStatus::Done) => return Ok(()),
                Some(RolloutStatus::Failed(failure)) => return Err(failure),
                Some(RolloutStatus::Stale | RolloutStatus::Progressing { .. }) | None => {}
            }
            tokio::select! {
                () = waiter.notify.notified() => {}
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// Whether Deployment `name` is seen serving exactly `replicas` pods of its spec
    /// ([`DeploymentSeen::serves`]): by the watches once they have started, else as the
    /// release's observation listed it (a rollback starts no watch); `false` for one neither
    /// has seen.
    /// A Deployment this process wrote counts only once the view shows that write.
    pub fn serving(&self, name: &str, replicas: i32) -> bool {
        let shared = self.shared();
        let deployment = if self.watches.get().is_some() {
            shared.seen.get(name).and_then(|s| s.deployments.first())
        } else {
            shared.observed.get(name)
        };
        let current = |seen: &DeploymentSeen| match shared.written.get(name) {
            None => true,
            Some(Some(written)) => written.admits(seen),
            Some(None) => false,
        };
        deployment.is_some_and(|d| current(d) && d.serves(replicas))
    }

    /// Notes this process's write of Deployment `name`, as the write's answer returned it.
    pub fn wrote(&self, name: &str, written: &Written) {
        let mut shared = self.shared();
        let older =
            |kept: &Written| kept.uid == written.uid && kept.generation > written.generation;
        if !matches!(shared.written.get(name), Some(Some(kept)) if older(kept)) {
            shared
                .written
                .insert(name.to_string(), Some(written.clone()));
        }
    }

    /// Notes that this process deletes Deployment `name`: no view of it serves until the
    /// process writes it again.
    pub fn deleting(&self, name: &str) {
        self.shared().written.insert(name.to_string(), None);
    }

    /// Keeps the Deployments the release's observation listed, in place of any kept before,
    /// for [`Tracker::serving`] to read until the watches start.
    pub fn observed(&self, deployments: Vec<DeploymentSeen>) {
        self.shared().observed = deployments
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
    }

    fn register(&self, name: &str) -> Waiter<'_> {
        let notify = Arc::new(Notify::new());
        let mut shared = self.shared();
        shared.next_waiter += 1;
        let id = shared.next_waiter;
        shared
            .waiters
            .entry(name.to_string())
            .or_default()
            .push((id, Arc::clone(&notify)));
        Waiter {
            tracker: self,
            name: name.to_string(),
            id,
            notify,
        }
    }

    /// Starts the watches, if not yet started: before the work they will follow, their first
    /// lists are short and made while the server is idle, not at a thousand provisions' peak.
    pub fn start(&self) {
        self.watches.get_or_init(|| {
            vec![
                self.follow::<Deployment>(),
                self.follow::<ReplicaSet>(),
                self.follow::<Pod>(),
            ]
        });
    }

    /// One kind's watch, folded into the shared view until it is refused for good.
    fn follow<K>(&self) -> tokio::task::JoinHandle<()>
    where
        K: Tracked + serde::de::DeserializeOwned + 'static,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default()
            .labels(&K::scope())
            .timeout(WATCH_TIMEOUT_SECS)
            .page_size(super::observe::PAGE);
        let shared = Arc::clone(&self.shared);
        let services = Arc::clone(&self.services);
        // An object naming another service (another project's, in a shared namespace) is not kept.
        let keep = move |object: &K| -> Option<String> {
            let service = object
                .meta()
                .labels
                .as_ref()
                .and_then(|l| l.get(NAME_LABEL));
            let wanted = service.is_none_or(|service| services.contains(service));
            wanted.then(|| object.key()).flatten()
        };
        tokio::spawn(async move {
            // Errors are retried inside (default_backoff) unless permanent.
            let mut events = watcher::watcher(api, config).default_backoff().boxed();
            // A re-list's objects, swapped in whole at its end so that objects deleted meanwhile go.
            let mut listing: Option<Vec<(String, K::Kept)>> = None;
            while let Some(item) = events.next().await {
                let event = match item {
                    Ok(event) => event,
                    Err(error) => {
                        if let Some(message) = refused(&error) {
                            let mut shared = lock(&shared);
                            shared.refused = Some(message);
                            shared.wake_all();
                            return;
                        }
                        continue;
                    }
                };
                match event {
                    Event::Init => listing = Some(Vec::new()),
                    Event::InitApply(object) => {
                        if let (Some(listing), Some(key)) = (listing.as_mut(), keep(&object)) {
                            listing.push((key, object.into()));
                        }
                    }
                    Event::InitDone => {
                        let mut shared = lock(&shared);
                        for seen in shared.seen.values_mut() {
                            K::slot(seen).clear();
                        }
                        for (key, object) in listing.take().unwrap_or_default() {
                            K::slot(shared.seen.entry(key).or_default()).push(object);
                        }
                        shared.seen.retain(|_, seen| !seen.is_empty());
                        shared.wake_all();
                    }
                    Event::Apply(object) => {
                        let Some(key) = keep(&object) else { continue };
                        let object = K::Kept::from(object);
                        let mut shared = lock(&shared);
                        let slot = K::slot(shared.seen.entry(key.clone()).or_default());
                        match slot.iter_mut().find(|o| K::name(o) == K::name(&object)) {
                            Some(held) => *held = object,
                            None => slot.push(object),
                        }
                        shared.wake(&key);
                    }
                    Event::Delete(object) => {
                        let Some(key) = keep(&object) else { continue };
                        let mut shared = lock(&shared);
                        if let Some(seen) = shared.seen.get_mut(&key) {
                            let name = object.meta().name.as_deref().unwrap_or_default();
                            K::slot(seen).retain(|o| K::name(o) != name);
                            if seen.is_empty() {
                                shared.seen.remove(&key);
                            }
                        }
                        shared.wake(&key);
                    }
                }
            }
        })
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for watch in self.watches.get().into_iter().flatten() {
            watch.abort();
        }
    }
}

/// A registered waiter; leaves the tracker when the wait ends, however it ends.
struct Waiter<'a> {
    tracker: &'a Tracker,
    name: String,
    id: u64,
    notify: Arc<Notify>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut shared = self.tracker.shared();
        if let Some(waiters) = shared.waiters.get_mut(&self.name) {
            waiters.retain(|(id, _)| *id != self.id);
            if waiters.is_empty() {
                shared.waiters.remove(&self.name);
            }
        }
    }
}

/// The view stays usable after a panic elsewhere: it is only ever replaced whole per object.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(uid: &str, generation: i64) -> DeploymentSeen {
        DeploymentSeen {
            uid: Some(uid.to_string()),
            generation,
            ..DeploymentSeen::default()
        }
    }

    /// Serving its 2 of 2: `DeploymentSeen::serves` says what that takes.
    fn serving_two(name: &str) -> DeploymentSeen {
        DeploymentSeen {
            name: name.to_string(),
            generation: 1,
            replicas: Some(2),
            status: Some(Box::new(k8s_openapi::api::apps::v1::DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(2),
                updated_replicas: Some(2),
                ready_replicas: Some(2),
                available_replicas: Some(2),
                ..Default::default()
            })),
            ..DeploymentSeen::default()
        }
    }

    #[tokio::test]
    async fn the_observation_says_what_serves_until_the_watches_start() {
        // Never contacted successfully: the watches' requests fail and are retried.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let tracker = Tracker::new(client, "serving", BTreeSet::from(["api".to_string()]));
        assert!(!tracker.serving("api-a1", 2), "nothing observed");
        tracker.observed(vec![serving_two("api-a1")]);
        assert!(tracker.serving("api-a1", 2));
        assert!(!tracker.serving("api-a1", 3), "another count");
        assert!(!tracker.serving("api-a2", 2), "not observed");
        tracker.observed(Vec::new());
        assert!(
            !tracker.serving("api-a1", 2),
            "a later observation replaces it"
        );
        tracker.observed(vec![serving_two("api-a1")]);
        tracker.start();
        assert!(
            !tracker.serving("api-a1", 2),
            "once watching, only what the watches see counts"
        );
    }

    /// A canary step that scaled a revision down, or a cleanup that deleted it, leaves an
    /// observation (or a view the watches have not yet updated) that still shows it serving: a
    /// switch back to it must patch its count and wait, not move the selector at once.
    #[tokio::test]
    async fn a_deployment_this_process_wrote_serves_only_once_a_view_shows_the_write() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let tracker = Tracker::new(client, "serving", BTreeSet::from(["api".to_string()]));
        let mut observed = serving_two("api-a1");
        observed.uid = Some("u1".to_string());
        tracker.observed(vec![observed]);
        assert!(tracker.serving("api-a1", 2));

        let mut answer = Deployment::default();
        answer.metadata.uid = Some("u1".to_string());
        answer.metadata.generation = Some(1);
        tracker.wrote("api-a1", &Written::of(&answer));
        assert!(
            tracker.serving("api-a1", 2),
            "a label patch leaves the generation as the view shows it"
        );
        answer.metadata.generation = Some(2);
        tracker.wrote("api-a1", &Written::of(&answer));
        assert!(
            !tracker.serving("api-a1", 2),
            "scaled since it was observed"
        );
        answer.metadata.generation = Some(1);
        tracker.wrote("api-a1", &Written::of(&answer));
        assert!(
            !tracker.serving("api-a1", 2),
            "an answer older than the last write does not replace it"
        );
        tracker.deleting("api-a1");
        assert!(
            !tracker.serving("api-a1", 2),
            "deleted since it was observed"
        );
    }

    #[test]
    fn a_wait_admits_only_the_written_deployment_at_its_generation_or_later() {
        let mut answer = Deployment::default();
        answer.metadata.uid = Some("a".to_string());
        answer.metadata.generation = Some(3);
        let written = Written::of(&answer);
        assert!(
            !written.admits(&deployment("a", 2)),
            "a view before the write"
        );
        assert!(written.admits(&deployment("a", 3)));
        assert!(written.admits(&deployment("a", 4)), "a later write");
        assert!(
            !written.admits(&deployment("b", 9)),
            "a Deployment of that name deleted and not yet seen gone"
        );
        assert!(Written::default().admits(&deployment("b", 1)), "no write");
    }
}

//! The controllers' task: one per server, woken by every committed change (the store's change
//! channel, as informers are woken by watches) and by the next due time (a pod becoming ready, a
//! container restarting, a progress deadline). Each pass runs the Deployment controller, the
//! ReplicaSet controller and the pod lifecycles under the store lock.
//!
//! A pass looks only at the objects whose inputs may have changed since they were last looked
//! at — read from the store's change history, as an informer's work queue is filled — and at
//! those whose due time has come: a Deployment depends on itself and the ReplicaSets (and, for
//! Recreate, pods) it owns, a ReplicaSet on itself and its pods, a pod's status on the pod and
//! the time. Every sync is idempotent for unchanged inputs, so this writes exactly what syncing
//! every object on every pass would, at a cost that grows with the changes, not the objects.
//! When the history no longer reaches back to the last change seen (or on the first pass),
//! every object is looked at.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::time::{Instant, sleep_until};

use super::discovery::{self, ResourceDef};
use super::kubelet::Kubelet;
use super::replicaset::{pods_res, replicasets_res};
use super::store::{Change, EventType, Store, meta_str};
use super::{Settings, Shared, deployment, lock, replicaset};

fn deployments_res() -> &'static ResourceDef {
    discovery::find("apps", "v1", "deployments").expect("deployments are served")
}

/// What a controller syncs, in the order a pass syncs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Deployment,
    ReplicaSet,
    Pod,
}

impl Kind {
    fn of(res: &'static ResourceDef) -> Option<Kind> {
        [
            (deployments_res(), Kind::Deployment),
            (replicasets_res(), Kind::ReplicaSet),
            (pods_res(), Kind::Pod),
        ]
        .into_iter()
        .find(|(r, _)| std::ptr::eq(*r, res))
        .map(|(_, k)| k)
    }

    fn res(self) -> &'static ResourceDef {
        match self {
            Kind::Deployment => deployments_res(),
            Kind::ReplicaSet => replicasets_res(),
            Kind::Pod => pods_res(),
        }
    }
}

/// Namespace and name.
type Name = (String, String);

/// When synced objects next need a look without any write: `from`, the first time a sync could
/// find something changed, and `wake`, when the task wakes for it.
#[derive(Default)]
struct Timers {
    by_target: HashMap<(Kind, Name), (Instant, Instant)>,
    from: BTreeSet<(Instant, Kind, Name)>,
    wake: BTreeSet<(Instant, Kind, Name)>,
}

impl Timers {
    fn set(&mut self, kind: Kind, name: Name, at: Option<(Instant, Instant)>) {
        let target = (kind, name);
        if let Some((from, wake)) = self.by_target.remove(&target) {
            self.from.remove(&(from, kind, target.1.clone()));
            self.wake.remove(&(wake, kind, target.1.clone()));
        }
        if let Some((from, wake)) = at {
            self.from.insert((from, kind, target.1.clone()));
            self.wake.insert((wake, kind, target.1.clone()));
            self.by_target.insert(target, (from, wake));
        }
    }

    /// The objects a sync at `now` could find changed.
    fn due(&self, now: Instant) -> impl Iterator<Item = (Kind, &Name)> {
        self.from
            .iter()
            .take_while(move |(at, _, _)| *at <= now)
            .map(|(_, kind, name)| (*kind, name))
    }

    fn next(&self) -> Option<Instant> {
        self.wake.first().map(|(at, _, _)| *at)
    }
}

/// The controllers' state between passes.
#[derive(Default)]
struct Controllers {
    kubelet: Kubelet,
    /// The last version whose change has been noted; `None` until the first pass.
    seen: Option<u64>,
    /// What the next phase of each kind must sync, in key order (that of a full list).
    dirty: [BTreeSet<Name>; 3],
    timers: Timers,
}

impl Controllers {
    fn mark(&mut self, kind: Kind, namespace: &str, name: &str) {
        self.dirty[kind as usize].insert((namespace.to_string(), name.to_string()));
    }

    /// Marks the owners of `obj` (found by uid) that are of kind `owner`; returns their names.
    fn mark_owners(&mut self, store: &Store, obj: &Value, owner: Kind) -> Vec<Name> {
        let mut marked = Vec::new();
        for r in obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some((g, p, ns, n)) = store.key_of(r["uid"].as_str().unwrap_or("")) else {
                continue;
            };
            if *g == owner.res().group && *p == owner.res().plural {
                let name = (ns.clone(), n.clone());
                self.dirty[owner as usize].insert(name.clone());
                marked.push(name);
            }
        }
        marked
    }

    /// Marks what a change may concern: the object, and what owns it up to its Deployment.
    fn note(&mut self, store: &Store, change: &Change) {
        let Some(kind) = Kind::of(change.resource) else {
            return;
        };
        let obj = &change.object;
        self.mark(kind, meta_str(obj, "namespace"), meta_str(obj, "name"));
        if kind == Kind::Pod && change.kind == EventType::Deleted {
            self.kubelet.forget(meta_str(obj, "uid"));
        }
        for version in std::iter::once(obj).chain(change.old.as_ref()) {
            match kind {
                Kind::Deployment => {}
                Kind::ReplicaSet => {
                    self.mark_owners(store, version, Kind::Deployment);
                }
                Kind::Pod => {
                    // A Recreate rollout waits for the old ReplicaSets' pods to be gone.
                    for (ns, name) in self.mark_owners(store, version, Kind::ReplicaSet) {
                        if let Some(rs) = store.get(replicasets_res(), &ns, &name) {
                            self.mark_owners(store, rs, Kind::Deployment);
                        }
                    }
                }
            }
        }
    }

    /// Marks every object, and forgets the pods that are gone.
    fn mark_everything(&mut self, store: &Store) {
        for kind in [Kind::Deployment, Kind::ReplicaSet, Kind::Pod] {
            for obj in store.list(kind.res(), None) {
                self.mark(kind, meta_str(&obj, "namespace"), meta_str(&obj, "name"));
            }
        }
        let pods = store.list(pods_res(), None);
        let alive: HashSet<&str> = pods.iter().map(|p| meta_str(p, "uid")).collect();
        self.kubelet.keep_only(&alive);
    }

    /// Notes the changes since the last look.
    fn absorb(&mut self, store: &Store) {
        let seen = self.seen.replace(store.resource_version());
        match seen.map(|rv| store.history_since(rv)) {
            Some(Ok(changes)) => {
                for change in changes {
                    self.note(store, change);
                }
            }
            None | Some(Err(_)) => self.mark_everything(store),
        }
    }

    /// One reconciliation of everything that may need it; returns when the next pass is due
    /// without any write.
    fn pass(&mut self, store: &mut Store, settings: &Settings, now: Instant) -> Option<Instant> {
        self.absorb(store);
        let due: Vec<(Kind, Name)> = self
            .timers
            .due(now)
            .map(|(kind, name)| (kind, name.clone()))
            .collect();
        for (kind, name) in due {
            self.dirty[kind as usize].insert(name);
        }
        for kind in [Kind::Deployment, Kind::ReplicaSet, Kind::Pod] {
            if kind != Kind::Deployment {
                // What the previous phase wrote.
                self.absorb(store);
            }
            for (ns, name) in std::mem::take(&mut self.dirty[kind as usize]) {
                let Some(obj) = store.get(kind.res(), &ns, &name).cloned() else {
                    self.timers.set(kind, (ns, name), None);
                    continue;
                };
                let at = match kind {
                    Kind::Deployment => deployment::sync(store, &obj).map(|wake| {
                        // The deadline wakes the task a second late (timestamps are whole
                        // seconds), but any pass from the deadline on may find it passed.
                        let slack = Duration::from_secs(1);
                        (wake.checked_sub(slack).unwrap_or(wake), wake)
                    }),
                    Kind::ReplicaSet => {
                        replicaset::sync(store, &self.kubelet, &obj, now).map(|at| (at, at))
                    }
                    Kind::Pod => self
                        .kubelet
                        .sync(store, settings, &obj, now)
                        .map(|at| (at, at)),
                };
                self.timers.set(kind, (ns, name), at);
            }
        }
        self.timers.next()
    }
}

/// Clears the server's "controllers running" flag when the task ends, also when its runtime
/// goes away (a test's, or a `Served` thread's), so the next client or server starts them again.
struct Running(Weak<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.controllers_running.store(false, Ordering::SeqCst);
        }
    }
}

/// Starts the controllers for a server on the current runtime; they stop when the server is
/// dropped or the runtime shuts down.
pub fn spawn(shared: Weak<Shared>) {
    let Some(strong) = shared.upgrade() else {
        return;
    };
    let mut changes = lock(&strong.store).subscribe();
    drop(strong);
    tokio::spawn(async move {
        let _running = Running(shared.clone());
        let mut controllers = Controllers::default();
        loop {
            let next = {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let settings = lock(&shared.settings).clone();
                let mut store = lock(&shared.store);
                // Our own writes wake the loop again, so passes repeat until one writes nothing.
                controllers.pass(&mut store, &settings, Instant::now())
            };
            let woken = match next {
                Some(at) => tokio::select! {
                    changed = changes.changed() => changed.is_ok(),
                    _ = sleep_until(at) => true,
                },
                None => changes.changed().await.is_ok(),
            };
            if !woken {
                return;
            }
        }
    });
}

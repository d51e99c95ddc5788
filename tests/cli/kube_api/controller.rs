//! The controllers' task: one per server, woken by every committed change (the store's change
//! channel, as informers are woken by watches) and by the next due time (a pod becoming ready, a
//! container restarting, a progress deadline). Each pass runs the Deployment controller, the
//! ReplicaSet controller and the pod lifecycles under the store lock.

use std::sync::Weak;

use tokio::time::{Instant, sleep_until};

use super::kubelet::Kubelet;
use super::store::Store;
use super::{Settings, Shared, deployment, discovery, lock, replicaset};

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One reconciliation of everything; returns when the next pass is due without any write.
fn pass(
    store: &mut Store,
    settings: &Settings,
    kubelet: &mut Kubelet,
    now: Instant,
) -> Option<Instant> {
    let mut next = None;
    let deployments = discovery::find("apps", "v1", "deployments").expect("served");
    for d in store.list(deployments, None) {
        next = earliest(next, deployment::sync(store, &d));
    }
    for rs in store.list(replicaset::replicasets_res(), None) {
        next = earliest(next, replicaset::sync(store, kubelet, &rs, now));
    }
    earliest(next, kubelet.sync(store, settings, now))
}

/// Starts the controllers for a server; they stop when the server is dropped.
pub fn spawn(shared: Weak<Shared>) {
    let Some(strong) = shared.upgrade() else {
        return;
    };
    let mut changes = lock(&strong.store).subscribe();
    drop(strong);
    tokio::spawn(async move {
        let mut kubelet = Kubelet::default();
        loop {
            let next = {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let settings = lock(&shared.settings).clone();
                let mut store = lock(&shared.store);
                // Our own writes wake the loop again, so passes repeat until one writes nothing.
                pass(&mut store, &settings, &mut kubelet, Instant::now())
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

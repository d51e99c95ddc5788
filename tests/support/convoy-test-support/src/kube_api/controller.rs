//! The controllers' task: one per server, woken by every committed change (the store's change
//! channel, as informers are woken by watches) and by the next due time (a pod becoming ready, a
//! container restarting, a progress deadline). Each pass runs the Deployment controller, the
//! ReplicaSet controller and the pod lifecycles under the store lock.

use std::sync::Weak;
use std::sync::atomic::Ordering;

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

//! An in-process fake Kubernetes API server for the Kubernetes target's tests (see "The test
//! Kubernetes API server" in TESTING.md).
//!
//! It behaves like the real API server for what Convoy touches: discovery, get/list/watch,
//! create/replace/patch (merge, and server-side apply with field ownership), delete with
//! propagation and finalizers, the `status` subresource,
//! `dryRun=All`, one increasing `resourceVersion`, defaulting, `Status` error bodies, and
//! controllers that turn Deployments into ReplicaSets and pods whose readiness a test shapes.
//! Faults can be injected per verb, resource and name, and every request is logged.
//!
//! ```ignore
//! let server = ApiServer::new();                       // inside a tokio runtime
//! server.ready_delay(Duration::from_secs(5));          // tokio time: pause it in tests
//! let client = server.client();                        // kube::Client, no network
//! let served = server.serve().await;                   // HTTP on 127.0.0.1, own thread
//! served.write_kubeconfig(&path, "test", "default");   // for the convoy binary
//! server.fault(Fault::status(503).verb("patch").resource("deployments").times(1));
//! assert!(server.requests().iter().any(|r| r.verb == "apply" && !r.dry_run));
//! ```
//!
//! Map: `discovery` (the served kinds), `store` + `clock` (objects, versions,
//! history), `router` + `call` (HTTP to verbs), `verbs` + `subresource`, `apply` + `fields`
//! (server-side apply), `patch`, `selector`, `defaults`, `validate`, `watch`, `controller`
//! (`deployment`, `rollout`, `deployment_status`, `replicaset`, `kubelet`), `faults`, `serve`.
//!
//! Known differences from a real API server, to keep in mind when a test and a cluster disagree
//! (the cluster is right):
//! - Deletes are immediate but for `metadata.finalizers`: an object with some gets a
//!   `deletionTimestamp` and stays until they are removed, and a namespace holding such objects
//!   stays `Terminating` (creates in it are refused) until they are gone. No graceful pod
//!   termination; garbage collection of dependents is synchronous.
//! - Server-side apply has no OpenAPI schema: list merge keys come from a table (`name`, ports by
//!   port and protocol, `mountPath`, condition `type`); other lists of objects without a `name`
//!   are atomic, and so is `spec.selector` (as the schema marks a Service's selector map and
//!   every LabelSelector); other maps are granular. Field sets have no `v:`/`i:` elements.
//! - Lists page by `limit`/`continue` (the token an offset, pages not one snapshot) and ignore
//!   `resourceVersion` semantics;
//!   watches keep the last 50,000 changes of all kinds (a real server's watch cache is sized
//!   per resource and grows with the change rate; a 1,000-service release makes ~20k changes in
//!   seconds, and a history of 5,000 expired the one watch per kind a release keeps open;
//!   `ApiServer::compact` forgets them all) and send a
//!   bookmark every 10 s of tokio time. A watch in progress ends with 410 only when a change of
//!   its own kind left the history before it was sent (the real server's watch cache is per
//!   resource too); a new watch from a version older than the history gets 410 whatever its kind.
//! - The Deployment controller does not scale proportionally when replicas change mid-rollout
//!   (it converges the same way but through different intermediate states), records no Events,
//!   no `ReplicaFailure` condition and no `collisionCount`. Pods are available as soon as Ready
//!   plus `minReadySeconds`; only Deployments, ReplicaSets and pods are controlled (no Services
//!   endpoints, HPAs, PDB status).
//! - Validation is light: names, workload selectors and containers, immutable fields.
//! - Rules naming no resource also match discovery requests, which are logged as `get` with an
//!   empty `resource`.

#![allow(dead_code)] // shared test infrastructure: each test uses a different part

mod apply;
mod call;
mod clock;
mod controller;
mod defaults;
mod deployment;
mod deployment_status;
mod discovery;
mod faults;
mod fields;
mod kubelet;
mod patch;
mod proxy;
mod replicaset;
mod rollout;
mod router;
mod selector;
mod serve;
mod status;
mod store;
mod subresource;
mod validate;
mod verbs;
mod watch;

#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod defaults_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::BodyExt;

pub use faults::Fault;
pub use proxy::FaultProxy;
pub use serve::Served;

/// How the pods of an image behave, by the markers in its name that the stand-in kubelet
/// (`tests/support/k8s/kubelet.py`) also reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodBehaviour {
    /// Running and Ready after the server's ready delay.
    Ready,
    /// `crash`: the container exits with code 1 and restarts with back-off: `CrashLoopBackOff`.
    CrashLoop,
    /// `pullfail`: `ErrImagePull`, then `ImagePullBackOff`.
    ImagePullFails,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// get, list, watch, create, update, patch, apply or delete.
    pub verb: String,
    /// "" for the core group.
    pub group: String,
    pub version: String,
    /// The plural, e.g. "deployments".
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub dry_run: bool,
    /// The HTTP status returned (200 for a watch that started).
    pub status: u16,
    /// The `User-Agent` header; `None` for a discovery request the in-process server logs.
    pub user_agent: Option<String>,
    /// A list that asked for its items' metadata alone (`as=PartialObjectMetadataList`).
    pub metadata_only: bool,
    /// When the server had its answer (a list's or a watch's body still streams after it).
    pub answered: std::time::Instant,
}

#[derive(Clone)]
struct Settings {
    ready_delay: Duration,
    /// (image substring, behaviour): the markers.
    behaviours: Vec<(String, PodBehaviour)>,
}

/// The state behind every handle on one server.
struct Shared {
    store: Mutex<store::Store>,
    settings: Mutex<Settings>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<Request>>,
    controllers_running: AtomicBool,
}

/// Locks a mutex, ignoring poisoning: a panicking test must not hide the state from others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A handle on one fake API server; clones share it.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiServer {
    /// A server with the `default`, `kube-system` and `kube-public` namespaces; pods become
    /// Ready at once; images containing `crash` crash-loop and `pullfail` fail to pull — the
    /// markers of the stand-in kubelet (`tests/support/k8s/kubelet.py`), so a test picks a
    /// behaviour the same way on both servers.
    pub fn new() -> Self {
        let settings = Settings {
            ready_delay: Duration::ZERO,
            behaviours: vec![
                ("crash".into(), PodBehaviour::CrashLoop),
                ("pullfail".into(), PodBehaviour::ImagePullFails),
            ],
        };
        ApiServer {
            shared: Arc::new(Shared {
                store: Mutex::new(store::Store::new()),
                settings: Mutex::new(settings),
                faults: Mutex::new(Vec::new()),
                log: Mutex::new(Vec::new()),
                controllers_running: AtomicBool::new(false),
            }),
        }
    }

    /// How long new pods take to become Ready (tokio time, so paused-time tests work). Applies
    /// to pods the controllers first see afterwards.
    pub fn ready_delay(&self, d: Duration) {
        lock(&self.shared.settings).ready_delay = d;
    }

    /// A `kube::Client` that calls this server in-process (default namespace `default`).
    /// Must be called inside a tokio runtime.
    pub fn client(&self) -> kube::Client {
        self.start_controllers();
        let server = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let server = server.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Ok::<_, Infallible>(server.handle(parts, body).await)
            }
        });
        kube::Client::new(service, "default")
    }

    /// Serves the same state over HTTP on a free 127.0.0.1 port until the `Served` is dropped.
    ///
    /// The server runs on a thread of its own, with the controllers too unless a `client()` has
    /// started them already, so a test may block on the `convoy` binary while it is served. Call
    /// `serve()` before `client()` in such tests: controllers started by `client()` run on the
    /// test's runtime and stall while the test thread blocks.
    pub async fn serve(&self) -> Served {
        serve::serve(self.clone())
    }

    /// Starts the controllers on the current runtime unless they are running somewhere.
    fn start_controllers(&self) {
        if !self.shared.controllers_running.swap(true, Ordering::SeqCst) {
            controller::spawn(Arc::downgrade(&self.shared));
        }
    }

    async fn handle(
        &self,
        parts: http::request::Parts,
        body: bytes::Bytes,
    ) -> http::Response<router::Body> {
        router::handle(self.shared.clone(), parts, body).await
    }

    /// Adds a fault rule; rules apply in the order added.
    pub fn fault(&self, rule: Fault) {
        lock(&self.shared.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request so far, faulted ones included.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Forgets the change history, as etcd compaction does: a watch resuming from any earlier
    /// `resourceVersion` gets 410 Gone.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }
}

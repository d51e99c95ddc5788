//! A Kubernetes cluster for the Kubernetes target's tests: the in-process test API server
//! (`kube_api`), or — when `CONVOY_TEST_KUBECONFIG` names a kubeconfig — a real cluster, in a
//! namespace created for the test and deleted afterwards. Tests that need the fake's knobs
//! (fault injection, pod behaviours) say so with [`Cluster::fake`] and are skipped, visibly, on a
//! real cluster.

#![allow(dead_code)] // each test uses a different part

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};

use crate::kube_api::{ApiServer, Served};

pub const CONTEXT: &str = "convoy-test";

pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
    /// A kubeconfig for the `convoy` binary, with context [`CONTEXT`].
    pub kubeconfig: PathBuf,
    fake: Option<ApiServer>,
    _served: Option<Served>,
    real: bool,
    _dir: tempfile::TempDir,
}

fn unique_namespace() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "convoy-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Cluster {
    /// Starts the test API server (or connects to the real cluster) and creates a namespace.
    /// Call inside a multi-threaded tokio runtime when the binary will use the cluster.
    pub async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let namespace = unique_namespace();
        let kubeconfig = dir.path().join("kubeconfig");
        let (client, fake, served, real) = match std::env::var("CONVOY_TEST_KUBECONFIG") {
            Ok(path) if !path.is_empty() => {
                std::fs::copy(&path, &kubeconfig).expect("copy CONVOY_TEST_KUBECONFIG");
                let config = kube::Config::from_custom_kubeconfig(
                    kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig"),
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .expect("kubeconfig");
                let client = kube::Client::try_from(config).expect("client");
                (client, None, None, true)
            }
            _ => {
                let server = ApiServer::new();
                let served = server.serve().await;
                served.write_kubeconfig(&kubeconfig, CONTEXT, &namespace);
                (server.client(), Some(server), Some(served), false)
            }
        };
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("create the test namespace");
        Cluster {
            client,
            namespace,
            kubeconfig,
            fake,
            _served: served,
            real,
            _dir: dir,
        }
    }

    /// The test API server, or `None` (with a message) on a real cluster: for tests that shape
    /// behaviour a real cluster cannot be told to have.
    pub fn fake(&self) -> Option<&ApiServer> {
        if self.fake.is_none() {
            eprintln!("skipped on a real cluster: needs the test API server's fault injection");
        }
        self.fake.as_ref()
    }

    /// Whether pods of the example's images can run: on the test API server they do; on a real
    /// cluster `registry.example.com` images cannot be pulled, so rollout tests are skipped there
    /// (visibly) and the state tests (lock, records, dry runs) still run.
    pub fn runs_example_images(&self) -> bool {
        if self.real {
            eprintln!(
                "skipped on a real cluster: the example's images (registry.example.com) cannot be pulled"
            );
        }
        !self.real
    }

    /// The context the binary must use: the test context, or the real kubeconfig's current one.
    pub fn context_args(&self) -> Vec<String> {
        let mut args = vec!["--namespace".to_string(), self.namespace.clone()];
        if !self.real {
            args.extend(["--context".to_string(), CONTEXT.to_string()]);
        }
        args
    }

    pub fn is_real(&self) -> bool {
        self.real
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.real {
            return;
        }
        // Delete the namespace even when the test failed; Drop cannot await, so use a thread
        // with its own runtime.
        let client = self.client.clone();
        let namespace = self.namespace.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let namespaces: Api<Namespace> = Api::all(client);
                let _ = namespaces
                    .delete(&namespace, &DeleteParams::default())
                    .await;
            });
        })
        .join();
    }
}

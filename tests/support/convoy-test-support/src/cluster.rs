//! A Kubernetes cluster for the Kubernetes target's tests, in a namespace created for the test:
//! a real cluster when `CONVOY_TEST_KUBECONFIG` names a kubeconfig (CI starts one with
//! `tests/support/k8s/with-cluster.sh`), else the in-process test API server (`kube_api`).
//!
//! Every test runs on either, with the same assertions; nothing is skipped anywhere. Tests of
//! faults a real server cannot be made to show (429/5xx, a forbidden watch, dropped watches, 410
//! Expired) start with [`Cluster::with_faults`]: their client goes through a [`FaultProxy`] that
//! injects them in front of whichever server it is. [`Cluster::fake_only`] is the in-process
//! server in both modes, for comparing the two.
//!
//! Pods: on the test API server and under the stand-in kubelet (`tests/support/k8s/kubelet.py`)
//! any image runs; an image whose name contains `crash` crash-loops and one containing
//! `pullfail` cannot be pulled. On a cluster with real nodes (kind, k3s, EKS) set
//! `CONVOY_TEST_IMAGE` to a pullable image with `sh` and `sleep` (e.g. `busybox:1.37`):
//! [`use_test_image`] then makes the example's Deployments run it, with the same markers.

#![allow(dead_code)] // each test uses a different part

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams};
use kube::core::GroupVersionKind;

use crate::kube_api::{ApiServer, Fault, FaultProxy, Served};

/// The context of the in-process server's kubeconfig.
pub const CONTEXT: &str = "convoy-test";
/// A namespace annotation the stand-in kubelet reads: seconds from a pod's first sighting to
/// Ready for the namespace's pods (its own default is `CONVOY_KUBELET_READY_DELAY`).
pub const READY_DELAY_ANNOTATION: &str = "convoy.dev/test-ready-delay";

pub struct Cluster {
    /// The test's client: through the fault proxy for [`Cluster::with_faults`].
    pub client: kube::Client,
    /// The server's own client, for setting up and cleaning up.
    admin: kube::Client,
    proxy: Option<FaultProxy>,
    pub namespace: String,
    /// A kubeconfig for the `convoy` binary; its current context is [`Cluster::context`].
    pub kubeconfig: PathBuf,
    /// The context the binary must use.
    pub context: String,
    fake: Option<ApiServer>,
    _served: Option<Served>,
    /// Cluster-scoped objects a test made (admission policies), deleted with the namespace.
    cluster_objects: Mutex<Vec<(ApiResource, String)>>,
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

/// Whether the tests were given a real cluster (`CONVOY_TEST_KUBECONFIG`).
pub fn real_cluster_given() -> bool {
    real_kubeconfig().is_some()
}

/// The real cluster's kubeconfig, if the tests were given one.
fn real_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("CONVOY_TEST_KUBECONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

impl Cluster {
    /// The real cluster (with `CONVOY_TEST_KUBECONFIG`) or the in-process server, and a fresh
    /// namespace. Call inside a multi-threaded tokio runtime when the binary will use it.
    pub async fn start() -> Cluster {
        Cluster::start_with(Setup::default()).await
    }

    /// As [`Cluster::start`], with pods of the test's namespace becoming Ready `delay` after
    /// they are first seen (by the stand-in kubelet, or the in-process server).
    pub async fn with_ready_delay(delay: Duration) -> Cluster {
        Cluster::start_with(Setup {
            ready_delay: Some(delay),
            ..Setup::default()
        })
        .await
    }

    /// As [`Cluster::start`] (with the pods' `ready_delay` if given), with the test's client
    /// going through a [`FaultProxy`]: [`Cluster::faults`] adds rules and reads its log.
    pub async fn with_faults(ready_delay: Option<Duration>) -> Cluster {
        Cluster::start_with(Setup {
            ready_delay,
            faults: true,
            ..Setup::default()
        })
        .await
    }

    /// The in-process test API server in every mode: to compare it with the real one.
    pub async fn fake_only() -> Cluster {
        Cluster::start_with(Setup {
            fake_only: true,
            ..Setup::default()
        })
        .await
    }

    async fn start_with(setup: Setup) -> Cluster {
        let Setup {
            ready_delay,
            faults,
            fake_only,
        } = setup;
        let dir = tempfile::tempdir().expect("temporary directory");
        let namespace = unique_namespace();
        let kubeconfig = dir.path().join("kubeconfig");
        let (client, context, fake, served) = match real_kubeconfig().filter(|_| !fake_only) {
            Some(path) => {
                std::fs::copy(&path, &kubeconfig).expect("copy CONVOY_TEST_KUBECONFIG");
                let config = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
                let context = config
                    .current_context
                    .clone()
                    .expect("CONVOY_TEST_KUBECONFIG names a current context");
                let options = kube::config::KubeConfigOptions::default();
                let config = kube::Config::from_custom_kubeconfig(config, &options)
                    .await
                    .expect("kubeconfig");
                let client = kube::Client::try_from(config).expect("client");
                (client, context, None, None)
            }
            None => {
                let server = ApiServer::new();
                if let Some(delay) = ready_delay {
                    server.ready_delay(delay);
                }
                let served = server.serve().await;
                served.write_kubeconfig(&kubeconfig, CONTEXT, &namespace);
                (
                    server.client(),
                    CONTEXT.to_string(),
                    Some(server),
                    Some(served),
                )
            }
        };
        let annotations = ready_delay.map(|d| {
            [(
                READY_DELAY_ANNOTATION.to_string(),
                d.as_secs_f64().to_string(),
            )]
            .into()
        });
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                annotations,
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&Default::default(), &object)
            .await
            .expect("create the test namespace");
        let proxy = faults.then(|| FaultProxy::new(client.clone()));
        Cluster {
            client: proxy
                .as_ref()
                .map_or(client.clone(), |p| p.client(&namespace)),
            admin: client,
            proxy,
            namespace,
            kubeconfig,
            context,
            fake,
            _served: served,
            cluster_objects: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    /// The fault proxy of a [`Cluster::with_faults`] cluster.
    pub fn faults(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("a cluster started with Cluster::with_faults")
    }

    /// The in-process server when there is one, for checks only it can make (its request log);
    /// never a reason to skip a test.
    pub fn fake(&self) -> Option<&ApiServer> {
        self.fake.as_ref()
    }

    pub fn is_real(&self) -> bool {
        self.fake.is_none()
    }

    /// `--namespace` and `--context` for the binary.
    pub fn context_args(&self) -> Vec<String> {
        vec![
            "--namespace".to_string(),
            self.namespace.clone(),
            "--context".to_string(),
            self.context.clone(),
        ]
    }

    /// Makes the API server refuse every HorizontalPodAutoscaler written to the test namespace
    /// (dry runs included) with `message`, as an admission policy would: on a real server a
    /// ValidatingAdmissionPolicy and its binding (deleted with the namespace), on the in-process
    /// server a 422 fault. Returns once a dry run is refused.
    pub async fn refuse_autoscalers(&self, message: &str) {
        let Some(name) = self.real_admission_policy(message).await else {
            let text = format!(
                "ValidatingAdmissionPolicy 'convoy-test' with binding 'convoy-test' denied request: {message}"
            );
            self.fake.as_ref().expect("the in-process server").fault(
                Fault::status(422)
                    .verb("apply")
                    .resource("horizontalpodautoscalers")
                    .message(&text),
            );
            return;
        };
        // The API server's admission picks up new policies from its informers.
        let probe = serde_json::json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "convoy-probe"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                     "maxReplicas": 1},
        });
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("autoscaling", "v2", "HorizontalPodAutoscaler"),
            "horizontalpodautoscalers",
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.admin.clone(), &self.namespace, &resource);
        let mut params = PatchParams::apply("convoy-test");
        params.dry_run = true;
        for _ in 0..100 {
            match api
                .patch("convoy-probe", &params, &Patch::Apply(&probe))
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 422 => return,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("the admission policy {name} never refused a dry run");
    }

    /// On a real server: a ValidatingAdmissionPolicy denying HPAs and its binding to the test
    /// namespace; returns its name. `None` on the in-process server.
    async fn real_admission_policy(&self, message: &str) -> Option<String> {
        if !self.is_real() {
            return None;
        }
        let name = format!("{}-no-hpas", self.namespace);
        let gvk = |kind: &str| GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
        let policy = ApiResource::from_gvk_with_plural(
            &gvk("ValidatingAdmissionPolicy"),
            "validatingadmissionpolicies",
        );
        let binding = ApiResource::from_gvk_with_plural(
            &gvk("ValidatingAdmissionPolicyBinding"),
            "validatingadmissionpolicybindings",
        );
        let objects = [
            (
                policy,
                serde_json::json!({
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "ValidatingAdmissionPolicy",
                    "metadata": {"name": name},
                    "spec": {
                        "failurePolicy": "Fail",
                        "matchConstraints": {"resourceRules": [{
                            "apiGroups": ["autoscaling"], "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["horizontalpodautoscalers"],
                        }]},
                        "validations": [{"expression": "false", "message": message}],
                    },
                }),
            ),
            (
                binding,
                serde_json::json!({
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "ValidatingAdmissionPolicyBinding",
                    "metadata": {"name": name},
                    "spec": {
                        "policyName": name,
                        "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": self.namespace,
                        }}},
                    },
                }),
            ),
        ];
        for (resource, object) in objects {
            let api: Api<DynamicObject> = Api::all_with(self.admin.clone(), &resource);
            api.patch(
                &name,
                &PatchParams::apply("convoy-test"),
                &Patch::Apply(&object),
            )
            .await
            .expect("create the admission policy");
            self.cluster_objects
                .lock()
                .unwrap()
                .push((resource, name.clone()));
        }
        Some(name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.is_real() {
            return;
        }
        // Delete what the test made even when it failed; Drop cannot await, so use a thread
        // with its own runtime. The namespace stays Terminating for a few seconds: no test
        // reuses a name.
        let client = self.admin.clone();
        let namespace = self.namespace.clone();
        let cluster_objects = std::mem::take(&mut *self.cluster_objects.lock().unwrap());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                for (resource, name) in cluster_objects.iter().rev() {
                    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
                    let _ = api.delete(name, &DeleteParams::default()).await;
                }
                let namespaces: Api<Namespace> = Api::all(client);
                let _ = namespaces
                    .delete(&namespace, &DeleteParams::default())
                    .await;
            });
        })
        .join();
    }
}

/// How a cluster is started.
#[derive(Default)]
struct Setup {
    ready_delay: Option<Duration>,
    faults: bool,
    fake_only: bool,
}

/// With `CONVOY_TEST_IMAGE` set (a cluster with real nodes), makes the project in `dir` run that
/// image instead of the example's unpullable ones: a project template overriding the built-in
/// Deployment, whose container sleeps — or exits 1 when the example's image name contains
/// `crash` — and has no readiness probe (the image serves no `/healthz`); an image name with
/// `pullfail` becomes one that cannot be pulled. Without it, the images are left alone: the
/// in-process server and the stand-in kubelet run any image. On the in-process server the
/// project's one-line `tasks:` entries are dropped (it runs no Jobs).
pub fn use_test_image(dir: &Path) {
    if !real_cluster_given() {
        // The in-process server has no Job controller: the example's release tasks (Jobs) run
        // on the real control plane only (`tests/cli/kubernetes_tasks.rs`).
        let file = dir.join("convoy.yaml");
        if let Ok(text) = std::fs::read_to_string(&file) {
            std::fs::write(&file, crate::cli::without_tasks(&text)).expect("write convoy.yaml");
        }
    }
    let Some(image) = std::env::var("CONVOY_TEST_IMAGE")
        .ok()
        .filter(|i| !i.is_empty())
    else {
        return;
    };
    let built_in = crate::repository_root().join("templates/kubernetes/deployment.yaml");
    let text = std::fs::read_to_string(built_in).expect("the built-in Deployment template");
    let container = format!(
        r#"{{%- if "pullfail" in image %}}
          image: "127.0.0.1:9/convoy-test/pullfail:absent"
          {{%- else %}}
          image: {image:?}
          {{%- endif %}}
          {{%- if "crash" in image %}}
          command: ["sh", "-c", "echo convoy test image: crashing; exit 1"]
          {{%- else %}}
          command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
          {{%- endif %}}"#
    );
    let original = "          image: {{ image | json }}";
    assert!(
        text.contains(original),
        "the built-in template names `image`"
    );
    let mut out = text.replace(original, container.trim_start_matches(' '));
    // The probes end the template: cut from the first one.
    if let Some(at) = out.find("          {%- if health.http and port %}") {
        out.truncate(at);
    }
    let target = dir.join("templates/kubernetes/deployment.yaml");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(target, out).unwrap();
}

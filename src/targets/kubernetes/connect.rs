//! Connecting to a cluster: the kubeconfig (honouring `KUBECONFIG`) and context named by the
//! environment or overridden on the command line, or the pod's service account in a cluster.

use kube::config::{Config, KubeConfigOptions};

use crate::config::KubernetesTarget;
use crate::targets::Overrides;

use super::KubeError;

/// A client and the namespace every object of the environment lives in.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    pub namespace: String,
}

impl Connection {
    /// The namespace: `--namespace` first, then the environment's.
    pub fn namespace(spec: &KubernetesTarget, overrides: &Overrides) -> String {
        overrides
            .namespace
            .clone()
            .unwrap_or_else(|| spec.namespace.clone())
    }

    /// Connects lazily: nothing is sent until the first request.
    pub async fn open(spec: &KubernetesTarget, overrides: &Overrides) -> Result<Self, KubeError> {
        let context = overrides
            .kube_context
            .clone()
            .or_else(|| spec.context.clone());
        let mut config = match &context {
            Some(context) => {
                let options = KubeConfigOptions {
                    context: Some(context.clone()),
                    ..KubeConfigOptions::default()
                };
                Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| config_error(&Some(context.clone()), e))?
            }
            // The current context, or in a pod its service account.
            None => Config::infer().await.map_err(|e| config_error(&None, e))?,
        };
        // So an operator reading the API server's audit log can tell Convoy's requests apart.
        config
            .headers
            .push((http::header::USER_AGENT, user_agent()));
        let throttle = super::throttle::ThrottleLayer::new(spec.qps, spec.burst);
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| config_error(&context, e))?
            .with_layer(&throttle)
            .with_layer(&super::in_flight::InFlightLayer::new(
                super::in_flight::IN_FLIGHT,
            ))
            .build();
        Ok(Connection {
            client,
            namespace: Self::namespace(spec, overrides),
        })
    }
}

/// `convoy/<version>`, as kubectl sends `kubectl/<version>`.
fn user_agent() -> http::HeaderValue {
    http::HeaderValue::from_static(concat!("convoy/", env!("CARGO_PKG_VERSION")))
}

fn config_error(
    context: &Option<String>,
    error: impl std::error::Error + Send + Sync + 'static,
) -> KubeError {
    KubeError::Config {
        context: context.clone(),
        source: Box::new(error),
    }
}

//! The environment's digest key as a Secret `convoy-digest-key-<environment>`: made on first
//! use with a create that fails if another run made it first (then theirs is read).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::KubeError;
use super::retry::{Backoff, retrying};

const KEY: &str = "key";

pub async fn digest_key(
    client: &kube::Client,
    namespace: &str,
    environment: &str,
) -> Result<Vec<u8>, KubeError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let name = format!("convoy-digest-key-{environment}");
    let object = format!("Secret/{name}");
    let read = || async {
        let found = retrying(Backoff::default(), || api.get_opt(&name)).await;
        let found = found.map_err(|e| KubeError::from_kube("read", &object, e))?;
        Ok::<_, KubeError>(found.and_then(|s| s.data?.get(KEY).map(|b| b.0.clone())))
    };
    if let Some(key) = read().await? {
        return Ok(key);
    }
    let key = crate::targets::new_digest_key().map_err(|e| KubeError::Api {
        action: "generate",
        object: object.clone(),
        message: e.to_string(),
        code: None,
    })?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [
                    ("app.kubernetes.io/managed-by", "convoy"),
                    ("convoy.dev/environment", environment),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            ..ObjectMeta::default()
        },
        data: Some([(KEY.to_string(), ByteString(key.clone()))].into()),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(key),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            read().await?.ok_or_else(|| KubeError::Api {
                action: "read",
                object,
                message: "the digest key vanished right after another run made it".into(),
                code: Some(409),
            })
        }
        Err(error) => Err(KubeError::from_kube("create", object, error)),
    }
}

//! The environment lock as a `coordination.k8s.io/v1` Lease named `convoy-lock`: the standard
//! fields (holder, acquire and renew time, duration) for `kubectl get lease`, and Convoy's own
//! lease (holder details and token) in an annotation. Every change is a replace guarded by the
//! Lease's resourceVersion, so two runs racing for it cannot both win.

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::{Lease as KubeLease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::{Api, Error as ApiError};

use crate::execute::lease_store::{LeaseStore, Slot};
use crate::execute::{Lease, LockError};

use super::error::terminating_namespace;
use super::retry::{Backoff, retrying};

pub const LOCK_NAME: &str = "convoy-lock";
const LEASE_ANNOTATION: &str = "convoy.dev/lease";
const ENVIRONMENT_LABEL: &str = "convoy.dev/environment";

pub struct LeaseLock {
    api: Api<KubeLease>,
    environment: String,
    namespace: String,
}

impl LeaseLock {
    pub fn new(client: kube::Client, namespace: &str, environment: &str) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            environment: environment.to_string(),
            namespace: namespace.to_string(),
        }
    }

    fn location(&self) -> String {
        format!("Lease {}/{LOCK_NAME}", self.namespace)
    }

    fn io(&self, action: &'static str, error: ApiError) -> LockError {
        LockError::Io {
            action,
            location: self.location(),
            source: std::io::Error::other(crate::diagnostic::chain(&error)),
        }
    }

    async fn get(&self) -> Result<Option<KubeLease>, LockError> {
        retrying(Backoff::default(), || self.api.get_opt(LOCK_NAME))
            .await
            .map_err(|e| self.io("read", e))
    }

    fn object(&self, lease: &Lease, previous: Option<&KubeLease>) -> KubeLease {
        let mut metadata = previous.map(|p| p.metadata.clone()).unwrap_or(ObjectMeta {
            name: Some(LOCK_NAME.to_string()),
            namespace: Some(self.namespace.clone()),
            ..ObjectMeta::default()
        });
        metadata.labels.get_or_insert_default().insert(
            "app.kubernetes.io/managed-by".to_string(),
            "convoy".to_string(),
        );
        metadata
            .labels
            .get_or_insert_default()
            .insert(ENVIRONMENT_LABEL.to_string(), self.environment.clone());
        metadata.annotations.get_or_insert_default().insert(
            LEASE_ANNOTATION.to_string(),
            serde_json::to_string(lease).unwrap_or_default(),
        );
        let transitions = previous
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        let seconds = lease.expires.duration_since(lease.renewed).as_secs();
        KubeLease {
            metadata,
            spec: Some(LeaseSpec {
                holder_identity: Some(lease.holder.to_string()),
                acquire_time: Some(MicroTime(lease.acquired)),
                renew_time: Some(MicroTime(lease.renewed)),
                lease_duration_seconds: Some(seconds.clamp(1, i64::from(i32::MAX)) as i32),
                lease_transitions: Some(transitions + i32::from(previous.is_some())),
                ..LeaseSpec::default()
            }),
        }
    }

    fn namespace_missing(&self) -> LockError {
        LockError::Io {
            action: "create",
            location: self.location(),
            source: std::io::Error::other(format!(
                "namespace `{}` does not exist: create it, or pass `--namespace`",
                self.namespace
            )),
        }
    }
}

#[async_trait]
impl LeaseStore for LeaseLock {
    fn environment(&self) -> &str {
        &self.environment
    }

    async fn read(&self) -> Result<Slot, LockError> {
        let Some(object) = self.get().await? else {
            return Ok(Slot::default());
        };
        let lease = object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LEASE_ANNOTATION))
            .and_then(|text| serde_json::from_str(text).ok());
        Ok(Slot {
            lease,
            version: object.metadata.resource_version,
        })
    }

    /// Creates the Lease, or replaces it at resourceVersion `expected` (keeping its metadata and
    /// counting the transition).
    async fn write(&self, lease: &Lease, expected: Option<&str>) -> Result<bool, LockError> {
        let previous = match expected {
            None => None,
            Some(version) => match self.get().await? {
                Some(object) if object.metadata.resource_version.as_deref() == Some(version) => {
                    Some(object)
                }
                _ => return Ok(false),
            },
        };
        let object = self.object(lease, previous.as_ref());
        let params = PostParams::default();
        let result = retrying(Backoff::default(), || async {
            match previous {
                None => self.api.create(&params, &object).await,
                Some(_) => self.api.replace(LOCK_NAME, &params, &object).await,
            }
        })
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(ApiError::Api(status)) if status.code == 409 => Ok(false),
            Err(ApiError::Api(status)) if status.code == 404 => Err(self.namespace_missing()),
            Err(ApiError::Api(status)) if terminating_namespace(&status).is_some() => {
                Err(LockError::Io {
                    action: "create",
                    location: self.location(),
                    source: std::io::Error::other(format!(
                        "namespace `{}` is being deleted: wait until it is gone and create it \
                         again, or pass `--namespace`",
                        self.namespace
                    )),
                })
            }
            Err(error) => Err(self.io("write", error)),
        }
    }

    /// Deletes the Lease as it was read, not a newer one someone else wrote since.
    async fn delete(&self, version: &str) -> Result<bool, LockError> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(version.to_string()),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        match retrying(Backoff::default(), || self.api.delete(LOCK_NAME, &params)).await {
            Ok(_) => Ok(true),
            Err(ApiError::Api(status)) if status.code == 404 || status.code == 409 => Ok(false),
            Err(error) => Err(self.io("delete", error)),
        }
    }
}

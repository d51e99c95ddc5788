//! The environment lock as a `coordination.k8s.io/v1` Lease named `convoy-lock`: the standard
//! fields (holder, acquire and renew time, duration) for `kubectl get lease`, and Convoy's own
//! lease (holder details and token) in an annotation. Every change is a replace guarded by the
//! Lease's resourceVersion, so two runs racing for it cannot both win.

use async_trait::async_trait;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease as KubeLease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::{Api, Error as ApiError};

use crate::execute::lock::Acquired;
use crate::execute::{EnvLock, Holder, Lease, LockError};

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

    async fn read(&self) -> Result<Option<(KubeLease, Option<Lease>)>, LockError> {
        let found = retrying(Backoff::default(), || self.api.get_opt(LOCK_NAME))
            .await
            .map_err(|e| self.io("read", e))?;
        Ok(found.map(|object| {
            let lease = object
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LEASE_ANNOTATION))
                .and_then(|text| serde_json::from_str(text).ok());
            (object, lease)
        }))
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

    /// Creates the Lease, or replaces `previous` unless someone changed it since it was read.
    /// `Ok(false)`: someone else wrote first.
    async fn write(&self, lease: &Lease, previous: Option<&KubeLease>) -> Result<bool, LockError> {
        let object = self.object(lease, previous);
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
            Err(ApiError::Api(status)) if status.code == 404 => Err(LockError::Io {
                action: "create",
                location: self.location(),
                source: std::io::Error::other(format!(
                    "namespace `{}` does not exist: create it, or pass `--namespace`",
                    self.namespace
                )),
            }),
            Err(error) => Err(self.io("write", error)),
        }
    }

    fn held(&self, lease: Lease) -> LockError {
        LockError::Held {
            environment: self.environment.clone(),
            lease: Box::new(lease),
        }
    }

    fn lost(&self, lease: Lease) -> LockError {
        LockError::Lost {
            environment: self.environment.clone(),
            lease: Box::new(lease),
        }
    }
}

#[async_trait]
impl EnvLock for LeaseLock {
    async fn acquire(
        &self,
        holder: &Holder,
        token: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Acquired, LockError> {
        let found = self.read().await?;
        let took_over = match &found {
            Some((_, Some(current))) if current.excludes(holder, token, now) => {
                return Err(self.held(current.clone()));
            }
            Some((_, current)) => current.clone().filter(|c| c.token != token),
            None => None,
        };
        let lease = Lease::new(holder, token, ttl, now);
        if self.write(&lease, found.as_ref().map(|(o, _)| o)).await? {
            return Ok(Acquired { lease, took_over });
        }
        // Someone wrote between our read and our write: they hold it now.
        match self.read().await? {
            Some((_, Some(current))) => Err(self.held(current)),
            _ => Err(self.io(
                "acquire",
                ApiError::Api(Box::new(
                    kube::core::Status::failure("the lease changed while acquiring", "Conflict")
                        .with_code(409),
                )),
            )),
        }
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Lease, LockError> {
        let found = self.read().await?;
        let (object, current) = match found {
            Some((object, Some(current))) if current.token == lease.token => (object, current),
            Some((_, Some(other))) => return Err(self.lost(other)),
            _ => return Err(self.lost(lease.clone())),
        };
        let renewed = current.renewed(ttl, now);
        if self.write(&renewed, Some(&object)).await? {
            Ok(renewed)
        } else {
            match self.read().await? {
                Some((_, Some(other))) => Err(self.lost(other)),
                _ => Err(self.lost(lease.clone())),
            }
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), LockError> {
        let Some((object, Some(current))) = self.read().await? else {
            return Ok(());
        };
        if current.token != lease.token {
            return Ok(()); // taken over meanwhile: not ours to delete
        }
        self.delete(&object).await.map(|_| ())
    }

    async fn status(&self) -> Result<Option<Lease>, LockError> {
        Ok(self.read().await?.and_then(|(_, lease)| lease))
    }

    async fn break_lock(&self) -> Result<Option<Lease>, LockError> {
        let Some((object, lease)) = self.read().await? else {
            return Ok(None);
        };
        self.delete(&object).await?;
        Ok(lease)
    }
}

impl LeaseLock {
    /// Deletes the Lease as it was read, not a newer one someone else wrote since.
    async fn delete(&self, object: &KubeLease) -> Result<bool, LockError> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: object.metadata.resource_version.clone(),
                uid: object.metadata.uid.clone(),
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

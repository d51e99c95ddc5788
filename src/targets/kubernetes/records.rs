//! Release records in the cluster: one ConfigMap per release, labelled `convoy.dev/release`,
//! holding the gzip-compressed JSON record (plan, journal, versions, outcome — never a secret, so
//! a ConfigMap is the right kind). Any runner with access to the namespace can continue a release.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};

use crate::execute::{ReleaseError, ReleaseRecord, ReleaseStore};

use super::retry::{Backoff, retrying};

pub const RELEASE_LABEL: &str = "convoy.dev/release";
pub const ENVIRONMENT_LABEL: &str = "convoy.dev/environment";
const RECORD_KEY: &str = "record.json.gz";
pub const FIELD_MANAGER: &str = "convoy";

pub struct ReleaseConfigMaps {
    api: Api<ConfigMap>,
    namespace: String,
    environment: String,
    /// How many records to keep; older ones are deleted when a new release is recorded.
    history: usize,
}

impl ReleaseConfigMaps {
    pub fn new(client: kube::Client, namespace: &str, environment: &str, history: usize) -> Self {
        ReleaseConfigMaps {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            environment: environment.to_string(),
            history: history.max(1),
        }
    }

    fn name(&self, number: u64) -> String {
        format!("convoy-release-{}-{number}", self.environment)
    }

    fn location(&self) -> String {
        format!("ConfigMaps of namespace {}", self.namespace)
    }

    fn io(&self, action: &'static str, error: kube::Error) -> ReleaseError {
        ReleaseError::Io {
            action,
            location: self.location(),
            source: std::io::Error::other(crate::diagnostic::chain(&error)),
        }
    }

    fn selector(&self) -> String {
        format!("{ENVIRONMENT_LABEL}={},{RELEASE_LABEL}", self.environment)
    }

    /// The records' ConfigMaps, newest first by their release label (nothing decoded yet).
    async fn listed(&self) -> Result<Vec<(u64, ConfigMap)>, ReleaseError> {
        let params = ListParams::default().labels(&self.selector());
        let list = retrying(Backoff::default(), || self.api.list(&params))
            .await
            .map_err(|e| self.io("list", e))?;
        let mut listed: Vec<(u64, ConfigMap)> = list
            .items
            .into_iter()
            .map(|object| (self.number_of(&object), object))
            .collect();
        listed.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
        Ok(listed)
    }

    /// A record's number from its label, else from its name (a label edited by hand).
    fn number_of(&self, object: &ConfigMap) -> u64 {
        let labels = object.metadata.labels.as_ref();
        let label = labels.and_then(|l| l.get(RELEASE_LABEL));
        let prefix = format!("convoy-release-{}-", self.environment);
        let name = object.metadata.name.as_deref().unwrap_or_default();
        label
            .and_then(|n| n.parse().ok())
            .or_else(|| name.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or(0)
    }

    /// The newest `limit` records, decoded; older ones are not even decompressed — at a
    /// thousand services a record is megabytes of JSON, and a deploy reads the latest one.
    async fn newest(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        let listed = self.listed().await?;
        let mut records = listed
            .iter()
            .take(limit)
            .map(|(_, object)| decode(object, &self.namespace))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| std::cmp::Reverse(r.number));
        Ok(records)
    }

    /// Deletes records beyond the history cap, oldest first, by their labels alone; failures
    /// are left for next time.
    async fn prune(&self, newest: u64) {
        let Ok(listed) = self.listed().await else {
            return;
        };
        let old = listed
            .iter()
            .filter(|(number, _)| number + self.history as u64 <= newest)
            .filter_map(|(_, object)| object.metadata.name.as_deref());
        for name in old {
            let _ = self.api.delete(name, &DeleteParams::default()).await;
        }
    }
}

fn decode(object: &ConfigMap, namespace: &str) -> Result<ReleaseRecord, ReleaseError> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let location = format!("ConfigMap {namespace}/{name}");
    let bytes = object
        .binary_data
        .as_ref()
        .and_then(|d| d.get(RECORD_KEY))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .read_to_end(&mut json)
        .map_err(|source| ReleaseError::Io {
            action: "decompress",
            location: location.clone(),
            source,
        })?;
    serde_json::from_slice(&json).map_err(|source| ReleaseError::Corrupt { location, source })
}

fn encode(record: &ReleaseRecord) -> Result<Vec<u8>, std::io::Error> {
    let json = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json)?;
    gz.finish()
}

#[async_trait]
impl ReleaseStore for ReleaseConfigMaps {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        Ok(self.newest(1).await?.into_iter().next())
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        let name = self.name(number);
        let found = retrying(Backoff::default(), || self.api.get_opt(&name))
            .await
            .map_err(|e| self.io("read", e))?;
        found.map(|o| decode(&o, &self.namespace)).transpose()
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        self.newest(limit).await
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        let name = self.name(record.number);
        let bytes = encode(record).map_err(|source| ReleaseError::Io {
            action: "compress",
            location: self.location(),
            source,
        })?;
        let object = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (RELEASE_LABEL.to_string(), record.number.to_string()),
                    (ENVIRONMENT_LABEL.to_string(), self.environment.clone()),
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "convoy".to_string(),
                    ),
                ])),
                ..ObjectMeta::default()
            },
            binary_data: Some(BTreeMap::from([(
                RECORD_KEY.to_string(),
                ByteString(bytes),
            )])),
            ..ConfigMap::default()
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let first_save = record.journal.is_empty() && record.rollback_journal.is_empty();
        let (api, name_ref, params, body) = (&self.api, &name, &params, &object);
        retrying(Backoff::default(), move || async move {
            api.patch(name_ref, params, &Patch::Apply(body)).await
        })
        .await
        .map_err(|e| self.io("write", e))?;
        if first_save {
            self.prune(record.number).await;
        }
        Ok(())
    }
}

//! A Kubernetes environment's flags: the ConfigMap `<project>-flags` in its namespace, which
//! every built-in Deployment mounts read-only at `/etc/convoy/flags` (`CONVOY_FLAGS_FILE` =
//! `/etc/convoy/flags/flags.json`). It holds `flags.json` (the whole flat object) and one key per
//! flag; its revision is the annotation `convoy.dev/flags-revision`. A write is compare-and-swap
//! twice over: on that revision (what `--expect` names), and on the ConfigMap's resourceVersion,
//! so a write racing another gets 409 from the API server and is refused as stale. History is
//! the ConfigMap `<project>-flags-history` (key `history.jsonl`, the last [`HISTORY_KEPT`]
//! changes), kept apart so services do not see who changed what. Never the deploy lease.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::execute::flags::{
    FlagAuthor, FlagChange, FlagEdit, FlagError, FlagSet, FlagStore, apply_edits,
};

pub const REVISION_ANNOTATION: &str = "convoy.dev/flags-revision";
/// The key holding every flag as one JSON object.
pub const FLAGS_KEY: &str = "flags.json";
const HISTORY_KEY: &str = "history.jsonl";
/// Changes the history ConfigMap keeps (well under its 1 MiB limit).
pub const HISTORY_KEPT: usize = 500;

pub struct FlagConfigMaps {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    history: String,
}

impl FlagConfigMaps {
    pub fn new(client: kube::Client, namespace: &str, project: &str) -> Self {
        let name = crate::render::flags_config_map(project);
        FlagConfigMaps {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            history: format!("{name}-history"),
            name,
        }
    }

    fn location(&self, name: &str) -> String {
        format!("ConfigMap {}/{name}", self.namespace)
    }

    fn remote(&self, action: &'static str, name: &str) -> impl FnOnce(kube::Error) -> FlagError {
        let location = self.location(name);
        move |error| FlagError::Remote {
            action,
            location,
            detail: crate::diagnostic::chain(&error),
        }
    }

    /// The ConfigMap (if any) and the flags it holds.
    async fn read_now(&self) -> Result<(Option<ConfigMap>, FlagSet), FlagError> {
        let found = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(self.remote("read", &self.name))?;
        let Some(map) = found else {
            return Ok((None, FlagSet::default()));
        };
        let text = map
            .data
            .as_ref()
            .and_then(|d| d.get(FLAGS_KEY))
            .map_or("{}", String::as_str);
        let corrupt = |detail: String| FlagError::Corrupt {
            location: format!("{} key {FLAGS_KEY}", self.location(&self.name)),
            detail,
        };
        let flags: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let annotations = map.metadata.annotations.as_ref();
        let revision = match annotations.and_then(|a| a.get(REVISION_ANNOTATION)) {
            Some(value) => value
                .parse()
                .map_err(|_| corrupt(format!("{REVISION_ANNOTATION} is `{value}`")))?,
            None => 0,
        };
        Ok((Some(map), FlagSet { revision, flags }))
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/managed-by".into(), "convoy".into()),
            ("convoy.dev/flags".into(), "true".into()),
        ])
    }

    async fn read_history(&self) -> Result<(Option<ConfigMap>, Vec<FlagChange>), FlagError> {
        let found = self
            .api
            .get_opt(&self.history)
            .await
            .map_err(self.remote("read", &self.history))?;
        let changes = found
            .as_ref()
            .and_then(|m| m.data.as_ref()?.get(HISTORY_KEY).cloned())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        Ok((found, changes))
    }

    /// Appends `changes` to the history ConfigMap, retrying a lost race (the flags' own
    /// compare-and-swap already ordered the writers).
    async fn append_history(&self, changes: &[FlagChange]) -> Result<(), FlagError> {
        loop {
            let (found, mut history) = self.read_history().await?;
            history.extend(changes.iter().cloned());
            let kept = &history[history.len().saturating_sub(HISTORY_KEPT)..];
            let mut text = String::new();
            for change in kept {
                text.push_str(&serde_json::to_string(change).unwrap_or_default());
                text.push('\n');
            }
            let map = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(self.history.clone()),
                    namespace: Some(self.namespace.clone()),
                    labels: Some(self.labels()),
                    resource_version: found.and_then(|m| m.metadata.resource_version),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(HISTORY_KEY.to_string(), text)])),
                ..ConfigMap::default()
            };
            match self.put(&self.history, map).await {
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                other => return other.map(drop).map_err(self.remote("write", &self.history)),
            }
        }
    }

    /// Creates `map`, or replaces it when it names the resourceVersion it was read at.
    async fn put(&self, name: &str, map: ConfigMap) -> Result<ConfigMap, kube::Error> {
        let params = PostParams::default();
        match map.metadata.resource_version {
            Some(_) => self.api.replace(name, &params, &map).await,
            None => self.api.create(&params, &map).await,
        }
    }
}

/// The ConfigMap's data for `flags`: `flags.json`, and each flag whose key is a ConfigMap key of
/// its own (not `flags.json`, not `.`/`..`-led).
fn data(flags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = flags
        .iter()
        .filter(|(k, _)| k.as_str() != FLAGS_KEY && !k.starts_with(".."))
        .filter(|(k, _)| k.as_str() != ".")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let whole = serde_json::to_string_pretty(flags).unwrap_or_default();
    data.insert(FLAGS_KEY.to_string(), whole);
    data
}

#[async_trait]
impl FlagStore for FlagConfigMaps {
    async fn read(&self) -> Result<FlagSet, FlagError> {
        Ok(self.read_now().await?.1)
    }

    async fn write(
        &self,
        expected: u64,
        edits: &[FlagEdit],
        author: &FlagAuthor,
    ) -> Result<FlagSet, FlagError> {
        let (found, now) = self.read_now().await?;
        if now.revision != expected {
            let found = now.revision;
            return Err(FlagError::Stale { expected, found });
        }
        let (next, changes) = apply_edits(&now, edits, author);
        if changes.is_empty() {
            return Ok(now);
        }
        let mut metadata = found.map(|m| m.metadata).unwrap_or_else(|| ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        });
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(REVISION_ANNOTATION.to_string(), next.revision.to_string());
        metadata.managed_fields = None;
        let map = ConfigMap {
            metadata,
            data: Some(data(&next.flags)),
            ..ConfigMap::default()
        };
        match self.put(&self.name, map).await {
            Ok(_) => {}
            // Another write got in between our read and ours (409 on a stale resourceVersion,
            // or on creating what someone just created): refused, not overwritten.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let found = self.read_now().await?.1.revision;
                return Err(FlagError::Stale { expected, found });
            }
            Err(error) => return Err(self.remote("write", &self.name)(error)),
        }
        self.append_history(&changes).await?;
        Ok(next)
    }

    async fn history(&self, limit: usize) -> Result<Vec<FlagChange>, FlagError> {
        let history = self.read_history().await?.1;
        Ok(history[history.len().saturating_sub(limit)..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_holds_the_whole_object_and_a_key_per_flag_that_can_be_one() {
        let flags = BTreeMap::from([
            ("checkout".to_string(), "new".to_string()),
            ("flags.json".to_string(), "x".to_string()),
        ]);
        let data = data(&flags);
        assert_eq!(data["checkout"], "new");
        let whole: BTreeMap<String, String> = serde_json::from_str(&data[FLAGS_KEY]).unwrap();
        assert_eq!(
            whole, flags,
            "flags.json is the whole object, never a flag's value"
        );
    }
}

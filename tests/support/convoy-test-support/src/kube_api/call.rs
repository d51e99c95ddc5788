//! A parsed request on a resource: verb, resource, namespace, name, subresource, query, body,
//! and the questions every verb asks of them (dry run? which field manager? which selectors?).

use serde_json::Value;

use super::apply::Writer;
use super::discovery::ResourceDef;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Store;

/// A parsed request on a resource.
#[derive(Debug, Clone)]
pub struct Call {
    pub verb: &'static str,
    pub res: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: bytes::Bytes,
    pub content_type: String,
    pub user_agent: String,
    /// The `Accept` header: `as=PartialObjectMetadataList` asks a list for metadata only.
    pub accept: String,
}

impl Call {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the caller asked for metadata only (`kube::Api::list_metadata`).
    pub fn metadata_only(&self) -> bool {
        asks_for_metadata(&self.accept)
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }

    pub fn dry_run(&self) -> bool {
        self.param("dryRun") == Some("All") || self.delete_options()["dryRun"][0] == "All"
    }

    pub fn delete_options(&self) -> Value {
        if self.verb != "delete" {
            return Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    pub fn writer(&self, store: &Store) -> Writer<'_> {
        let manager = self
            .param("fieldManager")
            .or_else(|| self.user_agent.split('/').next())
            .filter(|m| !m.is_empty())
            .unwrap_or("unknown");
        Writer {
            manager,
            api_version: self.res.api_version(),
            subresource: self.sub.as_deref().unwrap_or(""),
            now: store.clock.stamp(),
        }
    }

    pub fn labels(&self) -> Result<LabelSelector, ApiError> {
        LabelSelector::parse(self.param("labelSelector").unwrap_or(""))
    }

    pub fn fields(&self) -> Result<FieldSelector, ApiError> {
        FieldSelector::parse(self.param("fieldSelector").unwrap_or(""))
    }
}

/// Whether an `Accept` header asks a list for its items' metadata alone.
pub fn asks_for_metadata(accept: &str) -> bool {
    accept.contains("as=PartialObjectMetadataList")
}

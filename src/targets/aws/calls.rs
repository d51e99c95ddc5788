//! Counting AWS API calls by operation: an SDK interceptor shared by every client, so the cost
//! of a rollout in requests (against the account's shared request buckets) can be measured.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Calls made so far, keyed `Service.Operation` (e.g. `AutoScaling.CreateAutoScalingGroup`);
/// retries of one call count once. Counted before serialization: the operation's metadata is
/// not in the config bag yet when client interceptors see `read_before_execution`.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn reset(&self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.clear();
        }
    }

    /// The counts gained since `before`.
    pub fn since(&self, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        self.snapshot()
            .into_iter()
            .filter_map(|(op, n)| {
                let gained = n - before.get(&op).copied().unwrap_or(0);
                (gained > 0).then_some((op, gained))
            })
            .collect()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "convoy-call-counter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let service: String = metadata.service().split_whitespace().collect();
            let key = format!("{service}.{}", metadata.name());
            if let Ok(mut counts) = self.counts.lock() {
                *counts.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }
}

//! Which autoscalers a canary has pinned (see [`super::canary`]), read once per release.
//!
//! Every pinned switch restores the autoscalers of the revisions it moves traffic between, in
//! case a canary pinned them; nearly always none did. Only Convoy pins, under the release lock,
//! so one list of the namespace's pinned autoscalers when a switch first asks, kept current by
//! this process's own pins and unpins, tells each switch whether there is anything to read —
//! rather than two reads per switch.

use std::collections::BTreeSet;
use std::sync::Mutex;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::ListParams;
use tokio::sync::OnceCell;

use super::canary::PINNED_ANNOTATION;
use super::observe::{MANAGED, list_kept};

/// The names of the pinned autoscalers; unknown (every switch reads) when the list failed.
#[derive(Default)]
pub(super) struct Pins(OnceCell<Option<Mutex<BTreeSet<String>>>>);

impl Pins {
    /// Whether autoscaler `name` may be pinned: listed once, on the first question.
    pub async fn may_be_pinned(&self, api: &Api<HorizontalPodAutoscaler>, name: &str) -> bool {
        match self.names(api).await {
            Some(names) => lock(names).contains(name),
            None => true,
        }
    }

    /// Autoscaler `name` was just pinned or unpinned by this process.
    pub async fn set(&self, api: &Api<HorizontalPodAutoscaler>, name: &str, pinned: bool) {
        if let Some(names) = self.names(api).await {
            let mut names = lock(names);
            match pinned {
                true => names.insert(name.to_string()),
                false => names.remove(name),
            };
        }
    }

    async fn names(&self, api: &Api<HorizontalPodAutoscaler>) -> Option<&Mutex<BTreeSet<String>>> {
        let listed = self.0.get_or_init(|| async {
            let params = ListParams::default().labels(MANAGED);
            let pinned = |hpa: HorizontalPodAutoscaler| {
                let annotations = hpa.metadata.annotations.as_ref()?;
                annotations.contains_key(PINNED_ANNOTATION).then_some(())?;
                hpa.metadata.name
            };
            let names = list_kept(api, &params, "HorizontalPodAutoscalers", pinned).await;
            // Not listable (a narrower role): each switch reads its two, as it would have.
            names
                .ok()
                .map(|names| Mutex::new(names.into_iter().collect()))
        });
        listed.await.as_ref()
    }
}

fn lock(names: &Mutex<BTreeSet<String>>) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
    names
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

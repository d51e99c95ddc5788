//! Pruning a store: keep the newest N versions of each service and everything still referenced.

use std::collections::{BTreeMap, HashSet};

use super::{ArtifactError, ArtifactMeta, ArtifactStore};

/// What [`gc`] kept and deleted.
#[derive(Debug, Default)]
pub struct GcReport {
    pub kept: Vec<ArtifactMeta>,
    pub deleted: Vec<ArtifactMeta>,
}

/// Deletes all but the newest `keep` versions of each service. Versions in `protected`
/// (`(service, version)` pairs, e.g. referenced by a release record) are never deleted and do
/// not count against `keep`.
pub async fn gc(
    store: &dyn ArtifactStore,
    keep: usize,
    protected: &HashSet<(String, String)>,
) -> Result<GcReport, ArtifactError> {
    let mut by_service: BTreeMap<String, Vec<ArtifactMeta>> = BTreeMap::new();
    for meta in store.list(None).await? {
        by_service
            .entry(meta.service.clone())
            .or_default()
            .push(meta);
    }
    let mut report = GcReport::default();
    for (_, mut versions) in by_service {
        super::sort(&mut versions);
        let mut unprotected_seen = 0;
        // Newest first: the first `keep` unprotected versions stay.
        for meta in versions.into_iter().rev() {
            let is_protected = protected.contains(&(meta.service.clone(), meta.version.clone()));
            if is_protected || unprotected_seen < keep {
                if !is_protected {
                    unprotected_seen += 1;
                }
                report.kept.push(meta);
            } else {
                store.delete(&meta.service, &meta.version).await?;
                report.deleted.push(meta);
            }
        }
    }
    Ok(report)
}

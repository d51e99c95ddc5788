//! `convoy status`: live and warm versions, the lock, the last release, and the prewarm windows
//! with the capacity that actually serves. Reads only; needs no value and no secret.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::Error;
use crate::config::Project;
use crate::execute::{Lease, ReleaseRecord};
use crate::ops::rollout::services;
use crate::plan::ServiceState;
use crate::plan::prewarm::Schedule;
use crate::targets::prewarm::{Capacity, RaisedBy};
use crate::targets::{Overrides, TargetsError};

pub struct StatusOptions {
    pub project: Project,
    pub environment: String,
    pub overrides: Overrides,
}

pub struct Status {
    pub environment: String,
    /// Every service of the project, in order, with what runs (nothing, for one never deployed).
    pub services: Vec<(String, ServiceState)>,
    pub lease: Option<Lease>,
    pub latest: Option<ReleaseRecord>,
    /// How big each running revision is, where the target says (by service and revision).
    pub sizes: BTreeMap<String, BTreeMap<String, String>>,
    /// When each warm revision (by service) stopped taking traffic, as the records tell.
    pub warm_since: BTreeMap<String, BTreeMap<String, Timestamp>>,
    /// The environment's prewarm windows, when its target keeps any.
    pub prewarm: Option<PrewarmStatus>,
    /// The environment's live flags, when its target keeps any.
    pub flags: Option<crate::ops::flag_status::FlagStatus>,
}

/// Windows and the capacity of the services they concern, at `now`.
pub struct PrewarmStatus {
    pub schedule: Schedule,
    pub levels: BTreeMap<String, Capacity>,
    pub raised_by: RaisedBy,
    pub now: Timestamp,
}

pub async fn status(options: StatusOptions, now: Timestamp) -> Result<Status, Error> {
    let StatusOptions {
        project,
        environment,
        overrides,
    } = options;
    let names = services(&project, &[])?;
    let backend = crate::targets::open(&project, &environment, &overrides).await?;
    let mut observed = backend.observe(&names).await?;
    let sizes = backend.sizes(&names).await?;
    let lease = backend.lock()?.status().await?;
    let records = backend.releases()?.list(50).await?;
    let latest = records.first().cloned();
    let warm_since = warm_since(&records);
    let prewarm = match backend.prewarmer().await {
        Ok(prewarmer) => {
            let stored = prewarmer.load().await?;
            if stored.schedule.windows.is_empty() {
                None
            } else {
                Some(PrewarmStatus {
                    levels: prewarmer.levels(&names).await?,
                    schedule: stored.schedule,
                    raised_by: prewarmer.raised_by(),
                    now,
                })
            }
        }
        Err(TargetsError::Unsupported { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let flags = match backend.flags() {
        Ok(store) => {
            use crate::ops::flag_status::{FlagStatus, longest_task, maintenance_overdue};
            let flags = store.read().await?;
            let history = store.history(usize::MAX).await?;
            let overdue = maintenance_overdue(&flags, &history, longest_task(&project), now);
            Some(FlagStatus {
                flags,
                maintenance_overdue: overdue,
            })
        }
        Err(TargetsError::Unsupported { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let services = names
        .into_iter()
        .map(|name| {
            let state = observed.remove(&name).unwrap_or_default();
            (name, state)
        })
        .collect();
    Ok(Status {
        environment,
        services,
        lease,
        latest,
        sizes,
        warm_since,
        prewarm,
        flags,
    })
}

/// When each revision that served before a release stopped serving: that release's end. The
/// newest such release wins (records are newest first).
fn warm_since(records: &[ReleaseRecord]) -> BTreeMap<String, BTreeMap<String, Timestamp>> {
    let mut since: BTreeMap<String, BTreeMap<String, Timestamp>> = BTreeMap::new();
    for record in records {
        let at = record.finished.unwrap_or(record.started);
        for (service, before) in &record.before {
            let Some(before) = before else { continue };
            if record.after.get(service) == Some(before) {
                continue;
            }
            let revisions = since.entry(service.clone()).or_default();
            revisions.entry(before.clone()).or_insert(at);
        }
    }
    since
}

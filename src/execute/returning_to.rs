//! Where a rollback returns to, read from the release records alone — never from a project's
//! working tree: what served after an earlier release, or before the last successful one.

use std::collections::BTreeMap;

use crate::execute::{Outcome, ReleaseRecord};

/// The revision each service returns to and the release it returns to: those serving after
/// release `to`, or, by default, those that served before the last successful release. `None`
/// when there is nothing to return to. `records` are newest first.
pub fn rollback_target(
    records: &[ReleaseRecord],
    to: Option<u64>,
) -> Option<(BTreeMap<String, String>, u64)> {
    let (serving, number) = match to {
        Some(number) => {
            let record = records.iter().find(|r| r.number == number)?;
            (record.serving(), number)
        }
        None => {
            let last = records.iter().find(|r| r.outcome == Outcome::Succeeded)?;
            (last.before.clone(), last.number.checked_sub(1)?)
        }
    };
    let desired: BTreeMap<String, String> = serving
        .into_iter()
        .filter_map(|(s, v)| Some((s, v?)))
        .collect();
    (!desired.is_empty()).then_some((desired, number))
}

/// What `convoy rollback --to to` would leave serving: an unfinished latest release reverts
/// to what served before it; otherwise as [`rollback_target`].
pub fn returning_to(records: &[ReleaseRecord], to: Option<u64>) -> BTreeMap<String, String> {
    match records.first() {
        Some(latest) if to.is_none() && latest.is_unfinished() => latest
            .before
            .iter()
            .filter_map(|(s, v)| Some((s.clone(), v.clone()?)))
            .collect(),
        _ => rollback_target(records, to).map_or_else(BTreeMap::new, |(desired, _)| desired),
    }
}

//! What a prewarm request can get wrong, each naming the flag and what to write instead; and the
//! parsing of `--at` (RFC 3339, or a civil time with a named time zone).

use jiff::civil::DateTime;
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::diagnostic::Diagnose;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrewarmError {
    #[error("--at `{text}` is not a time: {detail}")]
    BadTime { text: String, detail: String },
    #[error("--at `{text}` happens {how} in {zone} (a daylight-saving change)")]
    AmbiguousTime {
        text: String,
        zone: String,
        how: &'static str,
        /// The instants it could mean, written unambiguously.
        choices: Vec<String>,
    },
    #[error("--at {at} is in the past (now is {now})")]
    InThePast { at: String, now: String },
    #[error("{flag} {value} is out of range: {rule}")]
    OutOfRange {
        flag: &'static str,
        value: String,
        rule: String,
    },
    #[error("service `{service}` has no live version in `{environment}`, so nothing to prewarm")]
    NotLive {
        service: String,
        environment: String,
    },
    #[error("service `{service}` is both prewarmed and paused (--pause)")]
    PausedAndRaised { service: String },
    #[error("no service to prewarm: every named service is background work")]
    NothingToRaise,
    #[error("no prewarm window `{id}` in `{environment}`")]
    UnknownWindow { id: String, environment: String },
    #[error("the prewarmed capacity was not Ready within {budget}")]
    NotReady { budget: String },
    #[error("the prewarm schedule in {location} cannot be read: {detail}")]
    Corrupt { location: String, detail: String },
    #[error("{group}: {detail}")]
    ScheduledActions { group: String, detail: String },
}

impl Diagnose for PrewarmError {
    fn help(&self) -> Option<String> {
        Some(match self {
            PrewarmError::BadTime { .. } => "write RFC 3339 such as `2026-12-01T10:00+01:00`, or a time and a zone such as `2026-12-01T10:00[Europe/Berlin]` or `\"2026-12-01 10:00 Europe/Berlin\"`".to_string(),
            PrewarmError::AmbiguousTime { choices, .. } if !choices.is_empty() => format!(
                "write the one you mean with its offset: {}",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            PrewarmError::AmbiguousTime { .. } => {
                "that wall-clock time is skipped; pick a time before or after the change".to_string()
            }
            PrewarmError::InThePast { .. } => {
                "give a future --at, or `--now` to raise capacity at once".to_string()
            }
            PrewarmError::OutOfRange { .. } => "see `convoy prewarm --help`".to_string(),
            PrewarmError::NotLive { environment, .. } => format!(
                "deploy it first (`convoy deploy --env {environment}`), or leave it out of the services named"
            ),
            PrewarmError::PausedAndRaised { .. } => {
                "name it either as a service to prewarm or with --pause, not both".to_string()
            }
            PrewarmError::NothingToRaise => {
                "name a request-path service, or leave the service list empty for all of them"
                    .to_string()
            }
            PrewarmError::UnknownWindow { environment, .. } => {
                format!("`convoy prewarm list --env {environment}` shows the windows and their ids")
            }
            PrewarmError::NotReady { .. } => "the window is stored and stays raised; `convoy status` shows which services lack Ready replicas (look for pending pods: quota, node capacity)".to_string(),
            PrewarmError::Corrupt { location, .. } => format!(
                "fix its `schedule.json`, or delete {location} to drop every window (then restore any raised capacity by hand)"
            ),
            PrewarmError::ScheduledActions { .. } => {
                "use fewer or longer windows, or a longer --lead".to_string()
            }
        })
    }
}

/// `--at`: RFC 3339 with an offset (`2026-12-01T10:00+01:00`, shown in that offset), or a civil
/// time with a named zone (`2026-12-01T10:00[Europe/Berlin]`, `2026-12-01 10:00 Europe/Berlin`),
/// which must name one instant: a time skipped or repeated by a daylight-saving change is refused.
pub fn parse_at(text: &str) -> Result<Zoned, PrewarmError> {
    let bad = |detail: String| PrewarmError::BadTime {
        text: text.to_string(),
        detail,
    };
    let trimmed = text.trim();
    // `2026-12-01 10:00 Europe/Berlin`: a civil time, a space, a zone name.
    if let Some((civil, zone)) = trimmed.rsplit_once(' ')
        && (zone.contains('/') || zone == "UTC")
    {
        let datetime: DateTime = civil
            .trim()
            .replacen(' ', "T", 1)
            .parse()
            .map_err(|e: jiff::Error| bad(e.to_string()))?;
        return in_zone(text, datetime, zone);
    }
    let pieces = Pieces::parse(trimmed).map_err(|e| bad(e.to_string()))?;
    let zone = pieces
        .time_zone_annotation()
        .map(|a| a.to_time_zone().map_err(|e| bad(e.to_string())))
        .transpose()?;
    match (pieces.offset(), zone) {
        (None, None) => Err(bad(
            "it names no offset or time zone, so it could mean any instant of that day".to_string(),
        )),
        (None, Some(zone)) => {
            let datetime = pieces.date().to_datetime(pieces.time().unwrap_or_default());
            let name = zone.iana_name().unwrap_or("the zone").to_string();
            in_zone(text, datetime, &name)
        }
        (Some(_), Some(_)) => trimmed.parse::<Zoned>().map_err(|e| bad(e.to_string())),
        (Some(offset), None) => {
            let instant: Timestamp = trimmed
                .parse()
                .map_err(|e: jiff::Error| bad(e.to_string()))?;
            let zone = match offset {
                PiecesOffset::Numeric(n) => TimeZone::fixed(n.offset()),
                _ => TimeZone::UTC,
            };
            Ok(instant.to_zoned(zone))
        }
    }
}

fn in_zone(text: &str, datetime: DateTime, zone: &str) -> Result<Zoned, PrewarmError> {
    let tz = TimeZone::get(zone).map_err(|e| PrewarmError::BadTime {
        text: text.to_string(),
        detail: e.to_string(),
    })?;
    let ambiguous = tz.to_ambiguous_zoned(datetime);
    let (how, choices) = if ambiguous.is_ambiguous() {
        match ambiguous.offset() {
            jiff::tz::AmbiguousOffset::Fold { before, after } => {
                let choices = [before, after]
                    .iter()
                    .filter_map(|o| o.to_timestamp(datetime).ok())
                    .map(|t| t.to_zoned(tz.clone()).to_string())
                    .collect();
                ("twice", choices)
            }
            _ => ("never", Vec::new()),
        }
    } else {
        return ambiguous.unambiguous().map_err(|e| PrewarmError::BadTime {
            text: text.to_string(),
            detail: e.to_string(),
        });
    };
    Err(PrewarmError::AmbiguousTime {
        text: text.to_string(),
        zone: zone.to_string(),
        how,
        choices,
    })
}

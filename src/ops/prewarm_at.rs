//! `--at`: the instant a spike starts, as RFC 3339 or a civil time in a named zone. Reading a
//! zone reads the system's time-zone database, so this is input parsing at the edge, not
//! planning (the planner only ever sees the parsed `Zoned`).

use jiff::civil::DateTime;
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::diagnostic::Diagnose;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AtError {
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
}

impl Diagnose for AtError {
    fn help(&self) -> Option<String> {
        Some(match self {
            AtError::BadTime { .. } => "write RFC 3339 such as `2026-12-01T10:00+01:00`, or a time and a zone such as `2026-12-01T10:00[Europe/Berlin]` or `\"2026-12-01 10:00 Europe/Berlin\"`".to_string(),
            AtError::AmbiguousTime { choices, .. } if !choices.is_empty() => format!(
                "write the one you mean with its offset: {}",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            AtError::AmbiguousTime { .. } => {
                "that wall-clock time is skipped; pick a time before or after the change".to_string()
            }
        })
    }
}

/// `--at`: RFC 3339 with an offset (`2026-12-01T10:00+01:00`, shown in that offset), or a civil
/// time with a named zone (`2026-12-01T10:00[Europe/Berlin]`, `2026-12-01 10:00 Europe/Berlin`),
/// which must name one instant: a time skipped or repeated by a daylight-saving change is refused.
pub fn parse_at(text: &str) -> Result<Zoned, AtError> {
    let bad = |detail: String| AtError::BadTime {
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

fn in_zone(text: &str, datetime: DateTime, zone: &str) -> Result<Zoned, AtError> {
    let tz = TimeZone::get(zone).map_err(|e| AtError::BadTime {
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
        return ambiguous.unambiguous().map_err(|e| AtError::BadTime {
            text: text.to_string(),
            detail: e.to_string(),
        });
    };
    Err(AtError::AmbiguousTime {
        text: text.to_string(),
        zone: zone.to_string(),
        how,
        choices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn at_accepts_rfc3339_and_named_zones() {
        let offset = parse_at("2026-12-01T10:00+01:00").unwrap();
        assert_eq!(offset.timestamp(), ts("2026-12-01T09:00:00Z"));
        assert_eq!(offset.offset().seconds(), 3600, "shown in the offset given");
        let named = parse_at("2026-12-01T10:00[Europe/Berlin]").unwrap();
        assert_eq!(named.timestamp(), ts("2026-12-01T09:00:00Z"));
        let spaced = parse_at("2026-07-01 10:00 Europe/Berlin").unwrap();
        assert_eq!(
            spaced.timestamp(),
            ts("2026-07-01T08:00:00Z"),
            "summer time"
        );
        assert!(matches!(
            parse_at("2026-12-01T10:00"),
            Err(AtError::BadTime { .. })
        ));
        assert!(matches!(parse_at("tomorrow"), Err(AtError::BadTime { .. })));
    }

    #[test]
    fn a_time_repeated_or_skipped_by_daylight_saving_is_refused() {
        let twice = parse_at("2026-10-25 02:30 Europe/Berlin").unwrap_err();
        assert!(matches!(twice, AtError::AmbiguousTime { how: "twice", .. }));
        let never = parse_at("2026-03-29T02:30[Europe/Berlin]").unwrap_err();
        assert!(matches!(never, AtError::AmbiguousTime { how: "never", .. }));
        // With the offset it names one instant.
        let chosen = parse_at("2026-10-25T02:30+01:00[Europe/Berlin]").unwrap();
        assert_eq!(chosen.timestamp(), ts("2026-10-25T01:30:00Z"));
    }
}

//! Durations written the way people write them in YAML: `90s`, `2m`, `1h30m`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration parsed with humantime; printed back in the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(seconds: u64) -> Self {
        Dur(Duration::from_secs(seconds))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Dur(Duration::ZERO));
        }
        humantime::parse_duration(text).map(Dur).map_err(|error| {
            format!("invalid duration `{text}` ({error}); write a number and a unit, such as 90s, 2m or 1h30m")
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Dur::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(Dur::parse("90s").unwrap(), Dur::secs(90));
        assert_eq!(Dur::parse("2m").unwrap(), Dur::secs(120));
        assert_eq!(Dur::parse("1h30m").unwrap(), Dur::secs(5400));
        assert_eq!(Dur::parse("0").unwrap(), Dur::secs(0));
    }

    #[test]
    fn rejects_prose_with_a_hint() {
        let error = Dur::parse("2 minutes please").unwrap_err();
        assert!(error.contains("such as 90s, 2m or 1h30m"), "{error}");
    }

    #[test]
    fn prints_back_in_the_same_form() {
        assert_eq!(Dur::secs(5400).to_string(), "1h 30m");
        assert_eq!(Dur::secs(0).to_string(), "0s");
    }
}

//! Sizes written the way people write them: `1048576`, `"512KiB"`, `"1MiB"`, `"4GiB"`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let invalid = || {
            format!(
                "invalid size `{text}`; write a number of bytes or a number and a unit, such as 512KiB, 1MiB or 4GiB"
            )
        };
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KiB" | "K" | "KB" => 10,
            "MiB" | "M" | "MB" => 20,
            "GiB" | "G" | "GB" => 30,
            "TiB" | "T" | "TB" => 40,
            _ => return Err(invalid()),
        };
        number
            .checked_mul(1 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
        for (shift, unit) in units {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => ByteSize::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bytes_and_binary_units() {
        assert_eq!(ByteSize::parse("1048576").unwrap(), ByteSize(1 << 20));
        assert_eq!(ByteSize::parse("1MiB").unwrap(), ByteSize(1 << 20));
        assert_eq!(ByteSize::parse("4 GiB").unwrap(), ByteSize(4 << 30));
        assert!(
            ByteSize::parse("lots")
                .unwrap_err()
                .contains("such as 512KiB")
        );
        assert!(
            ByteSize::parse("99999999999999TiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(ByteSize(4 << 30).to_string(), "4GiB");
    }
}

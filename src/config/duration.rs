//! Durations in the config file: `"1s"`, `"250ms"`, `"2h 30m"`, or ISO 8601 (`"PT1S"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(de::Error::custom)
}

pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{}ms", value.as_millis()))
}

/// Parses a non-negative duration, with a message that says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text.parse().map_err(|_| {
        format!("invalid duration {text:?} (expected e.g. \"1s\", \"500ms\", \"2h\")")
    })?;
    Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// The same for optional durations.
pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| parse(&t).map_err(de::Error::custom))
            .transpose()
    }

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_friendly_and_iso_forms() {
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2h 30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse("PT1S"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn rejects_garbage_and_negative() {
        assert!(parse("soon").unwrap_err().contains("invalid duration"));
        assert!(parse("-1s").unwrap_err().contains("negative"));
    }
}

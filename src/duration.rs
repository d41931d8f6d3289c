//! Durations as the config and the Layer's settings write them: `"500ms"`, `"12s"`,
//! `"2h 30m"`, `"90d"` or ISO 8601 (`"PT12S"`, `"P90D"`); a day is 24 hours.
//!
//! One parser for every section of the agent's config and for the Layer, so it lives
//! outside both (and outside the `agent` feature).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

/// For `#[serde(with = "crate::duration")]`: reads a duration string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(de::Error::custom)
}

/// Writes a duration in a form [`parse`] reads back (`"1500ms"`).
pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{}ms", value.as_millis()))
}

/// Parses a non-negative duration (`"500ms"`, `"90d"`, `"PT5S"`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. \"500ms\", \"12s\", \"90d\")");
    let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
    if span.is_negative() {
        return Err(format!("duration {text:?} must not be negative"));
    }
    let nanos = span
        .total((
            jiff::Unit::Nanosecond,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .map_err(|_| bad())?;
    Ok(Duration::from_nanos(nanos as u64))
}

/// The same for optional durations (`#[serde(with = "crate::duration::option")]`).
pub mod option {
    use super::*;

    /// Reads an optional duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| parse(&t).map_err(de::Error::custom))
            .transpose()
    }

    /// Writes an optional duration (nothing when unset).
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
        assert_eq!(parse("PT12S"), Ok(Duration::from_secs(12)));
        assert_eq!(parse("90d"), Ok(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn rejects_garbage_and_negative() {
        assert!(parse("soon").unwrap_err().contains("invalid duration"));
        assert!(parse("-1s").unwrap_err().contains("negative"));
    }
}

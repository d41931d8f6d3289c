//! Durations in the config file: `"1s"`, `"250ms"`, `"2h 30m"`, `"90d"`, or ISO 8601 (`"PT1S"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(de::Error::custom)
}

pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{}ms", value.as_millis()))
}

/// Parses a non-negative duration (`"500ms"`, `"90d"`, `"PT5S"`): the sink's parser, so
/// every section of the config reads durations alike.
pub fn parse(text: &str) -> Result<Duration, String> {
    crate::sink::config::duration::parse(text)
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
        assert_eq!(parse("90d"), Ok(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn rejects_garbage_and_negative() {
        assert!(parse("soon").unwrap_err().contains("invalid duration"));
        assert!(parse("-1s").unwrap_err().contains("negative"));
    }
}

//! PostgreSQL's `jsonlog` (15+): one JSON object per line.
//!
//! Keys are renamed to the stderr field names where they overlap (`dbname` → `database`,
//! `state_code` → `sql_state`, `ps` → `command_tag`, ...); `func_name`, `file_name` and
//! `file_line_num` become `location` as stderr's `LOCATION:` line prints it. Keys this
//! parser does not know are kept under their own name. Numbers become their decimal text.

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::fields::{self, ZonedParse};
use super::severity;
use super::timestamp;
use crate::{Level, ParseError, Parsed, Parser, Record, RecordContext};

/// Parser for `jsonlog` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

impl JsonParser {
    /// The jsonlog parser (it has no options: the keys are fixed by PostgreSQL).
    pub fn new() -> Self {
        JsonParser
    }

    fn parse_entry<'a>(&self, entry: &'a [u8]) -> ZonedParse<'a> {
        let pairs: Pairs<'a> = match std::str::from_utf8(entry) {
            Ok(s) => object(s)?,
            // Invalid UTF-8 (a server with a non-UTF-8 encoding): replace, then own.
            Err(_) => object(&String::from_utf8_lossy(entry))?
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
        };
        build(pairs)
    }
}

impl Parser for JsonParser {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        fields::strict(self.parse_entry(entry))
    }

    fn record(&self, entry: &[u8], ctx: &RecordContext, read_time: Timestamp) -> Record {
        let entry = crate::record::strip_cr(entry);
        fields::lenient(self.parse_entry(entry), entry, ctx, read_time)
    }

    fn name(&self) -> &'static str {
        "postgres-json"
    }
}

fn object(s: &str) -> Result<Pairs<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_str(s);
    let pairs = de
        .deserialize_map(ObjectVisitor)
        .and_then(|pairs| de.end().map(|()| pairs))
        .map_err(|e| ParseError::new(format!("jsonlog: {e}")))?;
    Ok(pairs)
}

fn build(pairs: Pairs<'_>) -> ZonedParse<'_> {
    let mut time = None;
    let mut message = Cow::Borrowed("");
    let mut level = Level::Info;
    let (mut func, mut file, mut line) = (None, None, None);
    let mut parsed = Parsed::new(None, Level::Info, Cow::Borrowed(""));
    for (key, value) in pairs {
        let renamed = match key.as_ref() {
            "timestamp" => {
                time = Some(value);
                continue;
            }
            "message" => {
                message = value;
                continue;
            }
            "func_name" => {
                func = Some(value);
                continue;
            }
            "file_name" => {
                file = Some(value);
                continue;
            }
            "file_line_num" => {
                line = Some(value);
                continue;
            }
            "session_start" => {
                fields::push_session_start(&mut parsed, value);
                continue;
            }
            "error_severity" => {
                // A translated severity (lc_messages) stays in `severity`, level INFO.
                level = severity::level(&value).unwrap_or(Level::Info);
                "severity"
            }
            "user" => "user",
            "dbname" => "database",
            "pid" => "pid",
            "remote_host" => "remote_host",
            "remote_port" => "remote_port",
            "session_id" => "session_id",
            "line_num" => "line_num",
            "ps" => "command_tag",
            "vxid" => "virtual_xid",
            "txid" => "xid",
            "state_code" => "sql_state",
            "detail" => "detail",
            "hint" => "hint",
            "internal_query" => "query",
            "internal_position" => "query_pos",
            "context" => "context",
            "statement" => "statement",
            "cursor_position" => "statement_pos",
            "application_name" => "application_name",
            "backend_type" => "backend_type",
            "leader_pid" => "leader_pid",
            "query_id" => "query_id",
            _ => {
                if !value.is_empty() {
                    parsed.push(key, value);
                }
                continue;
            }
        };
        fields::push_text(&mut parsed, renamed, value);
    }
    if let Some(file) = file {
        let line = line.as_deref().unwrap_or("0");
        let location = match func {
            Some(func) => format!("{func}, {file}:{line}"),
            None => format!("{file}:{line}"),
        };
        parsed.push("location", location);
    }
    let time = time.ok_or_else(|| ParseError::new("jsonlog: no timestamp"))?;
    let local = timestamp::parse_exact(time.as_bytes())
        .ok_or_else(|| ParseError::new("jsonlog: timestamp is not a PostgreSQL timestamp"))?;
    let zone_error = match local.resolve() {
        Ok(ts) => {
            parsed.timestamp = Some(ts);
            None
        }
        Err(e) => Some(e),
    };
    parsed.level = level;
    parsed.message = message;
    fields::push_duration(&mut parsed);
    Ok((parsed, zone_error))
}

/// Reads a JSON object's scalar members, borrowing strings that need no unescaping. Nested
/// values and nulls are skipped.
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Pairs<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(24);
        while let Some(Text(key)) = map.next_key()? {
            if let Scalar(Some(value)) = map.next_value()? {
                pairs.push((key, value));
            }
        }
        Ok(pairs)
    }
}

struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct Scalar<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor).map(Scalar)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(if v { "true" } else { "false" })))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERROR_LINE: &str = r#"{"timestamp":"2024-01-05 10:00:00.123 CET","user":"bob","dbname":"shop","pid":4242,"remote_host":"10.0.0.9","remote_port":51762,"session_id":"659e1f20.1092","line_num":3,"ps":"SELECT","session_start":"2024-01-05 09:59:58 CET","vxid":"3/17","txid":0,"error_severity":"ERROR","state_code":"42P01","message":"relation \"nope\" does not exist","statement":"select * from nope;","cursor_position":15,"func_name":"parserOpenTable","file_name":"parse_relation.c","file_line_num":1392,"application_name":"psql","backend_type":"client backend","query_id":-6829120513472521346}"#;

    #[test]
    fn error_entry() {
        let parsed = JsonParser.parse(ERROR_LINE.as_bytes()).unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2024-01-05T09:00:00.123Z".parse().unwrap())
        );
        assert_eq!(parsed.level, Level::Error);
        assert_eq!(parsed.message, "relation \"nope\" does not exist");
        for (key, value) in [
            ("user", "bob"),
            ("database", "shop"),
            ("pid", "4242"),
            ("remote_host", "10.0.0.9"),
            ("remote_port", "51762"),
            ("session_id", "659e1f20.1092"),
            ("line_num", "3"),
            ("command_tag", "SELECT"),
            ("session_start", "2024-01-05T08:59:58Z"),
            ("virtual_xid", "3/17"),
            ("xid", "0"),
            ("severity", "ERROR"),
            ("sql_state", "42P01"),
            ("statement", "select * from nope;"),
            ("statement_pos", "15"),
            ("location", "parserOpenTable, parse_relation.c:1392"),
            ("application_name", "psql"),
            ("backend_type", "client backend"),
            ("query_id", "-6829120513472521346"),
        ] {
            assert_eq!(parsed.field(key), Some(value), "{key}");
        }
    }

    #[test]
    fn background_entry_and_unknown_keys() {
        let line = br#"{"timestamp":"2024-01-05 10:00:00.000 UTC","pid":12,"session_id":"a.c","line_num":1,"session_start":"2024-01-05 09:00:00 UTC","txid":0,"error_severity":"LOG","message":"checkpoint starting: time","backend_type":"checkpointer","future_key":"kept","nested":{"a":[1,2]},"none":null}"#;
        let parsed = JsonParser.parse(line).unwrap();
        assert_eq!(parsed.level, Level::Info);
        assert_eq!(parsed.field("future_key"), Some("kept"));
        assert_eq!(parsed.field("nested"), None);
        assert_eq!(parsed.field("user"), None);
        assert!(matches!(parsed.message, Cow::Borrowed(_)));
    }

    #[test]
    fn malformed_and_lossy() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"{\"message\":\"no time\"}",
            b"{\"timestamp\":\"yesterday\"}",
            b"{\"timestamp\":\"2024-01-05 10:00:00 UTC\"} trailing",
        ] {
            assert!(
                JsonParser.parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let line = b"{\"timestamp\":\"2024-01-05 10:00:00.000 UTC\",\"error_severity\":\"LOG\",\"message\":\"caf\xff\"}\r";
        let parsed = JsonParser.parse(line).unwrap();
        assert_eq!(parsed.message, "caf\u{fffd}");
    }
}

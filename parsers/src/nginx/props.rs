//! Property tests: lines rendered through a log_format the way nginx writes them parse
//! back to the values rendered; no bytes or format string make the parser panic.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use proptest::prelude::*;

use super::{AccessParser, COMBINED, escape_default};
use crate::{Level, Parser};

const WITH_TIMINGS: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_response_time "$http_x_request_id""#;
const ISO: &str =
    r#"${time_iso8601} $remote_addr "$request" $status "$http_user_agent" rt=$request_time"#;

/// Values for every variable the test formats use, as nginx would hold them.
#[derive(Debug, Clone)]
struct Values {
    time: Timestamp,
    offset_minutes: i32,
    vars: BTreeMap<&'static str, String>,
    request_parts: (String, String, String),
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
        any::<[u16; 8]>().prop_map(|w| std::net::Ipv6Addr::from(w).to_string()),
        Just("unix:".to_owned()),
    ]
}

/// Free text as found in user agents and referers: anything printable, quotes and
/// backslashes included, sometimes nginx's `-` or empty.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,40}",
        1 => Just("-".to_owned()),
        1 => Just(String::new()),
    ]
}

fn seconds() -> impl Strategy<Value = String> {
    (0u32..100, 0u32..1000).prop_map(|(s, ms)| format!("{s}.{ms:03}"))
}

fn values() -> impl Strategy<Value = Values> {
    (
        (0i64..4_102_444_800, -1439i32..=1439),
        (
            ip(),
            prop_oneof![Just("-".to_owned()), "[a-z][a-z0-9._]{0,11}"],
        ),
        (
            "[A-Z]{3,8}",
            "/\\PC{0,40}",
            prop_oneof![Just("HTTP/1.0"), Just("HTTP/1.1"), Just("HTTP/2.0")],
        ),
        (100u16..600, any::<u32>(), text(), text()),
        (
            seconds(),
            prop_oneof![
                Just("-".to_owned()),
                seconds(),
                (seconds(), seconds()).prop_map(|(a, b)| format!("{a}, {b}")),
            ],
            "[0-9a-f]{32}",
        ),
    )
        .prop_map(
            |(
                (secs, offset_minutes),
                (addr, user),
                (method, path, protocol),
                (status, bytes, referer, agent),
                (request_time, upstream, request_id),
            )| {
                let request = format!("{method} {path} {protocol}");
                let vars = BTreeMap::from([
                    ("remote_addr", addr),
                    ("remote_user", user),
                    ("request", request),
                    ("status", status.to_string()),
                    ("body_bytes_sent", bytes.to_string()),
                    ("http_referer", referer),
                    ("http_user_agent", agent),
                    ("request_time", request_time),
                    ("upstream_response_time", upstream),
                    ("http_x_request_id", request_id),
                ]);
                Values {
                    time: Timestamp::from_second(secs).unwrap(),
                    offset_minutes,
                    vars,
                    request_parts: (method, path, protocol.to_owned()),
                }
            },
        )
}

impl Values {
    fn zone(&self) -> TimeZone {
        TimeZone::fixed(Offset::from_seconds(self.offset_minutes * 60).unwrap())
    }

    /// What nginx holds in `name`, before escaping.
    fn raw(&self, name: &str) -> String {
        let zoned = self.time.to_zoned(self.zone());
        match name {
            "time_local" => zoned.strftime("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "time_iso8601" => zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            _ => self.vars[name].clone(),
        }
    }

    /// Renders a line through `format` as nginx does with `escape=default`.
    fn render(&self, format: &str) -> String {
        let mut line = String::new();
        let mut rest = format;
        while let Some(dollar) = rest.find('$') {
            line.push_str(&rest[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, next) = match after.strip_prefix('{') {
                Some(braced) => {
                    let end = braced.find('}').unwrap();
                    (&braced[..end], &braced[end + 1..])
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            line.push_str(&escape_default(self.raw(name).as_bytes()));
            rest = next;
        }
        line.push_str(rest);
        line
    }

    /// The fields the parser must give for `format`: every variable but those nginx wrote
    /// as `-`, plus the request's parts.
    fn expected_fields(&self, format: &str) -> BTreeMap<String, String> {
        let parser = super::log_format::LogFormat::compile(format).unwrap();
        let mut fields = BTreeMap::new();
        for slot in &parser.slots {
            let value = self.raw(&slot.name);
            if value != "-" {
                fields.insert(slot.name.to_string(), value);
            }
            if &*slot.name == "request" {
                let (method, path, protocol) = &self.request_parts;
                fields.insert("method".into(), method.clone());
                fields.insert("path".into(), path.clone());
                fields.insert("protocol".into(), protocol.clone());
            }
        }
        fields
    }
}

fn round_trip(format: &str, values: &Values) -> Result<(), TestCaseError> {
    let parser = AccessParser::new(format).unwrap();
    let line = values.render(format);
    let parsed = parser
        .parse(line.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
    let fields: BTreeMap<String, String> = parsed
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    prop_assert_eq!(fields, values.expected_fields(format), "{}", line);
    prop_assert_eq!(parsed.timestamp, Some(values.time));
    prop_assert_eq!(&parsed.message, &line);
    let status: u16 = values.vars["status"].parse().unwrap();
    let level = match status {
        500..=599 => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    };
    prop_assert_eq!(parsed.level, level);
    Ok(())
}

proptest! {
    #[test]
    fn combined_round_trips(values in values()) {
        round_trip(COMBINED, &values)?;
    }

    #[test]
    fn timings_format_round_trips(values in values()) {
        round_trip(WITH_TIMINGS, &values)?;
    }

    #[test]
    fn iso8601_format_round_trips(values in values()) {
        round_trip(ISO, &values)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for format in [COMBINED, WITH_TIMINGS, ISO] {
            let _ = AccessParser::new(format).unwrap().parse(&bytes);
        }
    }

    /// Bytes spliced into a real line reach deeper than random bytes do.
    #[test]
    fn damaged_lines_never_panic(
        values in values(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..20,
        noise in proptest::collection::vec(any::<u8>(), 0..12),
    ) {
        let mut line = values.render(COMBINED).into_bytes();
        let at = at.index(line.len() + 1);
        let end = (at + cut).min(line.len());
        line.splice(at..end, noise);
        let _ = AccessParser::new(COMBINED).unwrap().parse(&line);
    }

    #[test]
    fn random_log_formats_never_panic(
        format in "(\\$\\{?[a-z_]{0,6}\\}?|[ \\[\\]\"-]{0,3}|\\PC{0,3}){0,8}",
        line in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        if let Ok(parser) = AccessParser::new(&format) {
            let _ = parser.parse(&line);
        }
    }
}

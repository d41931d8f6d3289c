//! The nginx access log parser, compiled from a `log_format`.

use std::borrow::Cow;

use jiff::Timestamp;

use super::escape::unescape;
use super::log_format::{LogFormat, Role};
use super::timestamp;
use crate::record::EntryText;
use crate::{Level, ParseError, Parsed, Parser, SpecError};

/// Parses access log lines written with one `log_format`.
///
/// - **Fields** are named for the variables without `$`. A value nginx wrote as `-` (the
///   variable was empty or unset) is left out, so `remote_user`, `http_referer` and
///   friends appear only when they say something; an empty quoted value (`""`) is kept as
///   an empty string. `\xHH` escapes are decoded (see [`escape`](super::escape)).
/// - **`request`** is also split into `method`, `path` (the request target, query
///   included) and `protocol` when it has the shape `METHOD target[ HTTP/x]`; empty, `-`
///   or binary requests (TLS handshakes on a plain port) stay whole in `request` only.
/// - **Timestamp** from `$msec` (most precise), else `$time_iso8601`, else `$time_local`;
///   none of them in the format leaves it to the read time. A time value that does not
///   parse makes the line a parse error: the format does not match the file.
/// - **Level** from `$status`: 5xx → ERROR, 4xx → WARN, anything else INFO.
/// - **Message** is the whole line as nginx wrote it: nothing the format does not name is
///   lost (some setups append fields after `combined`), and it reads as in `tail`.
///
/// Bytes after the last literal of the format are accepted when they start with a space
/// (fields appended to a known format); they remain in the message only.
///
/// A line with more in front of the format than it describes (a `$host` before
/// `combined`, a forwarded-for address list before `$remote_addr`) is a parse error, not a
/// line with shifted fields: variables nginx writes as one word (addresses, ports, sizes,
/// times, `$host`) must not hold a space. Such files need a `log_format` that names what is
/// in front, e.g. `$host $remote_addr - $remote_user ...` (see docs/parsers.md).
#[derive(Debug, Clone)]
pub struct AccessParser {
    format: LogFormat,
    /// Fields a typical line yields, to size the field list once.
    capacity: usize,
}

impl AccessParser {
    /// Compiles `log_format` (the string after the format name in nginx's configuration,
    /// with nginx's string quoting already removed). See [`super::COMBINED`].
    pub fn new(log_format: &str) -> Result<Self, SpecError> {
        let format = LogFormat::compile(log_format)?;
        let requests = format
            .slots
            .iter()
            .filter(|s| s.role == Role::Request)
            .count();
        let capacity = format.slots.len() + 3 * requests;
        Ok(AccessParser { format, capacity })
    }
}

/// Time variables in order of preference.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimeRank {
    None,
    Local,
    Iso8601,
    Msec,
}

impl Parser for AccessParser {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        let format = &self.format;
        let line = Line::new(entry);
        // Most formats start with a variable: no lead, and no call to `memcmp` (measured at
        // 14 % of the full path to a record for `combined`, length 0 or not).
        let mut rest = if format.lead.is_empty() {
            entry
        } else {
            entry
                .strip_prefix(&*format.lead)
                .ok_or_else(|| ParseError::new("line does not start as the log_format does"))?
        };
        let mut parsed = Parsed {
            timestamp: None,
            level: Level::Info,
            message: line.text.of(entry),
            fields: crate::record::ParsedFields::with_capacity(self.capacity),
        };
        let mut time_rank = TimeRank::None;
        for slot in &format.slots {
            let value = match &slot.delimiter {
                None => std::mem::take(&mut rest),
                Some(literal) => {
                    let Some(at) = literal.find(rest) else {
                        return Err(missing(&slot.name, literal.bytes()));
                    };
                    let (value, after) = rest.split_at(at);
                    rest = after.get(literal.bytes().len()..).unwrap_or_default();
                    value
                }
            };
            if value == b"-" {
                continue;
            }
            match slot.role {
                Role::Plain => {}
                Role::Word => {
                    if memchr::memchr2(b' ', b'\t', value).is_some() {
                        return Err(ParseError::new(format!(
                            "${} has a space in it: {:?}; the log_format does not describe \
                             this line (text in front of the format, such as a $host?)",
                            slot.name,
                            crate::record::text(truncated(value))
                        )));
                    }
                }
                Role::Status => parsed.level = level_of_status(value, &slot.name)?,
                Role::Request => {
                    parsed.push(Cow::Borrowed(&*slot.name), line.value(value));
                    push_request_parts(&mut parsed, &line, value);
                    continue;
                }
                Role::TimeLocal | Role::TimeIso8601 | Role::Msec => {
                    let (rank, ts) = match slot.role {
                        Role::TimeLocal => (TimeRank::Local, timestamp::time_local(value)),
                        Role::TimeIso8601 => (TimeRank::Iso8601, timestamp::time_iso8601(value)),
                        _ => (TimeRank::Msec, timestamp::msec(value)),
                    };
                    let ts: Timestamp = ts.ok_or_else(|| {
                        ParseError::new(format!(
                            "${} is not a time: {:?}",
                            slot.name,
                            crate::record::text(truncated(value))
                        ))
                    })?;
                    if rank > time_rank {
                        time_rank = rank;
                        parsed.timestamp = Some(ts);
                    }
                }
            }
            parsed.push(Cow::Borrowed(&*slot.name), line.value(value));
        }
        if !rest.is_empty() && !rest.starts_with(b" ") {
            return Err(ParseError::new(
                "unexpected text after the end of the log_format",
            ));
        }
        Ok(parsed)
    }

    fn name(&self) -> &'static str {
        "nginx"
    }
}

/// The line being parsed: UTF-8 checked once for the whole line ([`EntryText`]), and
/// whether it has any escape to undo.
struct Line<'a> {
    text: EntryText<'a>,
    has_escapes: bool,
}

impl<'a> Line<'a> {
    fn new(bytes: &'a [u8]) -> Line<'a> {
        Line {
            text: EntryText::new(bytes),
            has_escapes: memchr::memchr(b'\\', bytes).is_some(),
        }
    }

    /// A value with nginx's escapes undone.
    #[inline]
    fn value(&self, part: &'a [u8]) -> Cow<'a, str> {
        if self.has_escapes && memchr::memchr(b'\\', part).is_some() {
            unescape(part)
        } else {
            self.text.of(part)
        }
    }
}

fn missing(variable: &str, literal: &[u8]) -> ParseError {
    ParseError::new(format!(
        "no {:?} after ${variable}",
        String::from_utf8_lossy(literal)
    ))
}

fn truncated(value: &[u8]) -> &[u8] {
    value.get(..40).unwrap_or(value)
}

fn level_of_status(value: &[u8], name: &str) -> Result<Level, ParseError> {
    match *value {
        [b'5', b'0'..=b'9', b'0'..=b'9'] => Ok(Level::Error),
        [b'4', b'0'..=b'9', b'0'..=b'9'] => Ok(Level::Warn),
        [b'0'..=b'9', b'0'..=b'9', b'0'..=b'9'] => Ok(Level::Info),
        _ => Err(ParseError::new(format!(
            "${name} is not a 3-digit status: {:?}",
            crate::record::text(truncated(value))
        ))),
    }
}

/// Adds `method`, `path`, `protocol` when the request is `METHOD target[ HTTP/x.y]`.
/// Spaces are never escaped by nginx, so the raw value splits like the decoded one.
fn push_request_parts<'a>(parsed: &mut Parsed<'a>, line: &Line<'a>, request: &'a [u8]) {
    let Some(space) = memchr::memchr(b' ', request) else {
        return;
    };
    let (method, after) = (&request[..space], &request[space + 1..]);
    if method.is_empty()
        || !method
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'_' || *b == b'-')
    {
        return;
    }
    let (target, protocol) = match memchr::memrchr(b' ', after) {
        Some(last) if after[last + 1..].starts_with(b"HTTP/") => {
            (&after[..last], Some(&after[last + 1..]))
        }
        Some(_) => return,
        None => (after, None),
    };
    if target.is_empty() {
        return;
    }
    parsed.push("method", line.text.of(method));
    parsed.push("path", line.value(target));
    if let Some(protocol) = protocol {
        parsed.push("protocol", line.value(protocol));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nginx::COMBINED;

    fn parse(format: &str, line: &str) -> Result<Vec<(String, String)>, ParseError> {
        let parser = AccessParser::new(format).unwrap();
        let parsed = parser.parse(line.as_bytes())?;
        Ok(parsed
            .fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    fn get<'f>(fields: &'f [(String, String)], key: &str) -> Option<&'f str> {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    const LINE: &str = r#"203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 404 2326 "-" "curl/8.0""#;

    #[test]
    fn combined_line_gives_fields_time_level_and_whole_line_message() {
        let parser = AccessParser::new(COMBINED).unwrap();
        let parsed = parser.parse(LINE.as_bytes()).unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2000-10-10T20:55:36Z".parse().unwrap())
        );
        assert_eq!(parsed.level, Level::Warn);
        assert_eq!(parsed.message, LINE);
        assert!(matches!(parsed.message, Cow::Borrowed(_)));
        let fields: Vec<(&str, &str)> = parsed
            .fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(
            fields,
            [
                ("remote_addr", "203.0.113.9"),
                ("remote_user", "alice"),
                ("time_local", "10/Oct/2000:13:55:36 -0700"),
                ("request", "GET /a?b=1 HTTP/1.1"),
                ("method", "GET"),
                ("path", "/a?b=1"),
                ("protocol", "HTTP/1.1"),
                ("status", "404"),
                ("body_bytes_sent", "2326"),
                ("http_user_agent", "curl/8.0"),
            ]
        );
        assert!(
            parsed
                .fields
                .iter()
                .all(|(k, v)| matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))))
        );
    }

    #[test]
    fn status_sets_level() {
        for (status, level) in [
            ("200", Level::Info),
            ("304", Level::Info),
            ("499", Level::Warn),
            ("503", Level::Error),
        ] {
            let line = format!(
                r#"::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" {status} 0 "-" "-""#
            );
            let parsed = AccessParser::new(COMBINED)
                .unwrap()
                .parse(line.as_bytes())
                .map(|p| p.level);
            assert_eq!(parsed, Ok(level), "{status}");
        }
    }

    #[test]
    fn ipv6_client_and_escaped_quote_in_the_request() {
        let line = r#"2001:db8::1 - - [10/Oct/2000:13:55:36 +0000] "GET /q=\x22x\x22 HTTP/1.1" 200 5 "-" "UA \x22quoted\x22""#;
        let fields = parse(COMBINED, line).unwrap();
        assert_eq!(get(&fields, "remote_addr"), Some("2001:db8::1"));
        assert_eq!(get(&fields, "request"), Some(r#"GET /q="x" HTTP/1.1"#));
        assert_eq!(get(&fields, "path"), Some(r#"/q="x""#));
        assert_eq!(get(&fields, "http_user_agent"), Some(r#"UA "quoted""#));
    }

    #[test]
    fn dash_values_are_left_out_but_an_empty_request_is_kept() {
        let line = r#"127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-""#;
        let fields = parse(COMBINED, line).unwrap();
        assert_eq!(get(&fields, "request"), Some(""));
        assert_eq!(get(&fields, "method"), None);
        assert_eq!(get(&fields, "remote_user"), None);
        assert_eq!(get(&fields, "http_referer"), None);
        assert_eq!(get(&fields, "http_user_agent"), None);

        let line = r#"10.112.81.15 - - [15/Feb/2013:06:00:31 +0000] "-" 400 0 "-" "-""#;
        let fields = parse(COMBINED, line).unwrap();
        assert_eq!(get(&fields, "request"), None);
        assert_eq!(get(&fields, "status"), Some("400"));
    }

    #[test]
    fn binary_request_stays_whole_and_escaped() {
        let line = r#"192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-""#;
        let fields = parse(COMBINED, line).unwrap();
        assert_eq!(
            get(&fields, "request"),
            Some(r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03")
        );
        assert_eq!(get(&fields, "method"), None);
    }

    #[test]
    fn request_shapes() {
        let split = |request: &str| {
            let line = format!(r#"h - - [10/Oct/2000:13:55:36 +0000] "{request}" 200 1 "-" "-""#);
            let fields = parse(COMBINED, &line).unwrap();
            (
                get(&fields, "method").map(str::to_owned),
                get(&fields, "path").map(str::to_owned),
                get(&fields, "protocol").map(str::to_owned),
            )
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(split("GET /"), (some("GET"), some("/"), None));
        assert_eq!(
            split("PROPFIND /dav HTTP/2.0"),
            (some("PROPFIND"), some("/dav"), some("HTTP/2.0"))
        );
        assert_eq!(
            split("GET /a b HTTP/1.1"),
            (some("GET"), some("/a b"), some("HTTP/1.1"))
        );
        assert_eq!(split("hello"), (None, None, None));
        assert_eq!(split("get / HTTP/1.1"), (None, None, None));
        assert_eq!(split("GET /a b c"), (None, None, None));
    }

    #[test]
    fn iso8601_msec_and_a_format_without_time() {
        let format = "$msec $time_iso8601 $remote_addr $request_time";
        let parser = AccessParser::new(format).unwrap();
        let parsed = parser
            .parse(b"971211336.123 2000-10-10T13:55:36-07:00 ::1 0.004")
            .unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2000-10-10T20:55:36.123Z".parse().unwrap())
        );
        assert_eq!(parsed.field("request_time"), Some("0.004"));

        let parser = AccessParser::new("$time_iso8601 $remote_addr").unwrap();
        let parsed = parser.parse(b"2000-10-10T13:55:36-07:00 ::1").unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2000-10-10T20:55:36Z".parse().unwrap())
        );

        let parser = AccessParser::new("$remote_addr $status").unwrap();
        let parsed = parser.parse(b"::1 200").unwrap();
        assert_eq!(parsed.timestamp, None);
    }

    #[test]
    fn lines_that_do_not_match_are_errors() {
        let p = AccessParser::new(COMBINED).unwrap();
        let err = p.parse(b"just some text").unwrap_err();
        assert_eq!(err.reason, r#"no " - " after $remote_addr"#);
        let err = p
            .parse(br#"h - - [10/Oct/2000:13:55:36] "GET / HTTP/1.1" 200 1 "-" "-""#)
            .unwrap_err();
        assert!(err.reason.starts_with("$time_local is not a time"), "{err}");
        let err = p
            .parse(br#"h - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" OK 1 "-" "-""#)
            .unwrap_err();
        assert!(err.reason.contains("3-digit status"), "{err}");
        let err = p
            .parse(br#"h - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-"x"#)
            .unwrap_err();
        assert!(err.reason.contains("after the end"), "{err}");
        let p = AccessParser::new("[$time_local] $status").unwrap();
        assert!(p.parse(b"10/Oct/2000:13:55:36 +0000] 200").is_err());
    }

    #[test]
    fn text_in_front_of_the_format_is_an_error_not_shifted_fields() {
        let p = AccessParser::new(COMBINED).unwrap();
        let vhost = format!("lessons.example.com {LINE}");
        let err = p.parse(vhost.as_bytes()).unwrap_err();
        assert!(
            err.reason.starts_with(
                r#"$remote_addr has a space in it: "lessons.example.com 203.0.113.9""#
            ),
            "{err}"
        );
        let list =
            r#"10.0.0.2, 10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#;
        assert!(p.parse(list.as_bytes()).is_err());

        let vhost_combined = format!("$host {COMBINED}");
        let vhost_parser = AccessParser::new(&vhost_combined).unwrap();
        let parsed = vhost_parser.parse(vhost.as_bytes()).unwrap();
        assert_eq!(parsed.field("host"), Some("lessons.example.com"));
        assert_eq!(parsed.field("remote_addr"), Some("203.0.113.9"));
        // Free-text variables keep their spaces.
        let p = AccessParser::new(r#"$remote_addr "$http_x_forwarded_for""#).unwrap();
        let parsed = p.parse(br#"::1 "10.0.0.2, 10.0.0.1""#).unwrap();
        assert_eq!(
            parsed.field("http_x_forwarded_for"),
            Some("10.0.0.2, 10.0.0.1")
        );
    }

    #[test]
    fn appended_fields_after_the_format_are_tolerated() {
        let line = format!(r#"{LINE} "-" 0.001"#);
        let fields = parse(COMBINED, &line).unwrap();
        assert_eq!(get(&fields, "http_user_agent"), Some("curl/8.0"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let mut line = LINE.as_bytes().to_vec();
        let ua = line.len() - 2;
        line[ua] = 0xFF;
        let parser = AccessParser::new(COMBINED).unwrap();
        let parsed = parser.parse(&line).unwrap();
        assert_eq!(parsed.field("http_user_agent"), Some("curl/8.\u{FFFD}"));
    }
}

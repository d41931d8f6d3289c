//! nginx error logs: `2016/10/25 14:49:34 [error] 54053#0: *1 message, client: .., server: ..`.

use std::borrow::Cow;

use jiff::tz::TimeZone;
use memchr::memmem;

use crate::nginx::timestamp::{Civil, digits};
use crate::{Level, ParseError, Parsed, Parser};

/// Parses nginx error log entries; their times carry no zone, so they are read in `tz`.
///
/// Fields: `pid`, `tid`, `connection` (the `*N` connection number, when present), and the
/// pairs nginx appends to messages about a request: `client`, `server`, `request`,
/// `subrequest`, `upstream`, `host`, `referrer` (also `login` from the mail module),
/// quotes removed. The message is the text between the header and those pairs; when the
/// pairs cannot be told apart unambiguously they stay in the message.
///
/// An entry may span lines (FastCGI stderr output, for one): a line that does not start
/// with a `YYYY/MM/DD hh:mm:ss [` header continues the entry before it.
#[derive(Debug, Clone)]
pub struct ErrorParser {
    tz: TimeZone,
    pairs_start: memmem::FinderRev<'static>,
}

impl ErrorParser {
    /// A parser reading the (zoneless) times in `tz`.
    pub fn new(tz: TimeZone) -> Self {
        ErrorParser {
            tz,
            pairs_start: memmem::FinderRev::new(b", client: ").into_owned(),
        }
    }
}

/// Keys nginx appends after the message, in the order it writes them.
const PAIR_KEYS: [&str; 8] = [
    "client",
    "server",
    "login",
    "request",
    "subrequest",
    "upstream",
    "host",
    "referrer",
];

const HEADER_LEN: usize = 19;

impl Parser for ErrorParser {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        let (stamp, rest) = entry
            .split_at_checked(HEADER_LEN)
            .ok_or_else(|| ParseError::new("too short for an nginx error log entry"))?;
        let timestamp = self
            .timestamp(stamp)
            .ok_or_else(|| ParseError::new("no YYYY/MM/DD hh:mm:ss time at the start"))?;
        let rest = rest
            .strip_prefix(b" [")
            .ok_or_else(|| ParseError::new("no [level] after the time"))?;
        let close = memchr::memchr(b']', rest)
            .filter(|&at| at <= 6)
            .ok_or_else(|| ParseError::new("no [level] after the time"))?;
        let level =
            level_of(&rest[..close]).ok_or_else(|| ParseError::new("unknown nginx error level"))?;
        let rest = rest.get(close + 1..).unwrap_or_default();
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);

        let mut parsed = Parsed::new(Some(timestamp), level, Cow::Borrowed(""));
        parsed.fields.reserve(5);
        let rest = match process_ids(rest) {
            Some((pid, tid, after)) => {
                parsed.push("pid", crate::record::text(pid));
                parsed.push("tid", crate::record::text(tid));
                after
            }
            None => rest,
        };
        let rest = match connection(rest) {
            Some((id, after)) => {
                parsed.push("connection", crate::record::text(id));
                after
            }
            None => rest,
        };
        let message = match self.pairs_start.rfind(rest) {
            Some(at) => match pairs(&rest[at + 2..]) {
                Some(pairs) => {
                    for (key, value) in pairs.iter().flatten() {
                        parsed.push(*key, crate::record::text(value));
                    }
                    &rest[..at]
                }
                None => rest,
            },
            None => rest,
        };
        parsed.message = crate::record::text(message);
        Ok(parsed)
    }

    fn continues(&self, _pending: &[u8], line: &[u8]) -> bool {
        !starts_with_header(line)
    }

    fn is_multiline(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "nginx-error"
    }
}

impl ErrorParser {
    fn timestamp(&self, stamp: &[u8]) -> Option<jiff::Timestamp> {
        let [
            y1,
            y2,
            y3,
            y4,
            b'/',
            m1,
            m2,
            b'/',
            d1,
            d2,
            b' ',
            h1,
            h2,
            b':',
            n1,
            n2,
            b':',
            s1,
            s2,
        ] = *stamp
        else {
            return None;
        };
        let civil = Civil {
            year: digits(&[y1, y2, y3, y4])?,
            month: digits(&[m1, m2])?,
            day: digits(&[d1, d2])?,
            hour: digits(&[h1, h2])?,
            minute: digits(&[n1, n2])?,
            second: digits(&[s1, s2])?,
        };
        // Validates the date (and keeps a leap second) the same way the access log does.
        civil.to_timestamp(0, 0)?;
        let datetime = jiff::civil::DateTime::new(
            i16::try_from(civil.year).ok()?,
            i8::try_from(civil.month).ok()?,
            i8::try_from(civil.day).ok()?,
            i8::try_from(civil.hour).ok()?,
            i8::try_from(civil.minute).ok()?,
            i8::try_from(civil.second.min(59)).ok()?,
            0,
        )
        .ok()?;
        // A wall time repeated or skipped at a DST change takes the earlier reading, as
        // most tools do.
        self.tz.to_ambiguous_timestamp(datetime).compatible().ok()
    }
}

/// Whether `line` starts with `YYYY/MM/DD hh:mm:ss [`.
fn starts_with_header(line: &[u8]) -> bool {
    const SHAPE: &[u8; 21] = b"0000/00/00 00:00:00 [";
    line.len() >= SHAPE.len()
        && line.iter().zip(SHAPE).all(|(b, s)| match s {
            b'0' => b.is_ascii_digit(),
            _ => b == s,
        })
}

fn level_of(name: &[u8]) -> Option<Level> {
    Some(match name {
        b"debug" => Level::Debug,
        b"info" => Level::Info,
        b"notice" => Level::Notice,
        b"warn" => Level::Warn,
        b"error" => Level::Error,
        b"crit" => Level::Critical,
        b"alert" => Level::Alert,
        b"emerg" => Level::Emergency,
        _ => return None,
    })
}

/// `54053#0: ` → (pid, tid, rest).
fn process_ids(s: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let pid_len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let (pid, after) = s.split_at(pid_len);
    let after = after.strip_prefix(b"#")?;
    let tid_len = after.iter().take_while(|b| b.is_ascii_digit()).count();
    let (tid, after) = after.split_at(tid_len);
    let after = after.strip_prefix(b":")?;
    if pid.is_empty() || tid.is_empty() {
        return None;
    }
    Some((pid, tid, after.strip_prefix(b" ").unwrap_or(after)))
}

/// `*123 ` → (123, rest).
fn connection(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_prefix(b"*")?;
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let (id, after) = s.split_at(len);
    if id.is_empty() {
        return None;
    }
    Some((id, after.strip_prefix(b" ").unwrap_or(after)))
}

type Pairs<'a> = [Option<(&'static str, &'a [u8])>; PAIR_KEYS.len()];

/// Reads `client: X, server: Y, request: "..", ...` to the end of the entry. `None` if
/// anything does not fit, so that the caller keeps the text in the message.
fn pairs(mut s: &[u8]) -> Option<Pairs<'_>> {
    let mut out: Pairs<'_> = [None; PAIR_KEYS.len()];
    let mut n = 0;
    while !s.is_empty() {
        let key = key_at(s)?;
        let value_start = key.len() + 2;
        let value = s.get(value_start..)?;
        let (value, next) = if let Some(quoted) = value.strip_prefix(b"\"") {
            let end = quoted_end(quoted)?;
            (&quoted[..end], quoted.get(end + 1..)?)
        } else {
            // Unquoted values (addresses, server names) hold no ", ".
            let end = memmem::find(value, b", ").unwrap_or(value.len());
            (&value[..end], &value[end..])
        };
        *out.get_mut(n)? = Some((key, value));
        n += 1;
        s = match next.strip_prefix(b", ") {
            Some(after) => after,
            None if next.is_empty() => next,
            None => return None,
        };
    }
    Some(out)
}

/// The known key `s` starts with, followed by `: `.
fn key_at(s: &[u8]) -> Option<&'static str> {
    PAIR_KEYS.into_iter().find(|key| {
        s.strip_prefix(key.as_bytes())
            .is_some_and(|after| after.starts_with(b": "))
    })
}

/// The closing quote of a quoted value: a `"` at the end of the entry or before `, key: `.
/// Requests are written unescaped, so an inner `"` is possible; this skips those.
fn quoted_end(value: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'"', value).find(|&at| {
        let after = &value[at + 1..];
        after.is_empty() || after.strip_prefix(b", ").and_then(key_at).is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> ErrorParser {
        ErrorParser::new(TimeZone::UTC)
    }

    fn fields<'a>(p: &'a Parsed<'_>) -> Vec<(&'a str, &'a str)> {
        p.fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect()
    }

    #[test]
    fn request_error_with_all_pairs() {
        let line = br#"2016/10/25 14:49:34 [error] 54053#0: *1 open() "/x/favicon.ico" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /favicon.ico HTTP/1.1", upstream: "fastcgi://unix:/run/php.sock:", host: "localhost:8080", referrer: "http://localhost:8080/""#;
        let p = parser();
        let parsed = p.parse(line).unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2016-10-25T14:49:34Z".parse().unwrap())
        );
        assert_eq!(parsed.level, Level::Error);
        assert_eq!(
            parsed.message,
            r#"open() "/x/favicon.ico" failed (2: No such file or directory)"#
        );
        assert_eq!(
            fields(&parsed),
            [
                ("pid", "54053"),
                ("tid", "0"),
                ("connection", "1"),
                ("client", "127.0.0.1"),
                ("server", "localhost"),
                ("request", "GET /favicon.ico HTTP/1.1"),
                ("upstream", "fastcgi://unix:/run/php.sock:"),
                ("host", "localhost:8080"),
                ("referrer", "http://localhost:8080/"),
            ]
        );
    }

    #[test]
    fn levels_map_and_entries_without_connection_or_pairs() {
        for (name, level) in [
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("notice", Level::Notice),
            ("warn", Level::Warn),
            ("error", Level::Error),
            ("crit", Level::Critical),
            ("alert", Level::Alert),
            ("emerg", Level::Emergency),
        ] {
            let line = format!("2024/01/02 03:04:05 [{name}] 7#7: signal process started");
            let p = parser();
            let parsed = p.parse(line.as_bytes()).unwrap();
            assert_eq!(parsed.level, level);
            assert_eq!(parsed.message, "signal process started");
            assert_eq!(fields(&parsed), [("pid", "7"), ("tid", "7")]);
        }
    }

    #[test]
    fn time_is_read_in_the_configured_zone() {
        let p = ErrorParser::new(TimeZone::get("Europe/Paris").unwrap());
        let parsed = p.parse(b"2024/07/01 12:00:00 [warn] 1#1: x").unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2024-07-01T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn a_quote_inside_the_request_does_not_end_it() {
        let line = br#"2024/01/02 03:04:05 [error] 1#1: *9 oops, client: ::1, server: _, request: "GET /a"b HTTP/1.1", host: "h""#;
        let p = parser();
        let parsed = p.parse(line).unwrap();
        assert_eq!(parsed.field("request"), Some(r#"GET /a"b HTTP/1.1"#));
        assert_eq!(parsed.field("host"), Some("h"));
        assert_eq!(parsed.message, "oops");
    }

    #[test]
    fn unrecognised_trailing_text_stays_in_the_message() {
        let line = b"2024/01/02 03:04:05 [error] 1#1: *9 x, client: ::1, color: blue";
        let p = parser();
        let parsed = p.parse(line).unwrap();
        assert_eq!(parsed.message, "x, client: ::1, color: blue");
        assert_eq!(parsed.field("client"), None);
    }

    #[test]
    fn continuation_lines_are_those_without_a_header() {
        let p = parser();
        assert!(p.is_multiline());
        assert!(p.continues(b"2024/01/02 03:04:05 [error] x", b"PHP message: more"));
        assert!(p.continues(b"x", b""));
        assert!(!p.continues(b"x", b"2024/01/02 03:04:05 [error] 1#1: y"));
        let entry = b"2024/01/02 03:04:05 [error] 1#1: *3 FastCGI sent in stderr: \"a\nb\", client: 1.2.3.4";
        let parsed = p.parse(entry).unwrap();
        assert_eq!(parsed.message, "FastCGI sent in stderr: \"a\nb\"");
        assert_eq!(parsed.field("client"), Some("1.2.3.4"));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let p = parser();
            let _ = p.parse(&bytes);
            let _ = p.continues(&bytes, &bytes);
        }

        #[test]
        fn rendered_entries_parse_back(
            secs in 0i64..4_102_444_800,
            level in 0usize..8,
            pid in proptest::prelude::any::<u32>(),
            connection in proptest::option::of(proptest::prelude::any::<u64>()),
            message in "[^,*\\pC]\\PC{0,60}",
            client in proptest::option::of("[0-9a-f:.]{1,39}"),
            request in "[A-Z]{3,7} /\\PC{0,30} HTTP/1\\.1",
        ) {
            const NAMES: [&str; 8] = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"];
            let tz = TimeZone::get("America/New_York").unwrap();
            let time = jiff::Timestamp::from_second(secs).unwrap();
            let mut line = format!(
                "{} [{}] {pid}#0: ",
                time.to_zoned(tz.clone()).strftime("%Y/%m/%d %H:%M:%S"),
                NAMES[level]
            );
            if let Some(c) = connection {
                line.push_str(&format!("*{c} "));
            }
            line.push_str(&message);
            if let Some(client) = &client {
                line.push_str(&format!(", client: {client}, server: example.org, request: \"{request}\""));
            }
            let p = ErrorParser::new(tz.clone());
            let parsed = p.parse(line.as_bytes()).unwrap();
            // A wall time repeated at the end of DST reads as its earlier instant.
            let expected = tz.to_ambiguous_timestamp(time.to_zoned(tz.clone()).datetime()).compatible().unwrap();
            proptest::prop_assert_eq!(parsed.timestamp, Some(expected));
            proptest::prop_assert_eq!(parsed.level, Level::from_name(NAMES[level]).unwrap());
            proptest::prop_assert_eq!(parsed.message.as_ref(), message.as_str());
            let pid_text = pid.to_string();
            proptest::prop_assert_eq!(parsed.field("pid"), Some(pid_text.as_str()));
            let connection_text = connection.map(|c| c.to_string());
            proptest::prop_assert_eq!(parsed.field("connection"), connection_text.as_deref());
            proptest::prop_assert_eq!(parsed.field("client"), client.as_deref());
            if client.is_some() {
                proptest::prop_assert_eq!(parsed.field("server"), Some("example.org"));
                proptest::prop_assert_eq!(parsed.field("request"), Some(request.as_str()));
            }
        }
    }

    #[test]
    fn malformed_headers_are_errors() {
        let p = parser();
        for bad in [
            &b""[..],
            b"2024/01/02 03:04:05",
            b"2024/13/02 03:04:05 [error] 1#1: x",
            b"2024/01/02 03:04:05 error 1#1: x",
            b"2024/01/02 03:04:05 [fatal] 1#1: x",
            b"nginx: [emerg] bind() failed",
        ] {
            assert!(p.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

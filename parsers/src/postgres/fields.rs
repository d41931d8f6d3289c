//! Field conversions the three PostgreSQL formats share, so that a value gets the same name
//! and shape whether it came from stderr, csvlog or jsonlog.

use std::borrow::Cow;

use jiff::Timestamp;

use super::timestamp;
use super::zone::ZoneError;
use crate::record::text;
use crate::{ParseError, Parsed, Record, RecordContext};

/// Adds a text field unless it carries nothing: empty, or PostgreSQL's `[unknown]`
/// placeholder (written for user, database and application name before they are known).
pub(crate) fn push_text<'a>(
    parsed: &mut Parsed<'a>,
    key: impl Into<Cow<'a, str>>,
    value: Cow<'a, str>,
) {
    if !value.is_empty() && value != "[unknown]" {
        parsed.push(key, value);
    }
}

pub(crate) fn push_bytes<'a>(parsed: &mut Parsed<'a>, key: &'static str, value: &'a [u8]) {
    push_text(parsed, key, text(value));
}

/// `%r` prints `host(port)`; `[local]` and host-only values have no port.
pub(crate) fn push_host_paren_port<'a>(parsed: &mut Parsed<'a>, value: &'a [u8]) {
    if let Some(inner) = value.strip_suffix(b")") {
        if let Some(open) = memchr::memrchr(b'(', inner) {
            let (host, port) = (&inner[..open], &inner[open + 1..]);
            if !port.is_empty() && port.iter().all(u8::is_ascii_digit) {
                push_bytes(parsed, "remote_host", host);
                push_bytes(parsed, "remote_port", port);
                return;
            }
        }
    }
    push_bytes(parsed, "remote_host", value);
}

/// csvlog's `connection_from` is `host:port` (IPv6 hosts contain colons: split at the last).
pub(crate) fn push_host_colon_port<'a>(parsed: &mut Parsed<'a>, value: Cow<'a, str>) {
    if let Some(colon) = value.rfind(':') {
        let port = &value[colon + 1..];
        if colon > 0 && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            let (host, port) = match value {
                Cow::Borrowed(v) => (Cow::Borrowed(&v[..colon]), Cow::Borrowed(&v[colon + 1..])),
                Cow::Owned(v) => (
                    Cow::Owned(v[..colon].to_owned()),
                    Cow::Owned(v[colon + 1..].to_owned()),
                ),
            };
            push_text(parsed, "remote_host", host);
            push_text(parsed, "remote_port", port);
            return;
        }
    }
    push_text(parsed, "remote_host", value);
}

/// `session_start` as an RFC 3339 instant when its zone resolves, else as printed.
pub(crate) fn push_session_start<'a>(parsed: &mut Parsed<'a>, value: Cow<'a, str>) {
    let resolved = timestamp::parse_exact(value.as_bytes()).and_then(|t| t.resolve().ok());
    match resolved {
        Some(ts) => parsed.push("session_start", ts.to_string()),
        None => push_text(parsed, "session_start", value),
    }
}

/// `duration: 0.658 ms` (log_min_duration_statement, log_duration) → `duration_ms` = `0.658`.
pub(crate) fn push_duration<'a>(parsed: &mut Parsed<'a>) {
    let duration = match &parsed.message {
        Cow::Borrowed(m) => duration_ms(m).map(Cow::Borrowed),
        Cow::Owned(m) => duration_ms(m).map(|d| Cow::Owned(d.to_owned())),
    };
    if let Some(d) = duration {
        parsed.push("duration_ms", d);
    }
}

fn duration_ms(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("duration: ")?;
    let end = rest.find(" ms")?;
    let number = &rest[..end];
    let valid = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    valid.then_some(number)
}

/// The record for an entry whose fields parsed but whose timestamp zone did not resolve:
/// the raw entry is the message (as for any parse error), the fields are kept, the time is
/// the read time.
pub(crate) fn record_with_zone_error<'a>(
    parsed: Parsed<'a>,
    error: ZoneError,
    entry: &'a [u8],
    ctx: &RecordContext,
    read_time: Timestamp,
) -> Record {
    let parsed = Parsed {
        timestamp: None,
        message: text(entry),
        ..parsed
    };
    let mut record = parsed.to_record(ctx, read_time);
    record.parse_error = Some(error.to_string());
    record
}

/// Outcome of parsing an entry whose zone may not resolve: `parse` turns the zone error into
/// a `ParseError`, `record` keeps the fields.
pub(crate) type ZonedParse<'a> = Result<(Parsed<'a>, Option<ZoneError>), ParseError>;

pub(crate) fn strict(result: ZonedParse<'_>) -> Result<Parsed<'_>, ParseError> {
    match result? {
        (parsed, None) => Ok(parsed),
        (_, Some(error)) => Err(ParseError::new(error.to_string())),
    }
}

pub(crate) fn lenient<'a>(
    result: ZonedParse<'a>,
    entry: &'a [u8],
    ctx: &RecordContext,
    read_time: Timestamp,
) -> Record {
    match result {
        Ok((parsed, None)) => parsed.to_record(ctx, read_time),
        Ok((parsed, Some(error))) => record_with_zone_error(parsed, error, entry, ctx, read_time),
        Err(e) => ctx.unparsed(entry, e.reason, read_time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    fn parsed() -> Parsed<'static> {
        Parsed::new(None, Level::Info, Cow::Borrowed("m"))
    }

    #[test]
    fn host_and_port_forms() {
        let mut p = parsed();
        push_host_paren_port(&mut p, b"10.0.0.1(5432)");
        assert_eq!(p.field("remote_host"), Some("10.0.0.1"));
        assert_eq!(p.field("remote_port"), Some("5432"));
        let mut p = parsed();
        push_host_paren_port(&mut p, b"[local]");
        assert_eq!(p.field("remote_host"), Some("[local]"));
        assert_eq!(p.field("remote_port"), None);
        let mut p = parsed();
        push_host_colon_port(&mut p, Cow::Borrowed("::1:54321"));
        assert_eq!(p.field("remote_host"), Some("::1"));
        assert_eq!(p.field("remote_port"), Some("54321"));
        let mut p = parsed();
        push_host_colon_port(&mut p, Cow::Owned("[local]".into()));
        assert_eq!(p.field("remote_host"), Some("[local]"));
    }

    #[test]
    fn placeholders_are_dropped() {
        let mut p = parsed();
        push_bytes(&mut p, "user", b"[unknown]");
        push_bytes(&mut p, "database", b"");
        assert!(p.fields.is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(
            duration_ms("duration: 0.658 ms  statement: x"),
            Some("0.658")
        );
        assert_eq!(duration_ms("duration: 12 ms"), Some("12"));
        assert_eq!(duration_ms("duration: x ms"), None);
        assert_eq!(duration_ms("statement: x"), None);
    }

    #[test]
    fn session_start_normalised() {
        let mut p = parsed();
        push_session_start(&mut p, Cow::Borrowed("2021-01-04 00:21:42 CET"));
        assert_eq!(p.field("session_start"), Some("2021-01-03T23:21:42Z"));
        let mut p = parsed();
        push_session_start(&mut p, Cow::Borrowed("2021-01-04 00:21:42 QQQ"));
        assert_eq!(p.field("session_start"), Some("2021-01-04 00:21:42 QQQ"));
    }
}

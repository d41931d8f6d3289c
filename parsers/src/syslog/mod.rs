//! Syslog files, one `syslog` format that recognises each line's form on its own:
//!
//! - RFC 3164 as rsyslog and macOS write files: `Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, with or
//!   without a leading `<PRI>`, day space-padded (`Apr  4`) or not (`Apr 4`);
//! - the same with an RFC 3339 time (`RSYSLOG_FileFormat`, Debian's default since 12):
//!   `2024-01-05T10:00:00.123456+01:00 HOST TAG[PID]: MSG`, offset `Z`, `+01:00`, `+0100`,
//!   or none (then the time is in the configured zone);
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`, and its body without
//!   `<PRI>1 ` (`TIMESTAMP HOST APP PROCID MSGID SD MSG`, as some relays write files). A line
//!   `TIMESTAMP HOST WORD ...` is read as RFC 5424 only when WORD is not a tag (`app:` or
//!   `app[pid]`) and the rest has the RFC 5424 shape, structured data included.
//!
//! Fields: `facility` and `severity` (names: `auth`, `local3`, `crit`, `warning`, ...) when
//! the line has a PRI; `hostname`; `appname` and `procid` (the RFC 3164 tag and its
//! `[pid]`); `msgid`; structured data as `sd.<SD-ID>.<PARAM>` (see [`rfc5424`]). Fields
//! the line does not carry (or carries as `-`) are absent. The record's message is MSG.
//!
//! Level: the PRI severity, one-to-one. Without PRI the line says nothing reliable about
//! severity (words like "error" appear in harmless messages), so the level is INFO.
//!
//! Time: RFC 3164 lines carry neither year nor zone; the zone is the configured one and
//! the year is inferred (see [`year`]). Civil times are resolved DST-aware (see
//! [`timestamp::resolve`]: the earlier instant in a fold).
//!
//! Multi-line: a line starting with a TAB or a space continues the entry before it (macOS
//! syslogd and rsyslog's escaped multi-line messages); the message then holds the lines
//! joined by `\n`. macOS's `--- last message repeated N times ---`, with or without a time
//! before it, is a record whose message is that text. Any other line without a syslog
//! header (a file's banner, an unindented continuation) is a parse error record.
//!
//! Month names: English, plus French, German and Spanish abbreviations as glibc writes
//! them (`août`, `déc.`, `Mär`, `ene`), since localized `journalctl`/`date` output ends up
//! in files that are shipped as syslog.

pub mod pri;
pub mod rfc3164;
pub mod rfc5424;
pub mod timestamp;
pub mod year;

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::record::{EntryText, strip_cr, text};
use crate::{Level, ParseError, Parsed, Parser, Record, RecordContext};
use pri::Pri;
use rfc3164::Body;
use timestamp::Rfc3339;
use year::Reference;

const NO_HEADER: &str = "syslog: no timestamp (expected `Mmm dd hh:mm:ss`, RFC 3339 or `<PRI>1 `)";
const NO_YEAR: &str = "syslog: no year has this date";
const OUT_OF_RANGE: &str = "syslog: time out of range";
const BAD_5424_HEADER: &str = "syslog: bad RFC 5424 TIMESTAMP/HOSTNAME";

/// Parses syslog files (see the module documentation).
#[derive(Debug, Clone)]
pub struct SyslogParser {
    tz: TimeZone,
    /// The zone's offset in seconds when it has only one (UTC, `+01:00`): civil times then
    /// convert with arithmetic instead of the zone's rules (a third of an RFC 3164 line's
    /// cost in `tz.to_ambiguous_timestamp`).
    fixed_offset: Option<i64>,
    /// Fixed "now" for year inference; `None`: the clock, read per line.
    reference: Option<Reference>,
    /// Tells this parser's entries in the per-thread reference cache from other parsers'
    /// (another zone); clones share it, as they share the zone.
    id: u64,
}

/// Parsers made so far, for [`SyslogParser::id`].
static PARSERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// The last reference computed on this thread: (parser id, Unix second, reference).
    /// Lines arrive by the thousand per second, so the zone conversion is done once a second.
    static REFERENCE: std::cell::Cell<(u64, i64, Option<Reference>)> =
        const { std::cell::Cell::new((0, 0, None)) };
}

impl SyslogParser {
    /// Times without zone are read in `tz`; RFC 3164 years are inferred from the clock.
    pub fn new(tz: TimeZone) -> Self {
        SyslogParser {
            fixed_offset: tz.to_fixed_offset().ok().map(|o| i64::from(o.seconds())),
            tz,
            reference: None,
            id: PARSERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
        }
    }

    /// Infers RFC 3164 years as if the lines were read at `now` (tests, replays of old files).
    pub fn with_reference(mut self, now: Timestamp) -> Self {
        self.reference = Some(Reference::from_datetime(self.tz.to_datetime(now)));
        self
    }

    /// The reference for year inference: the fixed one, else "now" to the second, which is
    /// `now` when the caller knows it (the read time [`Parser::record`] is given) and the
    /// coarse clock otherwise.
    fn reference(&self, now: Option<i64>) -> Reference {
        if let Some(fixed) = self.reference {
            return fixed;
        }
        let second = now.unwrap_or_else(crate::time::coarse_unix_second);
        REFERENCE.with(|cache| {
            if let (id, at, Some(cached)) = cache.get() {
                if id == self.id && at == second {
                    return cached;
                }
            }
            let now = Timestamp::from_second(second).unwrap_or_else(|_| Timestamp::now());
            let reference = Reference::from_datetime(self.tz.to_datetime(now));
            cache.set((self.id, second, Some(reference)));
            reference
        })
    }

    fn rfc3164<'a>(
        &self,
        input: &'a [u8],
        line: &Header<'a>,
        now: Option<i64>,
        out: &mut Parsed<'a>,
    ) -> Result<(), ParseError> {
        let (mdt, rest) = timestamp::rfc3164(input).ok_or_else(|| ParseError::new(NO_HEADER))?;
        let year =
            year::infer(&mdt, self.reference(now)).ok_or_else(|| ParseError::new(NO_YEAR))?;
        let t = mdt.time;
        // Leap seconds (`:60`) take the slow path, which rejects them as before.
        if let (Some(offset), 0..=59) = (self.fixed_offset, t.second) {
            let local = timestamp::days_from_civil(year, mdt.month, mdt.day) * 86_400 + t.seconds();
            out.timestamp = Some(
                Timestamp::new(local - offset, t.nanos)
                    .map_err(|_| ParseError::new(OUT_OF_RANGE))?,
            );
            push_body(rfc3164::body(rest), line, out);
            return Ok(());
        }
        let dt = DateTime::new(
            year, mdt.month, mdt.day, t.hour, t.minute, t.second, t.nanos,
        )
        .map_err(|_| ParseError::new(NO_YEAR))?;
        out.timestamp =
            Some(timestamp::resolve(dt, &self.tz).ok_or_else(|| ParseError::new(OUT_OF_RANGE))?);
        push_body(rfc3164::body(rest), line, out);
        Ok(())
    }

    /// An RFC 3339 time then either a BSD body or the RFC 5424 body without `<PRI>1 `.
    fn rfc3339<'a>(
        &self,
        input: &'a [u8],
        line: &Header<'a>,
        out: &mut Parsed<'a>,
    ) -> Result<(), ParseError> {
        let (stamp, rest) = timestamp::rfc3339(input).ok_or_else(|| ParseError::new(NO_HEADER))?;
        out.timestamp = Some(self.instant(stamp)?);
        let body = rfc3164::body(rest);
        if let (Some(host), None) = (body.hostname, body.appname) {
            if let Some(pri) = line.pri {
                push_pri(pri, out);
            }
            out.push("hostname", line.text.of(host));
            if let Ok(msg) = rfc5424::after_hostname(body.message, out) {
                out.message = line.text.of(msg);
                return Ok(());
            }
            out.fields.clear();
        }
        push_body(body, line, out);
        Ok(())
    }

    /// `TIMESTAMP HOSTNAME APP-NAME ...` after `<PRI>1 `.
    fn rfc5424<'a>(
        &self,
        input: &'a [u8],
        line: &Header<'a>,
        out: &mut Parsed<'a>,
    ) -> Result<(), ParseError> {
        if let Some(pri) = line.pri {
            push_pri(pri, out);
        }
        let bad_header = || ParseError::new(BAD_5424_HEADER);
        let rest = match input.strip_prefix(b"-") {
            Some(rest) => rest,
            None => {
                let (stamp, rest) = timestamp::rfc3339(input).ok_or_else(bad_header)?;
                out.timestamp = Some(self.instant(stamp)?);
                rest
            }
        };
        let rest = rest.strip_prefix(b" ").ok_or_else(bad_header)?;
        let (rest, host) = rfc5424::header_field(rest).map_err(|_| bad_header())?;
        let rest = rest.strip_prefix(b" ").ok_or_else(bad_header)?;
        if host != b"-" {
            out.push("hostname", line.text.of(host));
        }
        let msg = rfc5424::after_hostname(rest, out).map_err(|e| ParseError::new(e.reason()))?;
        out.message = line.text.of(msg);
        Ok(())
    }

    fn instant(&self, stamp: Rfc3339) -> Result<Timestamp, ParseError> {
        stamp
            .in_zone(&self.tz)
            .ok_or_else(|| ParseError::new(OUT_OF_RANGE))
    }
}

/// What the line's start says, for the forms after it.
struct Header<'a> {
    /// The `<PRI>`, if the line has one.
    pri: Option<Pri>,
    /// The whole entry, checked for UTF-8 once.
    text: EntryText<'a>,
}

/// A BSD body's fields and the PRI's, pushed in key order so the record need not sort them.
fn push_body<'a>(body: Body<'a>, line: &Header<'a>, out: &mut Parsed<'a>) {
    if let Some(app) = body.appname {
        out.push("appname", line.text.of(app));
    }
    if let Some(pri) = line.pri {
        out.push("facility", pri.facility_name());
    }
    if let Some(host) = body.hostname {
        out.push("hostname", line.text.of(host));
    }
    if let Some(pid) = body.procid {
        out.push("procid", line.text.of(pid));
    }
    if let Some(pri) = line.pri {
        out.push("severity", pri.severity_name());
    }
    out.message = line.text.of(body.message);
}

fn push_pri(pri: Pri, out: &mut Parsed<'_>) {
    out.push("facility", pri.facility_name());
    out.push("severity", pri.severity_name());
}

impl SyslogParser {
    /// [`Parser::parse`] into `out` (a fresh [`Parsed`]), with "now" (Unix seconds) for year
    /// inference when the caller has it. Filling the caller's value instead of returning
    /// one saves copying it (a few hundred bytes) per line.
    fn parse_into<'a>(
        &'a self,
        entry: &'a [u8],
        now: Option<i64>,
        out: &mut Parsed<'a>,
    ) -> Result<(), ParseError> {
        let entry = strip_cr(entry);
        if entry.starts_with(b"--- last message repeated ") {
            out.message = text(entry);
            return Ok(());
        }
        let (pri, rest) = match pri::pri(entry) {
            Ok((rest, pri)) => (Some(pri), rest),
            Err(_) => (None, entry),
        };
        out.level = pri.map_or(Level::Info, |p| Level::from_syslog_severity(p.severity()));
        let line = Header {
            pri,
            text: EntryText::new(entry),
        };
        match rest {
            [b'1', b' ', after @ ..] if pri.is_some() => self.rfc5424(after, &line, out),
            [b'0'..=b'9', ..] => self.rfc3339(rest, &line, out),
            _ => self.rfc3164(rest, &line, now, out),
        }
    }
}

impl Parser for SyslogParser {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        let mut out = Parsed::new(None, Level::Info, Cow::Borrowed(""));
        self.parse_into(entry, None, &mut out)?;
        Ok(out)
    }

    /// As the default, with the read time as "now" for year inference: no clock read per line.
    fn record(&self, entry: &[u8], ctx: &RecordContext, read_time: Timestamp) -> Record {
        let entry = strip_cr(entry);
        let mut out = Parsed::new(None, Level::Info, Cow::Borrowed(""));
        match self.parse_into(entry, Some(read_time.as_second()), &mut out) {
            Ok(()) => out.to_record(ctx, read_time),
            Err(e) => ctx.unparsed(entry, e.reason, read_time),
        }
    }

    fn continues(&self, _pending: &[u8], line: &[u8]) -> bool {
        matches!(line.first(), Some(b'\t' | b' '))
    }

    fn is_multiline(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "syslog"
    }
}

#[cfg(test)]
mod tests;

//! PostgreSQL's stderr log (`log_destination = stderr`, the logging collector's files):
//! `log_line_prefix`, then `SEVERITY:  message`.
//!
//! Only a line that matches the `log_line_prefix` followed by a severity (`LOG:`, `ERROR:`,
//! ...) starts an entry. Every other line continues the pending one, however it is indented:
//! the TAB-indented lines PostgreSQL writes for newlines inside a message, lines with spaces
//! or no indentation at all (other writers to the same stderr: `archive_command`, extensions,
//! `TRAP:` lines), and blank lines; pgbadger and lnav read these files the same way. The
//! `DETAIL:`/`HINT:`/`CONTEXT:`/`STATEMENT:`/`QUERY:`/`LOCATION:` lines the same process
//! writes right after an entry also continue it. Blank lines are dropped from the message:
//! PostgreSQL never writes one itself (a newline in a message is always followed by a TAB).
//!
//! The severity words are PostgreSQL's English ones: with a translated `lc_messages` no line
//! matches, so the server must log with `lc_messages = 'C'` (as pgbadger also requires).

use std::borrow::Cow;

use jiff::Timestamp;

use super::fields::{self, ZonedParse};
use super::prefix::{Captures, Escape, Match, Prefix};
use super::severity::{self, Label, Word};
use super::timestamp;
use super::zone::ZoneError;
use crate::record::text;
use crate::{Level, ParseError, Parsed, Parser, Record, RecordContext, SpecError};

/// Parser for the stderr format with one `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct StderrParser {
    prefix: Prefix,
}

impl StderrParser {
    /// Compiles `prefix` (a `log_line_prefix` value, e.g. `%m [%p] %q%u@%d `).
    pub fn new(prefix: &str) -> Result<Self, SpecError> {
        Ok(StderrParser {
            prefix: Prefix::compile(prefix)?,
        })
    }

    fn parse_entry<'a>(&'a self, entry: &'a [u8]) -> ZonedParse<'a> {
        let mut lines = entry.split(|&b| b == b'\n').map(crate::record::strip_cr);
        let first = lines.next().unwrap_or_default();
        let Some(matched) = self.prefix.match_line(first) else {
            return Err(ParseError::new(
                "line does not match log_line_prefix and severity",
            ));
        };
        let message_at = matched.header_at + matched.header.message_at;
        let mut sections = Sections::new(first.get(message_at..).unwrap_or_default());
        for line in lines {
            self.add_line(&mut sections, line);
        }

        let (level, orphan) = match matched.header.word {
            Word::Severity(level) => (level, false),
            // A labelled line whose entry was not before it (another process wrote in
            // between): its text is the message, the label says what it was.
            Word::Label(_) => (Level::Info, true),
        };
        let mut parsed = Parsed::new(None, level, sections.message);
        push_captures(&mut parsed, &matched.captures);
        fields::push_bytes(&mut parsed, "severity", matched.header.name);
        if let Some(code) = matched.header.sql_state {
            fields::push_bytes(&mut parsed, "sql_state", code);
        }
        if !orphan {
            fields::push_duration(&mut parsed);
        }
        for (label, value) in Label::ALL.into_iter().zip(sections.labels) {
            if let Some(value) = value {
                fields::push_text(&mut parsed, label.field(), value);
            }
        }
        let (timestamp, zone_error) = entry_time(&matched.captures);
        parsed.timestamp = timestamp;
        Ok((parsed, zone_error))
    }

    fn add_line<'a>(&self, sections: &mut Sections<'a>, line: &'a [u8]) {
        if line.is_empty() {
            return;
        }
        if let Some(rest) = line.strip_prefix(b"\t") {
            sections.append(rest);
            return;
        }
        match self.prefix.match_line(line) {
            Some(Match {
                header:
                    severity::Header {
                        word: Word::Label(label),
                        message_at,
                        ..
                    },
                header_at,
                ..
            }) => sections.start(
                label,
                line.get(header_at + message_at..).unwrap_or_default(),
            ),
            // A line another writer put between PostgreSQL's (see the module docs): it
            // continues the message or the part it follows, as it was written.
            _ => sections.append(line),
        }
    }

    /// The identity (`%p`, else `%c`) of the entry's first line.
    fn first_line_identity<'a>(&self, pending: &'a [u8]) -> Option<&'a [u8]> {
        let first = match memchr::memchr(b'\n', pending) {
            Some(end) => pending.get(..end)?,
            None => pending,
        };
        let matched = self.prefix.match_line(crate::record::strip_cr(first))?;
        self.prefix.identity(&matched.captures)
    }
}

impl Parser for StderrParser {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        fields::strict(self.parse_entry(entry))
    }

    fn record(&self, entry: &[u8], ctx: &RecordContext, read_time: Timestamp) -> Record {
        let entry = crate::record::strip_cr(entry);
        fields::lenient(self.parse_entry(entry), entry, ctx, read_time)
    }

    /// Only a line that matches the prefix and a severity starts an entry (see the module
    /// docs); a labelled line continues the entry of the same process.
    fn continues(&self, pending: &[u8], line: &[u8]) -> bool {
        let line = crate::record::strip_cr(line);
        match line.first() {
            None | Some(b'\t') => return true,
            Some(_) => {}
        }
        let Some(matched) = self.prefix.match_line(line) else {
            return true;
        };
        if !matches!(matched.header.word, Word::Label(_)) {
            return false;
        }
        if !self.prefix.has_identity() {
            return true;
        }
        let identity = self.prefix.identity(&matched.captures);
        identity.is_some() && identity == self.first_line_identity(pending)
    }

    fn is_multiline(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

/// The message and the labelled parts of one entry, as they are read line by line.
struct Sections<'a> {
    message: Cow<'a, str>,
    labels: [Option<Cow<'a, str>>; 6],
    /// Which part TAB continuations go to: `None` for the message.
    current: Option<usize>,
}

impl<'a> Sections<'a> {
    fn new(message: &'a [u8]) -> Self {
        Sections {
            message: text(message),
            labels: Default::default(),
            current: None,
        }
    }

    fn start(&mut self, label: Label, value: &'a [u8]) {
        let index = label as usize;
        self.current = Some(index);
        if let Some(slot) = self.labels.get_mut(index) {
            match slot {
                // The same label twice (several CONTEXT lines): keep both.
                Some(existing) => join(existing, value),
                None => *slot = Some(text(value)),
            }
        }
    }

    fn append(&mut self, line: &'a [u8]) {
        let target = match self.current {
            None => Some(&mut self.message),
            Some(index) => self.labels.get_mut(index).and_then(Option::as_mut),
        };
        if let Some(target) = target {
            join(target, line);
        }
    }
}

fn join(section: &mut Cow<'_, str>, line: &[u8]) {
    let owned = section.to_mut();
    owned.push('\n');
    owned.push_str(&text(line));
}

/// Fields from the prefix's escapes (timestamps excepted: they are the record's time).
fn push_captures<'a>(parsed: &mut Parsed<'a>, captures: &Captures<'a>) {
    const NAMED: [(Escape, &str); 14] = [
        (Escape::Pid, "pid"),
        (Escape::LeaderPid, "leader_pid"),
        (Escape::User, "user"),
        (Escape::Database, "database"),
        (Escape::ApplicationName, "application_name"),
        (Escape::RemoteHost, "remote_host"),
        (Escape::LocalAddress, "local_address"),
        (Escape::BackendType, "backend_type"),
        (Escape::CommandTag, "command_tag"),
        (Escape::SessionId, "session_id"),
        (Escape::LineNum, "line_num"),
        (Escape::VirtualXid, "virtual_xid"),
        (Escape::Xid, "xid"),
        (Escape::QueryId, "query_id"),
    ];
    for (escape, key) in NAMED {
        if let Some(value) = captures.get(escape) {
            fields::push_bytes(parsed, key, value);
        }
    }
    // %r after %h: its host is the same and it also has the port.
    if let Some(value) = captures.get(Escape::RemoteHostPort) {
        fields::push_host_paren_port(parsed, value);
    }
    if let Some(value) = captures.get(Escape::SqlState) {
        fields::push_bytes(parsed, "sql_state", value);
    }
    if let Some(value) = captures.get(Escape::SessionStart) {
        fields::push_session_start(parsed, text(value));
    }
}

/// The entry's time from the most precise timestamp escape the prefix has.
fn entry_time(captures: &Captures<'_>) -> (Option<Timestamp>, Option<ZoneError>) {
    let zoned = |escape| {
        let (local, _) = timestamp::scan(captures.get(escape)?)?;
        Some(local.resolve())
    };
    let resolved = zoned(Escape::TimeMillis)
        .or_else(|| {
            let (ts, _) = timestamp::scan_epoch(captures.get(Escape::Epoch)?)?;
            Some(Ok(ts))
        })
        .or_else(|| zoned(Escape::Time));
    match resolved {
        Some(Ok(ts)) => (Some(ts), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Assembler;

    fn parser(prefix: &str) -> StderrParser {
        StderrParser::new(prefix).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn entries(p: &StderrParser, input: &str) -> Vec<Vec<u8>> {
        let mut assembler = Assembler::new(1 << 20);
        let mut out = Vec::new();
        let mut offset = 0u64;
        for line in input.split('\n') {
            let end = offset + line.len() as u64 + 1;
            out.extend(
                assembler
                    .push(p, line.as_bytes(), offset, end)
                    .map(|e| e.bytes),
            );
            offset = end;
        }
        out.extend(assembler.flush().map(|e| e.bytes));
        out
    }

    #[test]
    fn default_prefix_entry() {
        let p = parser(super::super::DEFAULT_PREFIX);
        let parsed = p
            .parse(
                b"2024-01-05 10:00:00.123 CET [42] WARNING:  there is no transaction in progress",
            )
            .unwrap();
        assert_eq!(parsed.timestamp, Some(ts("2024-01-05T09:00:00.123Z")));
        assert_eq!(parsed.level, Level::Warn);
        assert_eq!(parsed.message, "there is no transaction in progress");
        assert_eq!(parsed.field("pid"), Some("42"));
        assert_eq!(parsed.field("severity"), Some("WARNING"));
        assert!(matches!(parsed.message, Cow::Borrowed(_)));
    }

    #[test]
    fn labelled_lines_of_the_same_pid_join() {
        let p = parser("%m [%p] %q%u@%d ");
        let log = "\
2017-04-08 12:32:51.056 CEST [20730] postgres@mydb ERROR:  duplicate key value
2017-04-08 12:32:51.056 CEST [20730] postgres@mydb DETAIL:  Key (id)=(1) already exists.
2017-04-08 12:32:51.057 CEST [999] LOG:  checkpoint starting
2017-04-08 12:32:51.056 CEST [20730] postgres@mydb STATEMENT:  INSERT INTO users
\tVALUES (1);
2017-04-08 12:32:52.000 CEST [20730] postgres@mydb LOG:  next";
        let entries = entries(&p, log);
        assert_eq!(entries.len(), 4);
        let first = p.parse(&entries[0]).unwrap();
        assert_eq!(first.field("detail"), Some("Key (id)=(1) already exists."));
        assert_eq!(first.field("statement"), None);
        assert_eq!(first.field("user"), Some("postgres"));
        // The STATEMENT came after another process wrote: it stands alone.
        let orphan = p.parse(&entries[2]).unwrap();
        assert_eq!(orphan.field("severity"), Some("STATEMENT"));
        assert_eq!(orphan.message, "INSERT INTO users\nVALUES (1);");
    }

    #[test]
    fn tab_continuations_and_blank_lines() {
        let p = parser("%m [%p] ");
        let log = "\
2025-04-12 00:14:12.837 CEST [1329108] ERROR:  syntax error at or near \"null\"
2025-04-12 00:14:12.837 CEST [1329108] STATEMENT:  create table t (
\t    id smallserial primary key
\t);

2025-04-12 00:14:12.884 CEST [1329108] LOG:  duration: 1.5 ms  statement: select 1;
\tselect 2;
";
        let entries = entries(&p, log);
        assert_eq!(entries.len(), 2);
        let first = p.parse(&entries[0]).unwrap();
        assert_eq!(first.message, "syntax error at or near \"null\"");
        assert_eq!(
            first.field("statement"),
            Some("create table t (\n    id smallserial primary key\n);")
        );
        let second = p.parse(&entries[1]).unwrap();
        assert_eq!(
            second.message,
            "duration: 1.5 ms  statement: select 1;\nselect 2;"
        );
        assert_eq!(second.field("duration_ms"), Some("1.5"));
    }

    #[test]
    fn lines_without_the_prefix_continue_the_entry_whatever_their_indentation() {
        let p = parser("%m [%p] ");
        let log = "\
2024-03-01 10:00:00.000 UTC [7] LOG:  archive command failed with exit code 1
  rsync: connection unexpectedly closed (0 bytes received so far)
rsync error: error in rsync protocol data stream (code 12)

2024-03-01 10:00:00.000 UTC [7] DETAIL:  The failed archive command was: rsync %p
    standby:/archive/%f
2024-03-01 10:00:01.000 UTC [8] LOG:  next entry
TRAP: FailedAssertion(\"x\", File: \"y.c\", Line: 1)";
        let entries = entries(&p, log);
        assert_eq!(entries.len(), 2, "{entries:#?}");
        let first = p.parse(&entries[0]).unwrap();
        assert_eq!(
            first.message,
            "archive command failed with exit code 1\n  rsync: connection unexpectedly closed \
             (0 bytes received so far)\nrsync error: error in rsync protocol data stream (code 12)"
        );
        assert_eq!(
            first.field("detail"),
            Some("The failed archive command was: rsync %p\n    standby:/archive/%f")
        );
        let second = p.parse(&entries[1]).unwrap();
        assert_eq!(
            second.message,
            "next entry\nTRAP: FailedAssertion(\"x\", File: \"y.c\", Line: 1)"
        );
        assert_eq!(second.field("pid"), Some("8"));

        assert!(p.continues(b"x", b"no indentation"));
        assert!(p.continues(b"x", b"   spaces"));
        assert!(p.continues(b"x", b""));
        // A prefix without a severity after it is not a line PostgreSQL wrote.
        assert!(p.continues(b"x", b"2024-03-01 10:00:00.000 UTC [9] hello"));
    }

    #[test]
    fn verbose_sql_state_and_location() {
        let p = parser("%m [%p] ");
        let log = "\
2019-07-23 12:06:33.732 UTC [44] ERROR:  42704: unrecognized configuration parameter \"x\"
2019-07-23 12:06:33.732 UTC [44] LOCATION:  GetConfigOptionByName, guc.c:8342
2019-07-23 12:06:33.732 UTC [44] STATEMENT:  show x;";
        let entries = entries(&p, log);
        assert_eq!(entries.len(), 1);
        let e = p.parse(&entries[0]).unwrap();
        assert_eq!(e.field("sql_state"), Some("42704"));
        assert_eq!(
            e.field("location"),
            Some("GetConfigOptionByName, guc.c:8342")
        );
        assert_eq!(e.field("statement"), Some("show x;"));
        assert_eq!(e.message, "unrecognized configuration parameter \"x\"");
    }

    #[test]
    fn without_pid_labelled_lines_just_follow() {
        let p = parser("%t ");
        let log = "\
2024-01-05 10:00:00 UTC ERROR:  boom
2024-01-05 10:00:00 UTC HINT:  try again";
        let entries = entries(&p, log);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            p.parse(&entries[0]).unwrap().field("hint"),
            Some("try again")
        );
    }

    #[test]
    fn unknown_zone_keeps_fields_in_the_record() {
        let p = parser("%m [%p] ");
        let line = b"2024-01-05 10:00:00.000 XYZT [7] LOG:  hello";
        let err = p.parse(line).unwrap_err();
        assert_eq!(err.reason, "unknown time zone abbreviation XYZT");
        let read = ts("2030-01-01T00:00:00Z");
        let record = p.record(line, &RecordContext::new("pg", "h"), read);
        assert_eq!(record.timestamp, read);
        assert_eq!(record.field("pid"), Some("7"));
        assert_eq!(record.message(), String::from_utf8_lossy(line));
        assert_eq!(
            record.parse_error.as_deref(),
            Some("unknown time zone abbreviation XYZT")
        );
    }

    #[test]
    fn epoch_session_fields() {
        let p = parser("%n %c %l %v %x %s %a %r ");
        let parsed = p
            .parse(b"1704448800.123 659e1f20.2a 3 3/17 0 2024-01-05 09:00:00 UTC psql 10.1.1.1(5000) LOG:  hi")
            .unwrap();
        assert_eq!(parsed.timestamp, Some(ts("2024-01-05T10:00:00.123Z")));
        assert_eq!(parsed.field("session_id"), Some("659e1f20.2a"));
        assert_eq!(parsed.field("line_num"), Some("3"));
        assert_eq!(parsed.field("virtual_xid"), Some("3/17"));
        assert_eq!(parsed.field("xid"), Some("0"));
        assert_eq!(parsed.field("session_start"), Some("2024-01-05T09:00:00Z"));
        assert_eq!(parsed.field("application_name"), Some("psql"));
        assert_eq!(parsed.field("remote_host"), Some("10.1.1.1"));
        assert_eq!(parsed.field("remote_port"), Some("5000"));
    }

    #[test]
    fn garbage_and_crlf() {
        let p = parser("%m [%p] ");
        assert!(p.parse(b"").is_err());
        assert!(p.parse(b"not a postgres line").is_err());
        let parsed = p
            .parse(b"2024-01-05 10:00:00.000 UTC [1] LOG:  x\r")
            .unwrap();
        assert_eq!(parsed.message, "x");
        let parsed = p
            .parse(b"2024-01-05 10:00:00.000 UTC [1] LOG:  caf\xff")
            .unwrap();
        assert_eq!(parsed.message, "caf\u{fffd}");
        assert!(!p.continues(b"x", b"2024-01-05 10:00:00.000 UTC [1] LOG:  y"));
        assert!(p.continues(b"x", b"\r"));
    }
}

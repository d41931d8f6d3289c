//! PostgreSQL's `csvlog`: one CSV row per entry, fields quoted with `""` escapes, raw
//! newlines inside quoted fields (an entry then spans lines while a quote is open).
//!
//! The column set grew over releases, always by appending: 22 (8.3–8.4), 23 (9.0–12,
//! `application_name`), 24 (13, `backend_type`), 26 (14+, `leader_pid`, `query_id`).
//! Columns are read by position, so a row of any count from 22 up parses: a column a
//! release added after these is kept as `column_N` (N counted from 1) rather than lost.

use std::borrow::Cow;

use jiff::Timestamp;

use super::fields::{self, ZonedParse};
use super::severity;
use super::timestamp;
use crate::record::text;
use crate::{Level, ParseError, Parsed, Parser, Record, RecordContext};

/// Field names of the csvlog columns, in order (see the module docs for the column counts).
/// `None`: handled on its own (time, message, connection, severity, session start).
const COLUMNS: [Option<&str>; 26] = [
    None,                     // log_time
    Some("user"),             // user_name
    Some("database"),         // database_name
    Some("pid"),              // process_id
    None,                     // connection_from
    Some("session_id"),       // session_id
    Some("line_num"),         // session_line_num
    Some("command_tag"),      // command_tag
    None,                     // session_start_time
    Some("virtual_xid"),      // virtual_transaction_id
    Some("xid"),              // transaction_id
    None,                     // error_severity
    Some("sql_state"),        // sql_state_code
    None,                     // message
    Some("detail"),           // detail
    Some("hint"),             // hint
    Some("query"),            // internal_query
    Some("query_pos"),        // internal_query_pos
    Some("context"),          // context
    Some("statement"),        // query
    Some("statement_pos"),    // query_pos
    Some("location"),         // location
    Some("application_name"), // application_name (9.0+)
    Some("backend_type"),     // backend_type (13+)
    Some("leader_pid"),       // leader_pid (14+)
    Some("query_id"),         // query_id (14+)
];

const LOG_TIME: usize = 0;
const CONNECTION_FROM: usize = 4;
const SESSION_START: usize = 8;
const SEVERITY: usize = 11;
const MESSAGE: usize = 13;
/// The fewest columns PostgreSQL has written (8.3).
const MIN_COLUMNS: usize = 22;

/// Parser for `csvlog` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvParser;

impl CsvParser {
    /// The csvlog parser (it has no options: the columns are fixed by PostgreSQL).
    pub fn new() -> Self {
        CsvParser
    }

    fn parse_entry<'a>(&self, entry: &'a [u8]) -> ZonedParse<'a> {
        let mut columns: [Cow<'a, str>; 26] = Default::default();
        let mut later = Vec::new();
        let count = split_row(entry, &mut columns, &mut later)?;
        if count < MIN_COLUMNS {
            return Err(ParseError::new(format!(
                "csvlog row has {count} columns (PostgreSQL writes at least {MIN_COLUMNS})"
            )));
        }
        let time = timestamp::parse_exact(columns[LOG_TIME].as_bytes())
            .ok_or_else(|| ParseError::new("csvlog log_time is not a timestamp"))?;
        let (timestamp, zone_error) = match time.resolve() {
            Ok(ts) => (Some(ts), None),
            Err(e) => (None, Some(e)),
        };
        // A severity PostgreSQL translated (lc_messages) is kept in `severity`, level INFO.
        let level = severity::level(&columns[SEVERITY]).unwrap_or(Level::Info);
        let message = std::mem::take(&mut columns[MESSAGE]);
        let mut parsed = Parsed::new(timestamp, level, message);
        for (index, value) in columns.into_iter().enumerate().take(count) {
            match (index, COLUMNS.get(index).copied().flatten()) {
                (_, Some(key)) => fields::push_text(&mut parsed, key, value),
                (CONNECTION_FROM, None) => fields::push_host_colon_port(&mut parsed, value),
                (SESSION_START, None) => fields::push_session_start(&mut parsed, value),
                (SEVERITY, None) => fields::push_text(&mut parsed, "severity", value),
                (LOG_TIME | MESSAGE, None) | (_, None) => {}
            }
        }
        for (index, value) in (COLUMNS.len() + 1..).zip(later) {
            fields::push_text(&mut parsed, later_column(index), value);
        }
        fields::push_duration(&mut parsed);
        Ok((parsed, zone_error))
    }
}

impl Parser for CsvParser {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        fields::strict(self.parse_entry(entry))
    }

    fn record(&self, entry: &[u8], ctx: &RecordContext, read_time: Timestamp) -> Record {
        let entry = crate::record::strip_cr(entry);
        fields::lenient(self.parse_entry(entry), entry, ctx, read_time)
    }

    /// A row goes on while one of its quoted fields is open: an odd count of quotes so far
    /// (an escaped quote is two quotes and keeps the parity).
    fn continues(&self, pending: &[u8], _line: &[u8]) -> bool {
        memchr::memchr_iter(b'"', pending).count() % 2 == 1
    }

    fn is_multiline(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "postgres-csv"
    }
}

/// The field name of a column beyond the known ones (`index` counts from 1).
fn later_column(index: usize) -> Cow<'static, str> {
    Cow::Owned(format!("column_{index}"))
}

/// Splits one CSV row into `columns`, and columns past those into `later`; returns how many
/// there were. Quoted fields borrow from the row unless they contain `""` escapes.
fn split_row<'a>(
    row: &'a [u8],
    columns: &mut [Cow<'a, str>; 26],
    later: &mut Vec<Cow<'a, str>>,
) -> Result<usize, ParseError> {
    let row = crate::record::strip_cr(row);
    let mut pos = 0;
    let mut count = 0;
    loop {
        if count >= columns.len() {
            later.push(Cow::Borrowed(""));
        }
        let slot = match columns.get_mut(count) {
            Some(slot) => slot,
            None => later
                .last_mut()
                .ok_or_else(|| ParseError::new("csvlog: no column"))?,
        };
        count += 1;
        let rest = row.get(pos..).unwrap_or_default();
        let (value, used) = if rest.first() == Some(&b'"') {
            quoted(rest)?
        } else {
            let len = memchr::memchr(b',', rest).unwrap_or(rest.len());
            (text(rest.get(..len).unwrap_or_default()), len)
        };
        *slot = value;
        pos += used;
        match row.get(pos) {
            None => return Ok(count),
            Some(b',') => pos += 1,
            Some(_) => return Err(ParseError::new("csvlog: text after a closing quote")),
        }
    }
}

/// A quoted field at the start of `input` (which starts with `"`): its text and the bytes
/// it spans, quotes included.
fn quoted(input: &[u8]) -> Result<(Cow<'_, str>, usize), ParseError> {
    let body = input.get(1..).unwrap_or_default();
    let mut owned: Option<Vec<u8>> = None;
    let mut pos = 0;
    loop {
        let Some(quote) = memchr::memchr(b'"', body.get(pos..).unwrap_or_default()) else {
            return Err(ParseError::new("csvlog: unterminated quoted field"));
        };
        let end = pos + quote;
        if body.get(end + 1) == Some(&b'"') {
            let buf = owned.get_or_insert_with(Vec::new);
            buf.extend_from_slice(body.get(pos..=end).unwrap_or_default());
            pos = end + 2;
            continue;
        }
        let value = match owned {
            None => text(body.get(..end).unwrap_or_default()),
            Some(mut buf) => {
                buf.extend_from_slice(body.get(pos..end).unwrap_or_default());
                Cow::Owned(String::from_utf8_lossy(&buf).into_owned())
            }
        };
        return Ok((value, end + 2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Assembler;

    const PG13: &str = r#"2021-02-14 10:45:48.164 UTC,"postgres","postgres",86,"172.24.0.1:48978",6028ff3a.56,6,"idle in transaction",2021-02-14 10:45:14 UTC,3/4,0,FATAL,25P03,"terminating connection due to idle-in-transaction timeout",,,,,,,,,"psql","client backend""#;

    #[test]
    fn pg13_row() {
        let parsed = CsvParser.parse(PG13.as_bytes()).unwrap();
        assert_eq!(
            parsed.timestamp,
            Some("2021-02-14T10:45:48.164Z".parse().unwrap())
        );
        assert_eq!(parsed.level, Level::Critical);
        assert_eq!(
            parsed.message,
            "terminating connection due to idle-in-transaction timeout"
        );
        for (key, value) in [
            ("user", "postgres"),
            ("database", "postgres"),
            ("pid", "86"),
            ("remote_host", "172.24.0.1"),
            ("remote_port", "48978"),
            ("session_id", "6028ff3a.56"),
            ("line_num", "6"),
            ("command_tag", "idle in transaction"),
            ("session_start", "2021-02-14T10:45:14Z"),
            ("virtual_xid", "3/4"),
            ("xid", "0"),
            ("severity", "FATAL"),
            ("sql_state", "25P03"),
            ("application_name", "psql"),
            ("backend_type", "client backend"),
        ] {
            assert_eq!(parsed.field(key), Some(value), "{key}");
        }
        assert_eq!(parsed.field("detail"), None);
    }

    #[test]
    fn quotes_newlines_and_pg14_columns() {
        let row = "2024-01-05 10:00:00.000 CEST,\"bob\",\"db\",7,\"[local]\",a.b,1,\"SELECT\",2024-01-05 09:00:00 CEST,,0,ERROR,42P01,\"relation \"\"t\"\"\nmissing\",\"d\",,,,,\"select *\n from t\",15,,\"psql\",\"client backend\",,-42";
        let mut assembler = Assembler::new(1 << 16);
        let mut done = Vec::new();
        for (offset, line) in (0u64..).zip(row.split('\n')) {
            done.extend(assembler.push(&CsvParser, line.as_bytes(), offset, offset + 1));
        }
        assert!(done.is_empty(), "row still open until the next line");
        let entry = assembler.flush().unwrap();
        let parsed = CsvParser.parse(&entry.bytes).unwrap();
        assert_eq!(parsed.message, "relation \"t\"\nmissing");
        assert_eq!(parsed.field("statement"), Some("select *\n from t"));
        assert_eq!(parsed.field("statement_pos"), Some("15"));
        assert_eq!(parsed.field("remote_host"), Some("[local]"));
        assert_eq!(parsed.field("query_id"), Some("-42"));
        assert_eq!(parsed.field("virtual_xid"), None);
        assert_eq!(
            parsed.timestamp,
            Some("2024-01-05T08:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn malformed_rows() {
        for bad in [
            &b""[..],
            b"a,b,c",
            b"2021-02-14 10:45:48.164 UTC,\"unterminated",
            b"2021-02-14 10:45:48.164 UTC,\"x\"y,",
        ] {
            assert!(
                CsvParser.parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let err = CsvParser
            .parse(b"2021-02-14 10:45:48.164 UTC,a,b,1,,s,1,,,,,LOG,,m")
            .unwrap_err();
        assert_eq!(
            err.reason,
            "csvlog row has 14 columns (PostgreSQL writes at least 22)"
        );
    }

    /// A PG 13 row (24 columns) cut or extended to `count` columns.
    fn row_with(count: usize) -> String {
        let mut columns: Vec<String> = split_for_test(PG13);
        columns.truncate(count);
        while columns.len() < count {
            columns.push(format!("\"extra {}\"", columns.len() + 1));
        }
        columns.join(",")
    }

    fn split_for_test(row: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        for c in row.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    current.push(c);
                }
                ',' if !quoted => out.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        out.push(current);
        out
    }

    #[test]
    fn every_column_count_from_22_up_parses_by_position() {
        for count in 22..=30 {
            let row = row_with(count);
            let parsed = CsvParser
                .parse(row.as_bytes())
                .unwrap_or_else(|e| panic!("{count} columns: {e}"));
            assert_eq!(
                parsed.message, "terminating connection due to idle-in-transaction timeout",
                "{count}"
            );
            assert_eq!(parsed.field("sql_state"), Some("25P03"), "{count}");
            let app = (count >= 23).then_some("psql");
            assert_eq!(parsed.field("application_name"), app, "{count}");
            let backend = (count >= 24).then_some("client backend");
            assert_eq!(parsed.field("backend_type"), backend, "{count}");
            assert_eq!(
                parsed.field("leader_pid"),
                (count >= 25).then_some("extra 25"),
                "{count}"
            );
            assert_eq!(
                parsed.field("query_id"),
                (count >= 26).then_some("extra 26"),
                "{count}"
            );
            for later in 27..=count {
                let want = format!("extra {later}");
                assert_eq!(
                    parsed.field(&format!("column_{later}")),
                    Some(want.as_str()),
                    "{count}"
                );
            }
            assert_eq!(parsed.field(&format!("column_{}", count + 1)), None);
        }
    }

    #[test]
    fn continuation_follows_quote_parity() {
        assert!(CsvParser.continues(b"a,\"open", b"x"));
        assert!(!CsvParser.continues(b"a,\"closed\"", b"x"));
        assert!(CsvParser.continues(b"a,\"has \"\" escape", b"x"));
    }
}

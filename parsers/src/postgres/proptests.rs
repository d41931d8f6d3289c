//! Property tests: entries rendered the way PostgreSQL writes them (through several
//! `log_line_prefix` values, as csvlog rows, as jsonlog objects) parse back to what was
//! rendered; arbitrary bytes and prefixes never panic.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use proptest::prelude::*;

use super::severity::Label;
use super::{CsvParser, JsonParser, StderrParser};
use crate::{Assembler, Level, Parser, RecordContext};

/// One entry as a PostgreSQL process would log it.
#[derive(Debug, Clone)]
struct Entry {
    millis: i64,
    /// Zone as printed, and its offset in seconds.
    zone: (&'static str, i32),
    pid: u32,
    line_num: u32,
    /// `None`: a background process (no session: `%q` stops the prefix).
    session: Option<Session>,
    backend_type: &'static str,
    severity: (&'static str, Level),
    sql_state: Option<String>,
    message: Vec<String>,
    labels: Vec<(Label, Vec<String>)>,
}

#[derive(Debug, Clone)]
struct Session {
    user: String,
    database: String,
    application_name: &'static str,
    host: String,
    port: u16,
    command_tag: &'static str,
    session_id: String,
    vxid: String,
}

const ZONES: [(&str, i32); 7] = [
    ("UTC", 0),
    ("CEST", 7200),
    ("CET", 3600),
    ("EST", -18000),
    ("PDT", -25200),
    ("+03", 10800),
    ("-0330", -12600),
];

const SEVERITIES: [(&str, Level); 9] = [
    ("DEBUG", Level::Debug),
    ("DEBUG2", Level::Debug),
    ("LOG", Level::Info),
    ("INFO", Level::Info),
    ("NOTICE", Level::Notice),
    ("WARNING", Level::Warn),
    ("ERROR", Level::Error),
    ("FATAL", Level::Critical),
    ("PANIC", Level::Emergency),
];

/// Message text: anything printable but newlines, `|` (a separator in the prefixes below) and
/// `:` (so a message never reads as a verbose SQLSTATE), non-ASCII included.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.'\"()=_\\-\t@\\[\\]é漢]{0,24}"
}

fn lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 1..4)
}

fn session() -> impl Strategy<Value = Session> {
    (
        "[a-z][a-z0-9_]{0,7}",
        "[a-z][a-z0-9_$]{0,7}",
        prop::sample::select(vec!["psql", "pgAdmin 4 - DB", "app_x"]),
        "(10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3})|(::1)|(\\[local\\])",
        1u16..,
        prop::sample::select(vec!["SELECT", "idle", "idle in transaction", "INSERT"]),
        "[0-9a-f]{8}\\.[0-9a-f]{1,5}",
        "([0-9]{1,3}/[0-9]{1,6})?",
    )
        .prop_map(
            |(user, database, application_name, host, port, command_tag, session_id, vxid)| {
                Session {
                    user,
                    database,
                    application_name,
                    host,
                    port,
                    command_tag,
                    session_id,
                    vxid,
                }
            },
        )
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        946_684_800_000i64..1_900_000_000_000,
        prop::sample::select(ZONES.to_vec()),
        1u32..4_000_000,
        1u32..100_000,
        prop::option::of(session()),
        prop::sample::select(vec!["client backend", "checkpointer", "autovacuum worker"]),
        prop::sample::select(SEVERITIES.to_vec()),
        prop::option::of("[0-9][0-9A-Z]{4}"),
        lines(),
        prop::collection::vec((prop::sample::select(Label::ALL.to_vec()), lines()), 0..3),
    )
        .prop_map(
            |(
                millis,
                zone,
                pid,
                line_num,
                session,
                backend_type,
                severity,
                sql_state,
                message,
                mut labels,
            )| {
                // One line per label, as PostgreSQL writes them.
                labels.sort_by_key(|(label, _)| *label as usize);
                labels.dedup_by_key(|(label, _)| *label as usize);
                Entry {
                    millis,
                    zone,
                    pid,
                    line_num,
                    session,
                    backend_type,
                    severity,
                    sql_state,
                    message,
                    labels,
                }
            },
        )
}

fn civil(millis: i64, offset: i32, with_millis: bool) -> String {
    let ts = Timestamp::from_millisecond(millis).unwrap();
    let tz = TimeZone::fixed(Offset::from_seconds(offset).unwrap());
    let dt = ts.to_zoned(tz).datetime();
    let mut out = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if with_millis {
        out.push_str(&format!(".{:03}", dt.millisecond()));
    }
    out
}

/// Session start: one hour before the entry, whole seconds.
fn session_start_millis(e: &Entry) -> i64 {
    (e.millis / 1000 - 3600) * 1000
}

/// What the parser should give back for `e`.
#[derive(Debug, PartialEq)]
struct Expected {
    timestamp: Option<Timestamp>,
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
}

/// Renders `e`'s prefix like PostgreSQL's `log_line_prefix` (elog.c); records in `fields` the
/// values a parser should report.
fn render_prefix(e: &Entry, prefix: &str, fields: &mut BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '-') {
            width.push(d);
            chars.next();
        }
        let Some(letter) = chars.next() else { break };
        let s = e.session.as_ref();
        let (key, value) = match letter {
            '%' => {
                out.push('%');
                continue;
            }
            'q' if s.is_none() => break,
            'q' => continue,
            'm' => (
                "",
                format!("{} {}", civil(e.millis, e.zone.1, true), e.zone.0),
            ),
            't' => (
                "",
                format!("{} {}", civil(e.millis, e.zone.1, false), e.zone.0),
            ),
            'n' => (
                "",
                format!(
                    "{}.{:03}",
                    e.millis.div_euclid(1000),
                    e.millis.rem_euclid(1000)
                ),
            ),
            's' => {
                let start = session_start_millis(e);
                let value = format!("{} {}", civil(start, e.zone.1, false), e.zone.0);
                let ts = Timestamp::from_millisecond(start).unwrap().to_string();
                fields.insert("session_start".into(), ts);
                out.push_str(&value);
                continue;
            }
            'p' => ("pid", e.pid.to_string()),
            'P' => ("leader_pid", String::new()),
            'l' => ("line_num", e.line_num.to_string()),
            'b' => ("backend_type", e.backend_type.to_owned()),
            'x' => ("xid", "0".to_owned()),
            'e' => ("sql_state", "00000".to_owned()),
            'Q' => ("query_id", (-(i64::from(e.pid))).to_string()),
            'c' => (
                "session_id",
                s.map_or_else(
                    || format!("{:x}.{:x}", e.pid, e.pid),
                    |s| s.session_id.clone(),
                ),
            ),
            'v' => ("virtual_xid", s.map(|s| s.vxid.clone()).unwrap_or_default()),
            'u' => ("user", s.map(|s| s.user.clone()).unwrap_or_default()),
            'd' => (
                "database",
                s.map(|s| s.database.clone()).unwrap_or_default(),
            ),
            'a' => (
                "application_name",
                s.map(|s| s.application_name.to_owned()).unwrap_or_default(),
            ),
            'i' => (
                "command_tag",
                s.map(|s| s.command_tag.to_owned()).unwrap_or_default(),
            ),
            'h' => ("remote_host", s.map(|s| s.host.clone()).unwrap_or_default()),
            'L' => (
                "local_address",
                s.map(|_| "10.9.9.9".to_owned()).unwrap_or_default(),
            ),
            'r' => {
                if let Some(s) = s {
                    fields.insert("remote_host".into(), s.host.clone());
                    fields.insert("remote_port".into(), s.port.to_string());
                    out.push_str(&format!("{}({})", s.host, s.port));
                }
                continue;
            }
            other => panic!("test prefix has %{other}"),
        };
        let value = match width.parse::<i32>() {
            Ok(w) if w < 0 => format!("{value:<width$}", width = w.unsigned_abs() as usize),
            Ok(w) => format!("{value:>width$}", width = w as usize),
            Err(_) => value,
        };
        let trimmed = value.trim();
        if !key.is_empty() && !trimmed.is_empty() {
            fields.insert(key.to_owned(), trimmed.to_owned());
        }
        out.push_str(&value);
    }
    out
}

/// The lines PostgreSQL writes for `e`, and what should be parsed from them.
fn render_stderr(e: &Entry, prefix: &str) -> (Vec<String>, Expected) {
    let mut fields = BTreeMap::new();
    let head = render_prefix(e, prefix, &mut fields);
    let has_time = ["%m", "%t", "%n"].iter().any(|t| prefix.contains(t));
    let mut lines = Vec::new();
    let code = e
        .sql_state
        .as_ref()
        .map(|c| format!("{c}: "))
        .unwrap_or_default();
    lines.push(format!("{head}{}:  {code}{}", e.severity.0, e.message[0]));
    lines.extend(e.message[1..].iter().map(|l| format!("\t{l}")));
    fields.insert("severity".into(), e.severity.0.into());
    if let Some(code) = &e.sql_state {
        fields.insert("sql_state".into(), code.clone());
    }
    for (label, text) in &e.labels {
        lines.push(format!("{head}{}:  {}", label.word(), text[0]));
        lines.extend(text[1..].iter().map(|l| format!("\t{l}")));
        let joined = text.join("\n");
        if !joined.is_empty() {
            fields.insert(label.field().into(), joined);
        }
    }
    let timestamp = if !has_time {
        None
    } else if prefix.contains("%m") || prefix.contains("%n") {
        Some(Timestamp::from_millisecond(e.millis).unwrap())
    } else {
        Some(Timestamp::from_millisecond(e.millis / 1000 * 1000).unwrap())
    };
    let expected = Expected {
        timestamp,
        level: e.severity.1,
        message: e.message.join("\n"),
        fields,
    };
    (lines, expected)
}

const PREFIXES: [&str; 6] = [
    "%m [%p] ",
    "%m [%p] %q%u@%d ",
    "%m [%p-%l] %q%u@%d ",
    "%t [%p]: [%l-1] %quser=%u,db=%d,app=%a,client=%h ",
    "%n %c %b|%q%a|%r|%u|%d|%i|%v|%x|%e|%Q: ",
    "%s|%P|%L|%-9p|%10l|%q%u %d ",
];

fn assemble(parser: &dyn Parser, lines: &[String]) -> Vec<Vec<u8>> {
    let mut assembler = Assembler::new(1 << 20);
    let mut entries = Vec::new();
    for (offset, line) in (0u64..).zip(lines) {
        entries.extend(assembler.push(parser, line.as_bytes(), offset, offset + 1));
    }
    entries.extend(assembler.flush());
    entries.into_iter().map(|e| e.bytes).collect()
}

fn parsed_back(parser: &dyn Parser, entry: &[u8]) -> Expected {
    let parsed = parser.parse(entry).unwrap_or_else(|e| {
        panic!("{e}: {:?}", String::from_utf8_lossy(entry));
    });
    Expected {
        timestamp: parsed.timestamp,
        level: parsed.level,
        message: parsed.message.into_owned(),
        fields: parsed
            .fields
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    }
}

/// A csvlog row for `e` (PostgreSQL 14+, 26 columns), and what should be parsed from it.
fn render_csv(e: &Entry) -> (String, Expected) {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let s = e.session.as_ref();
    let label = |wanted: Label| {
        e.labels
            .iter()
            .find(|(l, _)| *l == wanted)
            .map(|(_, text)| text.join("\n"))
            .unwrap_or_default()
    };
    let start = session_start_millis(e);
    let code = e.sql_state.clone().unwrap_or_else(|| "00000".into());
    let columns = [
        format!("{} {}", civil(e.millis, e.zone.1, true), e.zone.0),
        s.map(|s| quote(&s.user)).unwrap_or_default(),
        s.map(|s| quote(&s.database)).unwrap_or_default(),
        e.pid.to_string(),
        s.map(|s| quote(&format!("{}:{}", s.host, s.port)))
            .unwrap_or_default(),
        format!("{:x}.{:x}", e.pid, e.pid),
        e.line_num.to_string(),
        s.map(|s| quote(s.command_tag)).unwrap_or_default(),
        format!("{} {}", civil(start, e.zone.1, false), e.zone.0),
        s.map(|s| s.vxid.clone()).unwrap_or_default(),
        "0".into(),
        e.severity.0.into(),
        code.clone(),
        quote(&e.message.join("\n")),
        quote(&label(Label::Detail)),
        quote(&label(Label::Hint)),
        quote(&label(Label::Query)),
        String::new(),
        quote(&label(Label::Context)),
        quote(&label(Label::Statement)),
        String::new(),
        quote(&label(Label::Location)),
        s.map(|s| quote(s.application_name)).unwrap_or_default(),
        quote(e.backend_type),
        String::new(),
        "0".into(),
    ];
    let mut fields = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            fields.insert(k.to_owned(), v);
        }
    };
    if let Some(s) = s {
        put("user", s.user.clone());
        put("database", s.database.clone());
        put("remote_host", s.host.clone());
        put("remote_port", s.port.to_string());
        put("command_tag", s.command_tag.into());
        put("virtual_xid", s.vxid.clone());
        put("application_name", s.application_name.into());
    }
    put("pid", e.pid.to_string());
    put("session_id", format!("{:x}.{:x}", e.pid, e.pid));
    put("line_num", e.line_num.to_string());
    put(
        "session_start",
        Timestamp::from_millisecond(start).unwrap().to_string(),
    );
    put("xid", "0".into());
    put("severity", e.severity.0.into());
    put("sql_state", code);
    for l in Label::ALL {
        put(l.field(), label(l));
    }
    put("backend_type", e.backend_type.into());
    put("query_id", "0".into());
    let expected = Expected {
        timestamp: Some(Timestamp::from_millisecond(e.millis).unwrap()),
        level: e.severity.1,
        message: e.message.join("\n"),
        fields,
    };
    (columns.join(","), expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn stderr_round_trip(entries in prop::collection::vec(entry(), 1..6), which in 0..PREFIXES.len()) {
        let prefix = PREFIXES[which];
        let parser = StderrParser::new(prefix).unwrap();
        let mut lines = Vec::new();
        let mut expected = Vec::new();
        for e in &entries {
            let (l, x) = render_stderr(e, prefix);
            lines.extend(l);
            expected.push(x);
        }
        let got: Vec<Expected> = assemble(&parser, &lines)
            .iter()
            .map(|entry| parsed_back(&parser, entry))
            .collect();
        prop_assert_eq!(got, expected, "prefix {:?}, lines {:#?}", prefix, lines);
    }

    #[test]
    fn csv_round_trip(entries in prop::collection::vec(entry(), 1..6)) {
        let mut lines = Vec::new();
        let mut expected = Vec::new();
        for e in &entries {
            let (row, x) = render_csv(e);
            lines.extend(row.split('\n').map(str::to_owned));
            expected.push(x);
        }
        let got: Vec<Expected> = assemble(&CsvParser, &lines)
            .iter()
            .map(|entry| parsed_back(&CsvParser, entry))
            .collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn json_round_trip(e in entry()) {
        let (_, mut expected) = render_csv(&e);
        let f = &expected.fields;
        let mut object = serde_json::Map::new();
        object.insert("timestamp".into(), format!("{} {}", civil(e.millis, e.zone.1, true), e.zone.0).into());
        object.insert("pid".into(), e.pid.into());
        object.insert("line_num".into(), e.line_num.into());
        object.insert("txid".into(), 0.into());
        object.insert("query_id".into(), 0.into());
        object.insert("message".into(), expected.message.clone().into());
        object.insert("session_start".into(), format!("{} {}", civil(session_start_millis(&e), e.zone.1, false), e.zone.0).into());
        for (json, field) in [
            ("user", "user"), ("dbname", "database"), ("remote_host", "remote_host"),
            ("session_id", "session_id"), ("ps", "command_tag"), ("vxid", "virtual_xid"),
            ("error_severity", "severity"), ("state_code", "sql_state"), ("detail", "detail"),
            ("hint", "hint"), ("internal_query", "query"), ("context", "context"),
            ("statement", "statement"), ("application_name", "application_name"),
            ("backend_type", "backend_type"),
        ] {
            if let Some(v) = f.get(field) {
                object.insert(json.into(), v.clone().into());
            }
        }
        if let Some(port) = f.get("remote_port") {
            object.insert("remote_port".into(), port.parse::<u16>().unwrap().into());
        }
        // jsonlog spells location out in three keys.
        if let Some(location) = expected.fields.get("location").cloned() {
            object.insert("func_name".into(), "f".into());
            object.insert("file_name".into(), location.clone().into());
            object.insert("file_line_num".into(), 7.into());
            expected.fields.insert("location".into(), format!("f, {location}:7"));
        }
        let line = serde_json::Value::Object(object).to_string();
        prop_assert_eq!(parsed_back(&JsonParser, line.as_bytes()), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), pending in prop::collection::vec(any::<u8>(), 0..100)) {
        let ctx = RecordContext::new("t", "h");
        let now = Timestamp::UNIX_EPOCH;
        let mut parsers: Vec<Box<dyn Parser>> = vec![Box::new(CsvParser), Box::new(JsonParser)];
        for prefix in PREFIXES {
            parsers.push(Box::new(StderrParser::new(prefix).unwrap()));
        }
        for parser in &parsers {
            let _ = parser.parse(&bytes);
            let _ = parser.continues(&pending, &bytes);
            let _ = parser.record(&bytes, &ctx, now);
        }
    }

    #[test]
    fn mangled_lines_never_panic(e in entry(), which in 0..PREFIXES.len(), cut in any::<prop::sample::Index>(), junk in any::<u8>()) {
        let prefix = PREFIXES[which];
        let parser = StderrParser::new(prefix).unwrap();
        let (lines, _) = render_stderr(&e, prefix);
        let mut bytes = lines.join("\n").into_bytes();
        let at = cut.index(bytes.len().max(1));
        bytes.truncate(at);
        bytes.push(junk);
        let _ = parser.parse(&bytes);
        let _ = parser.continues(&bytes, &bytes);
    }

    #[test]
    fn arbitrary_prefixes_never_panic(spec in "(%[-0-9]{0,3}[a-zA-Z%]|[ \\[\\]@|:a-z]|é){0,12}", line in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(parser) = StderrParser::new(&spec) {
            let _ = parser.parse(&line);
            let _ = parser.continues(&line, &line);
        }
    }
}

//! Whole-line tests of the syslog parser on hand-written fixtures, and property tests that
//! render random entries in each form and parse them back.

use std::borrow::Cow;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::SyslogParser;
use crate::{Assembler, Level, Parsed, Parser, RecordContext};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A parser in UTC that reads lines on 2024-06-15 at noon.
fn utc() -> SyslogParser {
    SyslogParser::new(TimeZone::UTC).with_reference(ts("2024-06-15T12:00:00Z"))
}

fn fields<'a>(p: &'a Parsed<'_>) -> Vec<(&'a str, &'a str)> {
    p.fields
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect()
}

#[test]
fn rfc3164_with_pri() {
    let parser = utc();
    let p = parser
        .parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
        .unwrap();
    assert_eq!(p.timestamp, Some(ts("2023-10-11T22:14:15Z")));
    assert_eq!(p.level, Level::Critical);
    assert_eq!(p.message, "'su root' failed for lonvick on /dev/pts/8");
    assert_eq!(
        fields(&p),
        [
            ("appname", "su"),
            ("facility", "auth"),
            ("hostname", "mymachine"),
            ("severity", "crit"),
        ]
    );
}

#[test]
fn rfc3164_without_pri_is_info() {
    let parser = utc();
    let p = parser
        .parse(b"Jun  5 09:23:38 veridian automount[7998]: lookup(file): lookup for foobar failed")
        .unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-06-05T09:23:38Z")));
    assert_eq!(p.level, Level::Info);
    assert_eq!(p.message, "lookup(file): lookup for foobar failed");
    assert_eq!(
        fields(&p),
        [
            ("appname", "automount"),
            ("hostname", "veridian"),
            ("procid", "7998")
        ]
    );
}

#[test]
fn rfc3339_file_format() {
    let parser = utc();
    for (line, want) in [
        (
            "2024-01-05T10:00:00.123456+01:00 host tag[42]: msg",
            "2024-01-05T09:00:00.123456Z",
        ),
        (
            "2024-01-05T10:00:00Z host tag[42]: msg",
            "2024-01-05T10:00:00Z",
        ),
        (
            "2024-01-05T10:00:00+0400 host tag[42]: msg",
            "2024-01-05T06:00:00Z",
        ),
        (
            "<30>2024-01-05T10:00:00 host tag[42]: msg",
            "2024-01-05T10:00:00Z",
        ),
    ] {
        let p = parser.parse(line.as_bytes()).unwrap();
        assert_eq!(p.timestamp, Some(ts(want)), "{line}");
        assert_eq!(p.field("hostname"), Some("host"));
        assert_eq!(p.field("appname"), Some("tag"));
        assert_eq!(p.field("procid"), Some("42"));
        assert_eq!(p.message, "msg");
    }
}

#[test]
fn rfc3339_without_offset_uses_the_configured_zone() {
    let parser = SyslogParser::new(TimeZone::get("Europe/Paris").unwrap());
    let p = parser.parse(b"2024-01-05T10:00:00 host tag: msg").unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-01-05T09:00:00Z")));
}

#[test]
fn rfc5424_examples_from_the_rfc() {
    let parser = utc();
    let p = parser
        .parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8".as_bytes())
        .unwrap();
    assert_eq!(p.timestamp, Some(ts("2003-10-11T22:14:15.003Z")));
    assert_eq!(p.level, Level::Critical);
    assert_eq!(p.message, "'su root' failed for lonvick on /dev/pts/8");
    assert_eq!(
        fields(&p),
        [
            ("facility", "auth"),
            ("severity", "crit"),
            ("hostname", "mymachine.example.com"),
            ("appname", "su"),
            ("msgid", "ID47"),
        ]
    );

    let p = parser
        .parse(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
        .unwrap();
    assert_eq!(p.timestamp, Some(ts("2003-08-24T12:14:15.000003Z")));
    assert_eq!(p.level, Level::Notice);
    assert_eq!(p.field("facility"), Some("local4"));
    assert_eq!(p.field("procid"), Some("8710"));
    assert_eq!(p.field("msgid"), None);
    assert_eq!(p.message, "%% It's time to make the do-nuts.");

    let p = parser
        .parse(br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#)
        .unwrap();
    assert_eq!(p.message, "");
    assert_eq!(
        p.field("sd.exampleSDID@32473.eventSource"),
        Some("Application")
    );
    assert_eq!(p.field("sd.examplePriority@32473.class"), Some("high"));
}

#[test]
fn rfc5424_all_nil() {
    let parser = utc();
    let p = parser.parse(b"<13>1 - - - - - -").unwrap();
    assert_eq!(p.timestamp, None);
    assert_eq!(p.message, "");
    assert_eq!(fields(&p), [("facility", "user"), ("severity", "notice")]);
}

#[test]
fn rfc5424_body_without_pri() {
    let parser = utc();
    let p = parser
        .parse(br#"2022-08-27T14:22:01.888Z space01 NSX 4828 SWITCHING [abc@6876 comp="abc-edge" level="INFO"] dynamic arp entry"#)
        .unwrap();
    assert_eq!(p.level, Level::Info);
    assert_eq!(
        fields(&p),
        [
            ("hostname", "space01"),
            ("appname", "NSX"),
            ("procid", "4828"),
            ("msgid", "SWITCHING"),
            ("sd.abc@6876.comp", "abc-edge"),
            ("sd.abc@6876.level", "INFO"),
        ]
    );
    assert_eq!(p.message, "dynamic arp entry");
}

#[test]
fn a_tag_wins_over_the_rfc5424_reading() {
    let parser = utc();
    let p = parser
        .parse(b"2022-08-27T14:22:01Z h app: 1 - - x")
        .unwrap();
    assert_eq!(p.field("appname"), Some("app"));
    assert_eq!(p.field("procid"), None);
    assert_eq!(p.message, "1 - - x");
}

#[test]
fn bad_rfc5424_after_pri_version_is_an_error() {
    let parser = utc();
    for bad in [
        "<13>1 2003-10-11T22:14:15Z host app - - [unterminated",
        "<13>1 yesterday host app - - - msg",
        "<13>1 -",
    ] {
        assert!(parser.parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn repeated_marker_is_a_record() {
    let parser = utc();
    let p = parser
        .parse(b"--- last message repeated 3 times ---")
        .unwrap();
    assert_eq!(p.timestamp, None);
    assert_eq!(p.message, "--- last message repeated 3 times ---");
    let p = parser
        .parse(b"Apr  4 03:39:57 --- last message repeated 1 time ---")
        .unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-04-04T03:39:57Z")));
    assert_eq!(p.message, "--- last message repeated 1 time ---");
    assert!(p.fields.is_empty());
}

#[test]
fn lines_without_a_header_are_errors() {
    let parser = utc();
    for bad in [
        "Header1: abc",
        "",
        "syslog",
        "<13>hello",
        "<13>",
        "2024 was a year",
    ] {
        let err = parser.parse(bad.as_bytes()).unwrap_err();
        assert!(err.reason.starts_with("syslog:"), "{bad}: {err}");
    }
}

#[test]
fn unparsed_line_becomes_a_record_with_parse_error() {
    let parser = utc();
    let ctx = RecordContext::new("syslog", "here");
    let read = ts("2024-06-15T12:00:00Z");
    let r = parser.record(b"Header1: abc\r", &ctx, read);
    assert_eq!(r.message(), "Header1: abc");
    assert_eq!(r.timestamp, read);
    assert!(r.parse_error.is_some());
}

#[test]
fn trailing_cr_is_not_part_of_the_record() {
    let parser = utc();
    let p = parser.parse(b"Jun  5 09:23:38 h app: msg\r").unwrap();
    assert_eq!(p.message, "msg");
    let p = parser.parse(b"<13>1 - h app - - -\r").unwrap();
    assert_eq!(p.message, "");
    assert_eq!(p.field("msgid"), None);
}

#[test]
fn invalid_utf8_is_replaced() {
    let parser = utc();
    let p = parser.parse(b"Jun  5 09:23:38 h\xff app: m\xfe!").unwrap();
    assert_eq!(p.field("hostname"), Some("h\u{fffd}"));
    assert_eq!(p.message, "m\u{fffd}!");
    assert!(matches!(p.field("appname"), Some("app")));
    assert_eq!(p.fields[0].0, "appname");
    assert!(matches!(&p.fields[0].1, Cow::Borrowed(_)));
}

#[test]
fn french_month() {
    let parser = utc();
    let p = parser
        .parse("août 19 11:08:37 nlaptop symphorien[4961]: test".as_bytes())
        .unwrap();
    assert_eq!(p.timestamp, Some(ts("2023-08-19T11:08:37Z")));
    assert_eq!(p.field("appname"), Some("symphorien"));
}

#[test]
fn year_inference_across_new_year_in_a_zone() {
    let paris = TimeZone::get("Europe/Paris").unwrap();
    // Read just after midnight on Jan 1 in Paris (still Dec 31 in UTC).
    let parser = SyslogParser::new(paris.clone()).with_reference(ts("2024-12-31T23:00:30Z"));
    let p = parser.parse(b"Dec 31 23:59:59 h app: bye").unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-12-31T22:59:59Z")));
    // Read on Dec 31 a few seconds before midnight; the writer's clock is ahead.
    let parser = SyslogParser::new(paris).with_reference(ts("2024-12-31T22:59:50Z"));
    let p = parser.parse(b"Jan  1 00:00:01 h app: hi").unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-12-31T23:00:01Z")));
}

#[test]
fn dst_fold_and_gap() {
    let paris = TimeZone::get("Europe/Paris").unwrap();
    let parser = SyslogParser::new(paris).with_reference(ts("2024-11-01T00:00:00Z"));
    // 02:30 happened twice on 2024-10-27; the earlier one is CEST (+02:00).
    let p = parser.parse(b"Oct 27 02:30:00 h app: fold").unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-10-27T00:30:00Z")));
    // 02:30 never happened on 2024-03-31; read with CET (+01:00), the offset before the gap.
    let p = parser.parse(b"Mar 31 02:30:00 h app: gap").unwrap();
    assert_eq!(p.timestamp, Some(ts("2024-03-31T01:30:00Z")));
}

#[test]
fn continuation_lines_are_indented() {
    let parser = utc();
    assert!(parser.is_multiline());
    assert!(parser.continues(b"x", b"\tmore"));
    assert!(parser.continues(b"x", b"  more"));
    assert!(!parser.continues(b"x", b"Jun  5 09:23:38 h app: msg"));
    assert!(!parser.continues(b"x", b"syslog"));
    assert!(!parser.continues(b"x", b""));
}

#[test]
fn multi_line_entry_through_the_assembler() {
    let parser = utc();
    let mut asm = Assembler::new(1 << 20);
    let lines: [&[u8]; 4] = [
        b"Aug 16 00:32:15 Tims-Air syslogd[314]: Configuration Notice:",
        b"\tASL Module \"com.apple.install\" claims selected messages.\r",
        b"\tThose messages may not appear in standard system log files.",
        b"Aug 16 00:32:16 Tims-Air syslogd[314]: next",
    ];
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        entries.extend(asm.push(&parser, line, i as u64, i as u64 + 1));
    }
    entries.extend(asm.flush());
    assert_eq!(entries.len(), 2);
    let p = parser.parse(&entries[0].bytes).unwrap();
    assert_eq!(
        p.message,
        "Configuration Notice:\n\tASL Module \"com.apple.install\" claims selected messages.\n\tThose messages may not appear in standard system log files."
    );
    assert_eq!(p.field("procid"), Some("314"));
    assert_eq!(parser.parse(&entries[1].bytes).unwrap().message, "next");
}

// ---- property tests -------------------------------------------------------------------

/// One entry to render, with what parsing it back must give.
#[derive(Debug, Clone)]
struct Entry {
    /// Seconds since the reference (2024-06-15T12:00:00Z), at most one day ahead.
    offset_secs: i64,
    nanos: i32,
    pri: Option<u8>,
    hostname: String,
    appname: String,
    procid: Option<String>,
    msgid: Option<String>,
    sd: Vec<(String, Vec<(String, String)>)>,
    bom: bool,
    message: String,
}

const REFERENCE: &str = "2024-06-15T12:00:00Z";

fn entry() -> impl Strategy<Value = Entry> {
    let sd_id = "[A-Za-z0-9@_-]{1,12}";
    let param = ("[A-Za-z0-9_-]{1,8}", r#"[^\r\n]{0,16}"#);
    let sd = proptest::collection::btree_map(
        sd_id,
        proptest::collection::btree_map(param.0, param.1, 0..4),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(id, params)| (id, params.into_iter().collect()))
            .collect()
    });
    (
        (-300 * 86_400i64..86_400, 0..1_000_000_000i32),
        proptest::option::of(0u8..192),
        "[A-Za-z0-9][A-Za-z0-9.-]{0,20}",
        "[A-Za-z0-9_./][A-Za-z0-9_./-]{0,20}",
        proptest::option::of("[0-9]{1,7}"),
        proptest::option::of("[A-Za-z0-9_]{1,32}"),
        sd,
        any::<bool>(),
        r"[^\r\n\x{FEFF}]{0,60}",
    )
        .prop_map(
            |((offset_secs, nanos), pri, hostname, appname, procid, msgid, sd, bom, message)| {
                Entry {
                    offset_secs,
                    nanos,
                    pri,
                    hostname,
                    appname,
                    procid,
                    msgid,
                    sd,
                    bom,
                    message,
                }
            },
        )
}

impl Entry {
    fn instant(&self, with_nanos: bool) -> Timestamp {
        let nanos = if with_nanos { self.nanos } else { 0 };
        ts(REFERENCE)
            .checked_add(jiff::SignedDuration::new(self.offset_secs, nanos))
            .unwrap()
    }

    fn pri_text(&self) -> String {
        self.pri.map(|p| format!("<{p}>")).unwrap_or_default()
    }

    fn bsd_tail(&self) -> String {
        let pid = self
            .procid
            .as_ref()
            .map(|p| format!("[{p}]"))
            .unwrap_or_default();
        format!("{} {}{pid}: {}", self.hostname, self.appname, self.message)
    }

    fn rfc3164(&self, tz: &TimeZone) -> String {
        let dt = tz.to_datetime(self.instant(false));
        format!(
            "{}{} {}",
            self.pri_text(),
            dt.strftime("%b %e %H:%M:%S"),
            self.bsd_tail()
        )
    }

    fn rfc3339(&self, offset: jiff::tz::Offset) -> String {
        format!(
            "{}{} {}",
            self.pri_text(),
            self.instant(true).display_with_offset(offset),
            self.bsd_tail()
        )
    }

    fn rfc5424(&self, offset: jiff::tz::Offset, with_pri: bool) -> String {
        let nil = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let mut sd = String::new();
        for (id, params) in &self.sd {
            sd.push('[');
            sd.push_str(id);
            for (name, value) in params {
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace(']', "\\]");
                sd.push_str(&format!(" {name}=\"{escaped}\""));
            }
            sd.push(']');
        }
        if sd.is_empty() {
            sd.push('-');
        }
        let head = match (with_pri, self.pri) {
            (true, Some(p)) => format!("<{p}>1 "),
            (true, None) => "<14>1 ".into(),
            (false, _) => String::new(),
        };
        let bom = if self.bom { "\u{feff}" } else { "" };
        format!(
            "{head}{} {} {} {} {} {sd} {bom}{}",
            self.instant(true).display_with_offset(offset),
            self.hostname,
            self.appname,
            nil(&self.procid),
            nil(&self.msgid),
            self.message
        )
    }

    fn expected_sd(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (id, params) in &self.sd {
            if params.is_empty() {
                out.push((format!("sd.{id}"), String::new()));
            }
            for (name, value) in params {
                out.push((format!("sd.{id}.{name}"), value.clone()));
            }
        }
        out
    }
}

fn owned(p: &Parsed<'_>) -> Vec<(String, String)> {
    p.fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pri_fields(pri: Option<u8>) -> Vec<(String, String)> {
    pri.and_then(super::pri::Pri::new)
        .map(|p| {
            vec![
                ("facility".into(), p.facility_name().into()),
                ("severity".into(), p.severity_name().into()),
            ]
        })
        .unwrap_or_default()
}

fn bsd_fields(e: &Entry) -> Vec<(String, String)> {
    let mut want = pri_fields(e.pri);
    want.push(("hostname".into(), e.hostname.clone()));
    want.push(("appname".into(), e.appname.clone()));
    if let Some(pid) = &e.procid {
        want.push(("procid".into(), pid.clone()));
    }
    // A BSD body's fields come in key order (the record's order, no sort needed).
    want.sort();
    want
}

fn level(pri: Option<u8>) -> Level {
    pri.map_or(Level::Info, |p| Level::from_syslog_severity(p % 8))
}

proptest! {
    #[test]
    fn rfc3164_round_trip(e in entry(), zone in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"])) {
        let tz = TimeZone::get(zone).unwrap();
        let parser = SyslogParser::new(tz.clone()).with_reference(ts(REFERENCE));
        let line = e.rfc3164(&tz);
        let p = parser.parse(line.as_bytes()).unwrap();
        // In a fold the parser takes the earlier instant: compare wall-clock times.
        prop_assert_eq!(tz.to_datetime(p.timestamp.unwrap()), tz.to_datetime(e.instant(false)));
        prop_assert_eq!(p.level, level(e.pri));
        prop_assert_eq!(owned(&p), bsd_fields(&e));
        prop_assert_eq!(p.message.as_ref(), e.message.as_str());
    }

    #[test]
    fn rfc3339_round_trip(e in entry(), offset_minutes in -14 * 60..=14 * 60i32) {
        let offset = jiff::tz::Offset::from_seconds(offset_minutes * 60).unwrap();
        let line = e.rfc3339(offset);
        let parser = utc();
        let p = parser.parse(line.as_bytes()).unwrap();
        prop_assert_eq!(p.timestamp, Some(e.instant(true)));
        prop_assert_eq!(p.level, level(e.pri));
        prop_assert_eq!(owned(&p), bsd_fields(&e));
        prop_assert_eq!(p.message.as_ref(), e.message.as_str());
    }

    #[test]
    fn rfc5424_round_trip(e in entry(), offset_minutes in -14 * 60..=14 * 60i32, with_pri in any::<bool>()) {
        let offset = jiff::tz::Offset::from_seconds(offset_minutes * 60).unwrap();
        let line = e.rfc5424(offset, with_pri);
        let parser = utc();
        let p = parser.parse(line.as_bytes()).unwrap();
        prop_assert_eq!(p.timestamp, Some(e.instant(true)));
        let pri = if with_pri { Some(e.pri.unwrap_or(14)) } else { None };
        prop_assert_eq!(p.level, level(pri));
        let mut want = pri_fields(pri);
        want.push(("hostname".into(), e.hostname.clone()));
        want.push(("appname".into(), e.appname.clone()));
        if let Some(pid) = &e.procid {
            want.push(("procid".into(), pid.clone()));
        }
        if let Some(msgid) = &e.msgid {
            want.push(("msgid".into(), msgid.clone()));
        }
        want.extend(e.expected_sd());
        prop_assert_eq!(owned(&p), want);
        prop_assert_eq!(p.message.as_ref(), e.message.as_str());
    }

    #[test]
    fn random_bytes_never_panic(
        prefix in prop::sample::select(vec![
            "", "<13>", "<13>1 ", "<13>1 - h a p m [x ", "Jan  1 00:00:00 ",
            "Feb 29 00:00:00 h ", "2024-01-01T00:00:00Z ", "2024-01-01T00:00:00Z h a p m [x@1 a=\"",
            "--- last message repeated ",
        ]),
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut line = prefix.as_bytes().to_vec();
        line.extend_from_slice(&bytes);
        let ctx = RecordContext::new("syslog", "h");
        let read = ts(REFERENCE);
        let _ = utc().parse(&line);
        let r = SyslogParser::new(TimeZone::UTC).record(&line, &ctx, read);
        prop_assert!(!r.message().ends_with('\r') || line.ends_with(b"\r\r"));
    }
}

#[test]
fn record_infers_the_year_from_the_read_time_and_a_fixed_offset_zone_converts_alike() {
    let ctx = RecordContext::new("syslog", "h");
    let line = b"Dec 31 23:59:59 host app: last second of a year";
    // No fixed reference: the read time is "now", so a December line read in January is
    // from the year before (the clock would say otherwise).
    let parser = SyslogParser::new(TimeZone::UTC);
    let r = parser.record(line, &ctx, ts("2021-01-01T00:00:10Z"));
    assert_eq!(r.timestamp, ts("2020-12-31T23:59:59Z"));
    // A fixed offset (the arithmetic path) and a named zone at the same offset (the
    // zone-rules path) give the same instant.
    let fixed = SyslogParser::new(TimeZone::fixed(jiff::tz::offset(2)));
    let named = SyslogParser::new(TimeZone::get("Africa/Johannesburg").unwrap());
    let read = ts("2024-06-15T12:00:00Z");
    let line = b"Mar  3 04:05:06.250 host app: msg";
    let (a, b) = (
        fixed.record(line, &ctx, read),
        named.record(line, &ctx, read),
    );
    assert_eq!(a.timestamp, ts("2024-03-03T02:05:06.25Z"));
    assert_eq!(a.timestamp, b.timestamp);
    // A leap second reads the same on either path.
    let leap = b"Jun 30 23:59:60 host app: leap";
    let (a, b) = (
        fixed.record(leap, &ctx, read),
        named.record(leap, &ctx, read),
    );
    assert_eq!(
        (a.timestamp, a.parse_error.clone(), a.message()),
        (b.timestamp, b.parse_error.clone(), b.message())
    );
}

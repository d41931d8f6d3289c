//! The syslog parser on the real logs in the shared corpus (see its README for each file's
//! variant). Every file is listed in [`FILES`] with how many records it makes and exactly
//! which ones are parse errors; the tests below then check each file's fields.
//!
//! Expected parse errors:
//! - `beats/test-syslog.log` line 2, `syslog`: Beats' "greedy multiline" sample continues an
//!   entry with an unindented line. Only TAB- or space-indented lines continue an entry (a
//!   looser rule would glue real headers we fail to recognise onto the previous record), so
//!   that line is an entry of its own without a syslog header.
//! - `lnav/logfile_syslog_with_header.0` lines 1-2, `Header1: abc` and `Header2: def`: a
//!   banner, not syslog.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use logship_parsers::syslog::SyslogParser;
use logship_parsers::{Assembler, Level, Parser, Record, RecordContext};
use serde_json::Value;

/// Every syslog log file in the corpus: path, records it makes, indexes of parse errors.
const FILES: [(&str, usize, &[usize]); 16] = [
    ("beats/auth-test.log", 10, &[]),
    ("beats/auth-timestamp.log", 2, &[]),
    ("beats/darwin-syslog-sample.log", 3, &[]),
    ("beats/iso8601_timestamp_multiline_syslog.log", 1, &[]),
    ("beats/suse-syslog.log", 2, &[]),
    ("beats/test-syslog.log", 2, &[1]),
    ("beats/tz-offset.log", 3, &[]),
    ("lnav/logfile_dst.0", 10, &[]),
    ("lnav/logfile_syslog.0", 4, &[]),
    ("lnav/logfile_syslog.1", 4, &[]),
    ("lnav/logfile_syslog.2", 3, &[]),
    ("lnav/logfile_syslog.3", 7, &[]),
    ("lnav/logfile_syslog_fr.0", 1, &[]),
    ("lnav/logfile_syslog_with_access_log.0", 5, &[]),
    ("lnav/logfile_syslog_with_header.0", 6, &[0, 1]),
    ("lnav/logfile_with_zones.0", 3, &[]),
];

/// Filebeat's expected output, compared field by field in `*_matches_expected_json`.
const EXPECTED_JSON: [&str; 2] = [
    "beats/suse-syslog.log-expected.json",
    "beats/tz-offset.log-expected.json",
];

/// When the files are read unless a test says otherwise: year inference is relative to it.
const READ_AT: &str = "2024-06-15T12:00:00Z";

fn corpus_root() -> Option<PathBuf> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/syslog"
    ));
    if root.is_dir() {
        return Some(root.to_path_buf());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus {} missing (CI=true)",
        root.display()
    );
    eprintln!("notice: corpus {} missing, test skipped", root.display());
    None
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn utc() -> SyslogParser {
    SyslogParser::new(TimeZone::UTC).with_reference(ts(READ_AT))
}

/// A record and where its entry starts in the file.
struct Parsed {
    start: u64,
    record: Record,
}

/// Records for every entry of the file, assembled as the tailer does: lines split at `\n`
/// (the last one may lack it), grouped by the parser's continuation rule.
fn records(parser: &SyslogParser, relative: &str) -> Option<Vec<Parsed>> {
    let bytes = std::fs::read(corpus_root()?.join(relative)).unwrap();
    let ctx = RecordContext::new("syslog", "test-host");
    let mut assembler = Assembler::new(1 << 20);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last() == Some(&&b""[..]) {
        lines.pop();
    }
    for line in lines {
        let end = offset + line.len() as u64 + 1;
        entries.extend(assembler.push(parser, line, offset, end));
        offset = end;
    }
    entries.extend(assembler.flush());
    let records = entries
        .iter()
        .map(|e| Parsed {
            start: e.start,
            record: parser.record(&e.bytes, &ctx, ts("2030-01-01T00:00:00Z")),
        })
        .collect();
    Some(records)
}

fn field<'r>(record: &'r Record, key: &str) -> Option<&'r str> {
    record.field(key)
}

#[test]
fn every_file_is_listed() {
    let Some(root) = corpus_root() else { return };
    let (mut logs, mut expected) = (Vec::new(), Vec::new());
    for dir in ["beats", "lnav"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let name = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            if name.ends_with("-expected.json") {
                expected.push(name);
            } else {
                logs.push(name);
            }
        }
    }
    logs.sort();
    expected.sort();
    let mut listed: Vec<&str> = FILES.iter().map(|(f, _, _)| *f).collect();
    listed.sort();
    assert_eq!(logs, listed);
    assert_eq!(expected, EXPECTED_JSON);
}

#[test]
fn exactly_the_expected_entries_fail() {
    for (file, count, errors) in FILES {
        let Some(records) = records(&utc(), file) else {
            return;
        };
        assert_eq!(records.len(), count, "{file}: record count");
        let failed: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, p)| p.record.parse_error.is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failed, errors, "{file}: entries that fail");
        for p in &records {
            assert!(!p.record.message().contains('\r'), "{file}");
            if p.record.parse_error.is_none() {
                assert_ne!(p.record.timestamp, ts("2030-01-01T00:00:00Z"), "{file}");
            }
        }
    }
}

/// Compares with Filebeat's own parse: instant (to the millisecond, Filebeat's precision),
/// hostname, program, pid, message, and where each entry starts.
fn assert_matches_expected_json(log: &str, records: &[Parsed]) {
    let Some(root) = corpus_root() else { return };
    let text = std::fs::read_to_string(root.join(format!("{log}-expected.json"))).unwrap();
    let expected: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(records.len(), expected.len(), "{log}");
    for (p, want) in records.iter().zip(&expected) {
        let r = &p.record;
        assert_eq!(r.parse_error, None, "{log}");
        assert_eq!(Some(p.start), want["log.offset"].as_u64(), "{log}");
        if let Some(at) = want["@timestamp"].as_str() {
            let millis = r.timestamp.as_millisecond();
            assert_eq!(
                Timestamp::from_millisecond(millis).unwrap(),
                ts(at),
                "{log}"
            );
        }
        assert_eq!(
            field(r, "hostname"),
            want["host.hostname"].as_str(),
            "{log}"
        );
        assert_eq!(field(r, "appname"), want["process.name"].as_str(), "{log}");
        let pid = want["process.pid"].as_u64().map(|p| p.to_string());
        assert_eq!(field(r, "procid"), pid.as_deref(), "{log}");
        assert_eq!(Some(r.message()), want["message"].as_str(), "{log}");
        assert_eq!(r.level, Level::Info, "{log}: no PRI");
    }
}

#[test]
fn suse_matches_expected_json() {
    let Some(records) = records(&utc(), "beats/suse-syslog.log") else {
        return;
    };
    assert_matches_expected_json("beats/suse-syslog.log", &records);
    // The expected file predates @timestamp: check the microseconds here.
    assert_eq!(
        records[0].record.timestamp,
        ts("2018-08-14T12:30:02.203151Z")
    );
    assert_eq!(
        records[1].record.timestamp,
        ts("2018-08-14T12:30:02.203251Z")
    );
}

#[test]
fn tz_offset_matches_expected_json() {
    // The third line has no offset; Filebeat read it as UTC, so does a parser set to UTC.
    let Some(records) = records(&utc(), "beats/tz-offset.log") else {
        return;
    };
    assert_matches_expected_json("beats/tz-offset.log", &records);
    assert_eq!(
        records[1].record.timestamp,
        ts("1986-04-25T21:23:45.388424Z")
    );
    // In another zone the offset-less line moves; the others do not.
    let paris = SyslogParser::new(TimeZone::get("Europe/Paris").unwrap());
    let records = self::records(&paris, "beats/tz-offset.log").unwrap();
    assert_eq!(records[0].record.timestamp, ts("1986-04-25T21:23:45.101Z"));
    assert_eq!(
        records[2].record.timestamp,
        ts("2019-06-14T08:40:20.912134Z")
    );
}

#[test]
fn auth_log() {
    let Some(records) = records(&utc(), "beats/auth-test.log") else {
        return;
    };
    let r = &records[0].record;
    assert_eq!(r.timestamp, ts("2024-02-21T21:54:44Z"));
    assert_eq!(field(r, "hostname"), Some("localhost"));
    assert_eq!(field(r, "appname"), Some("sshd"));
    assert_eq!(field(r, "procid"), Some("3402"));
    assert!(r.message().starts_with("Accepted publickey for vagrant"));
    let sudo = &records[7].record;
    assert_eq!(field(sudo, "appname"), Some("sudo"));
    assert_eq!(field(sudo, "procid"), None);
    assert_eq!(field(sudo, "hostname"), Some("precise32"));
    assert!(sudo.message().starts_with("     tsg : user NOT in sudoers"));
}

#[test]
fn auth_log_with_iso_timestamps() {
    let Some(records) = records(&utc(), "beats/auth-timestamp.log") else {
        return;
    };
    assert_eq!(
        records[0].record.timestamp,
        ts("2019-06-14T10:40:20.912134Z")
    );
    assert_eq!(field(&records[0].record, "appname"), Some("sudo"));
    assert_eq!(records[1].record.timestamp, ts("2019-06-14T11:31:15.412Z"));
    assert_eq!(field(&records[1].record, "appname"), Some("pam"));
    assert_eq!(records[1].record.message(), "user nobody logged out.");
}

#[test]
fn darwin_multi_line_and_repeat_marker() {
    let Some(records) = records(&utc(), "beats/darwin-syslog-sample.log") else {
        return;
    };
    let first = &records[0].record;
    assert_eq!(first.timestamp, ts("2023-12-13T11:35:28Z"));
    assert_eq!(field(first, "appname"), Some("GoogleSoftwareUpdateAgent"));
    assert_eq!(field(first, "procid"), Some("21412"));
    let lines: Vec<&str> = first.message().lines().collect();
    assert_eq!(lines.len(), 19);
    assert!(lines[0].starts_with("2016-12-13 11:35:28.420 GoogleSoftwareUpdateAgent"));
    assert_eq!(
        lines[1],
        "\t\tticketStore=<KSPersistentTicketStore:0x100204520 store=<KSKeyedPersistentStore:0x100213290"
    );
    assert_eq!(lines[18], "\t>");
    assert_eq!(records[1].start, 907);
    let repeat = &records[2].record;
    assert_eq!(repeat.timestamp, ts("2024-04-04T03:39:57Z"));
    assert_eq!(repeat.message(), "--- last message repeated 1 time ---");
    assert_eq!(field(repeat, "hostname"), None);
}

#[test]
fn iso8601_multi_line() {
    let Some(records) = records(&utc(), "beats/iso8601_timestamp_multiline_syslog.log") else {
        return;
    };
    let r = &records[0].record;
    assert_eq!(r.timestamp, ts("2020-12-25T21:59:59Z"));
    assert_eq!(field(r, "hostname"), Some("a-mac-with-esc-key"));
    assert_eq!(
        r.message(),
        "2016-12-13 11:35:28.421\n\t\tGoogleSoftwareUpdateAgent[21412/0x700007399000] [lvl=2] -[KSUpdateEngine updateAllExceptProduct:] KSUpdateEngine updating all\n\t\tinstalled products, except:'com.google.Keystone'."
    );
}

#[test]
fn degenerate_line_without_tag() {
    let Some(records) = records(&utc(), "beats/test-syslog.log") else {
        return;
    };
    let r = &records[0].record;
    assert_eq!(r.timestamp, ts("2022-04-21T14:30:00Z"));
    assert_eq!(field(r, "hostname"), Some("greedy"));
    assert_eq!(field(r, "appname"), None);
    assert_eq!(r.message(), "multiline");
    assert_eq!(records[1].record.message(), "syslog");
}

#[test]
fn dst_fold_takes_the_earlier_offset() {
    // US DST ended at 02:00 on Sunday 2024-11-03: 01:00-01:59 happened twice. A line is
    // parsed alone, so the second pass (the file's lines 6-8) cannot be told from the
    // first: every 01:xx time is read as PDT, and the records' clock goes back as the file's.
    let la = TimeZone::get("America/Los_Angeles").unwrap();
    let parser = SyslogParser::new(la).with_reference(ts("2024-11-10T00:00:00Z"));
    let Some(records) = records(&parser, "lnav/logfile_dst.0") else {
        return;
    };
    let times: Vec<Timestamp> = records.iter().map(|p| p.record.timestamp).collect();
    assert_eq!(times[0], ts("2024-11-03T08:01:03Z"));
    assert_eq!(times[4], ts("2024-11-03T08:59:14Z"));
    assert_eq!(times[5], ts("2024-11-03T08:24:56Z"));
    assert_eq!(times[8], ts("2024-11-03T10:08:19Z"));
    assert_eq!(times[9], ts("2024-11-03T10:25:02Z"));
}

#[test]
fn plain_rfc3164_files() {
    let Some(records) = records(&utc(), "lnav/logfile_syslog.0") else {
        return;
    };
    let r = &records[1].record;
    assert_eq!(r.timestamp, ts("2023-11-03T09:23:38Z"));
    assert_eq!(field(r, "hostname"), Some("veridian"));
    assert_eq!(field(r, "appname"), Some("automount"));
    assert_eq!(field(r, "procid"), Some("16442"));
    assert_eq!(r.message(), "attempting to mount entry /auto/opt");
    assert_eq!(field(&records[3].record, "appname"), Some("sudo"));
    assert_eq!(field(&records[3].record, "procid"), None);

    let records = self::records(&utc(), "lnav/logfile_syslog.2").unwrap();
    let pids: Vec<_> = records
        .iter()
        .map(|p| field(&p.record, "procid").unwrap().to_owned())
        .collect();
    assert_eq!(pids, ["7998", "16442", "7999"]);
    assert_eq!(records[2].record.message(), "eth0 is down");
}

#[test]
fn year_rolls_over_from_december_to_january() {
    let parser = SyslogParser::new(TimeZone::UTC).with_reference(ts("2007-01-10T00:00:00Z"));
    let Some(records) = records(&parser, "lnav/logfile_syslog.1") else {
        return;
    };
    assert_eq!(records[0].record.timestamp, ts("2006-12-03T09:23:38Z"));
    assert_eq!(records[2].record.timestamp, ts("2006-12-03T09:23:38Z"));
    assert_eq!(records[3].record.timestamp, ts("2007-01-03T09:47:02Z"));
}

#[test]
fn macos_multi_line_configuration_notices() {
    let Some(records) = records(&utc(), "lnav/logfile_syslog.3") else {
        return;
    };
    for p in &records[2..] {
        assert_eq!(p.record.message().lines().count(), 3);
        assert!(
            p.record
                .message()
                .starts_with("Configuration Notice:\n\tASL Module")
        );
    }
    assert_eq!(
        records[3].record.message(),
        "Configuration Notice:\n\tASL Module \"com.apple.install\" claims selected messages.\n\tThose messages may not appear in standard system log files or in the ASL database."
    );
}

#[test]
fn french_month_name() {
    let Some(records) = records(&utc(), "lnav/logfile_syslog_fr.0") else {
        return;
    };
    let r = &records[0].record;
    assert_eq!(r.timestamp, ts("2023-08-19T11:08:37Z"));
    assert_eq!(field(r, "hostname"), Some("nlaptop"));
    assert_eq!(field(r, "appname"), Some("symphorien"));
    assert_eq!(r.message(), "test");
}

#[test]
fn tag_without_pid_and_repeat_marker() {
    let Some(records) = records(&utc(), "lnav/logfile_syslog_with_access_log.0") else {
        return;
    };
    let tomcat = &records[1].record;
    assert_eq!(field(tomcat, "hostname"), Some("bigproduct-web1"));
    assert_eq!(field(tomcat, "appname"), Some("tomcat.log"));
    assert_eq!(
        tomcat.message(),
        "127.0.0.1 - - \"GET /includes/js/combined-javascript.js HTTP/1.1\" 200 65508 4.386"
    );
    let repeat = &records[4].record;
    assert_eq!(repeat.timestamp, ts("2024-03-24T14:26:01Z"));
    assert_eq!(repeat.message(), "--- last message repeated 2 times ---");
}

#[test]
fn header_lines_are_parse_errors() {
    let Some(records) = records(&utc(), "lnav/logfile_syslog_with_header.0") else {
        return;
    };
    assert_eq!(records[0].record.message(), "Header1: abc");
    assert_eq!(records[1].record.message(), "Header2: def");
    assert_eq!(records[2].record.timestamp, ts("2023-11-03T09:23:38Z"));
    assert_eq!(records[2].start, 26);
}

#[test]
fn rfc5424_body_with_zones() {
    let Some(records) = records(&utc(), "lnav/logfile_with_zones.0") else {
        return;
    };
    let nsx = &records[0].record;
    assert_eq!(nsx.timestamp, ts("2022-08-27T14:22:01.613Z"));
    assert_eq!(field(nsx, "hostname"), Some("space01.global-acme.entp"));
    assert_eq!(field(nsx, "appname"), Some("NSX"));
    assert_eq!(field(nsx, "procid"), Some("3106"));
    assert_eq!(field(nsx, "msgid"), None);
    assert_eq!(field(nsx, "sd.abc@6876.comp"), Some("abc-edge"));
    assert_eq!(field(nsx, "sd.abc@6876.s2comp"), Some("fork-monitor"));
    assert_eq!(field(nsx, "sd.abc@6876.username"), Some("root"));
    assert!(
        nsx.message()
            .starts_with("keep-alive check received resp {'seq': 1017276")
    );

    let cron = &records[1].record;
    assert_eq!(cron.timestamp, ts("2022-08-27T14:22:01.694554Z"));
    assert_eq!(field(cron, "appname"), Some("CRON"));
    assert_eq!(field(cron, "procid"), Some("20856"));
    assert_eq!(
        cron.message(),
        " (root) CMD (   /usr/bin/nice -n 10 /opt/acme/bin/mem_usage_monitor.py >/dev/null 2>&1)"
    );

    let switching = &records[2].record;
    assert_eq!(field(switching, "msgid"), Some("SWITCHING"));
    assert_eq!(field(switching, "sd.abc@6876.tname"), Some("dp-learning3"));
    assert!(
        switching
            .message()
            .starts_with("dynamic arp entry(28b18eb1")
    );
}

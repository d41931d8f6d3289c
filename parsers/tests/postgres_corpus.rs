//! The PostgreSQL parsers on the real logs of the shared corpus (../shared/corpus/postgres,
//! whose README names each file's log_line_prefix). Counts are entries, not lines.

use std::path::PathBuf;

use jiff::Timestamp;
use logship_parsers::postgres::{CsvParser, StderrParser};
use logship_parsers::{Assembler, Level, Parser, Record, RecordContext};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/postgres");

/// The file's bytes; `None` (with a notice) when the corpus is absent, except under CI.
fn corpus_file(name: &str) -> Option<Vec<u8>> {
    let path = PathBuf::from(CORPUS).join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("corpus file {} is required under CI: {e}", path.display())
        }
        Err(e) => {
            eprintln!("skipping: corpus file {} not readable: {e}", path.display());
            None
        }
    }
}

/// Every record of `name`, assembled into entries as the tailer would.
fn records(parser: &dyn Parser, name: &str) -> Option<Vec<Record>> {
    let bytes = corpus_file(name)?;
    let ctx = RecordContext::new(parser.name(), "test-host");
    let read_time = Timestamp::UNIX_EPOCH;
    let mut assembler = Assembler::new(1 << 20);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    for line in body.split(|&b| b == b'\n') {
        let end = offset + line.len() as u64 + 1;
        entries.extend(assembler.push(parser, line, offset, end));
        offset = end;
    }
    entries.extend(assembler.flush());
    Some(
        entries
            .iter()
            .map(|e| parser.record(&e.bytes, &ctx, read_time))
            .collect(),
    )
}

fn stderr(prefix: &str) -> StderrParser {
    StderrParser::new(prefix).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn field<'r>(record: &'r Record, key: &str) -> Option<&'r str> {
    record.field(key)
}

fn assert_no_parse_errors(records: &[Record]) {
    for r in records {
        assert_eq!(r.parse_error, None, "{:?}", r.message());
    }
}

#[test]
fn pg11_verbose_default_prefix() {
    let Some(records) = records(&stderr("%m [%p] "), "beats/postgresql-11.4.log") else {
        return;
    };
    assert_eq!(records.len(), 14);
    assert_no_parse_errors(&records);
    let first = &records[0];
    assert_eq!(first.timestamp, ts("2019-07-23T12:06:24.406Z"));
    assert_eq!(first.level, Level::Info);
    assert_eq!(
        first.message(),
        "database system was interrupted; last known up at 2019-07-23 12:03:20 UTC"
    );
    assert_eq!(field(first, "pid"), Some("25"));
    assert_eq!(field(first, "sql_state"), Some("00000"));
    assert_eq!(field(first, "location"), Some("StartupXLOG, xlog.c:6388"));
    // Every entry got its LOCATION line.
    assert!(records.iter().all(|r| r.field("location").is_some()));

    let error = &records[9];
    assert_eq!(error.level, Level::Error);
    assert_eq!(
        error.message(),
        "unrecognized configuration parameter \"config_filel\""
    );
    assert_eq!(field(error, "sql_state"), Some("42704"));
    assert_eq!(
        field(error, "location"),
        Some("GetConfigOptionByName, guc.c:8342")
    );
    assert_eq!(field(error, "statement"), Some("show config_filel;"));
    assert_eq!(field(&records[11], "duration_ms"), Some("0.524"));
}

#[test]
fn debian_prefix_with_slow_queries() {
    let parser = stderr("%m [%p] %q%u@%d ");
    let Some(records) = records(&parser, "beats/postgresql-9.6-debian-with-slowlog.log") else {
        return;
    };
    assert_eq!(records.len(), 18);
    assert_no_parse_errors(&records);
    // Background process: the prefix stops at %q.
    assert_eq!(field(&records[0], "pid"), Some("4974"));
    assert_eq!(field(&records[0], "user"), None);
    assert_eq!(records[0].timestamp, ts("2017-07-31T11:36:42.585Z"));
    // Startup packet: user and database still [unknown].
    assert_eq!(records[4].message(), "incomplete startup packet");
    assert_eq!(field(&records[4], "user"), None);
    assert_eq!(field(&records[4], "database"), None);
    // A slow query whose statement spans 8 lines.
    let slow = &records[5];
    assert_eq!(field(slow, "user"), Some("postgres"));
    assert_eq!(field(slow, "database"), Some("postgres"));
    assert_eq!(field(slow, "duration_ms"), Some("37.118"));
    assert_eq!(slow.message().lines().count(), 8);
    assert!(
        slow.message()
            .starts_with("duration: 37.118 ms  statement: SELECT d.datname")
    );
    assert!(slow.message().ends_with("\nORDER BY 1;"));
    assert!(
        slow.message()
            .contains("\n       pg_catalog.pg_get_userbyid")
    );
    assert_eq!(records[8].level, Level::Critical);
    assert_eq!(field(&records[8], "database"), Some("users"));
    let dbs: Vec<_> = records[15..18]
        .iter()
        .map(|r| field(r, "database").unwrap())
        .collect();
    assert_eq!(dbs, ["c$lients", "_clients$db", "clients_db"]);
}

#[test]
fn pid_and_line_number_prefix_cest_and_est() {
    let parser = stderr("%m [%p-%l] %q%u@%d ");
    let Some(records) = records(&parser, "beats/postgresql-9.6-multi-core.log") else {
        return;
    };
    assert_eq!(records.len(), 7);
    assert_no_parse_errors(&records);
    assert_eq!(field(&records[0], "pid"), Some("12975"));
    assert_eq!(field(&records[0], "line_num"), Some("1"));
    assert_eq!(records[0].timestamp, ts("2017-04-03T20:32:14.322Z"));
    assert_eq!(field(&records[2], "line_num"), Some("2"));
    assert_eq!(records[2].message().lines().count(), 12);
    let autovacuum = &records[3];
    assert_eq!(autovacuum.timestamp, ts("2017-07-31T18:36:43.557Z"));
    let checkpoints = &records[4];
    assert_eq!(
        checkpoints.message(),
        "checkpoints are occurring too frequently (25 seconds apart)"
    );
    assert_eq!(
        field(checkpoints, "hint"),
        Some("Consider increasing the configuration parameter \"max_wal_size\".")
    );
    assert_eq!(field(checkpoints, "line_num"), Some("1"));
    assert_eq!(records[5].level, Level::Critical);
}

#[test]
fn ubuntu_error_groups_and_zone_switches() {
    let parser = stderr("%m [%p] %q%u@%d ");
    let Some(records) = records(&parser, "beats/postgresql-ubuntu-9.5.log") else {
        return;
    };
    assert_eq!(records.len(), 69);
    assert_no_parse_errors(&records);
    let operator = &records[7];
    assert_eq!(operator.level, Level::Error);
    assert_eq!(
        operator.message(),
        "operator does not exist: jsonb @> at character 49"
    );
    assert!(
        field(operator, "hint")
            .unwrap()
            .starts_with("No operator matches")
    );
    assert_eq!(
        field(operator, "statement"),
        Some("SELECT id, user FROM users WHERE NOT user @> %s")
    );
    let duplicate = records
        .iter()
        .find(|r| r.message().starts_with("duplicate key"))
        .unwrap();
    assert_eq!(
        field(duplicate, "detail"),
        Some("Key (id)=(1) already exists.")
    );
    assert_eq!(
        field(duplicate, "statement"),
        Some("INSERT INTO users (id, user) VALUES ('1', '{\"attr\": \"yes\"}');")
    );
    assert_eq!(duplicate.timestamp, ts("2017-04-08T10:32:51.056Z"));
    let utc = records
        .iter()
        .find(|r| r.message() == "database system was shut down at 2017-05-27 14:07:52 UTC")
        .unwrap();
    assert_eq!(utc.timestamp, ts("2017-05-27T14:07:53.007Z"));
    // Only the labelled lines were folded: no record is a bare HINT/STATEMENT/DETAIL.
    assert!(
        records
            .iter()
            .all(|r| field(r, "severity") != Some("STATEMENT"))
    );
}

#[test]
fn lnav_blank_lines_are_dropped() {
    let Some(records) = records(&stderr("%m [%p] "), "lnav/logfile_postgres.0") else {
        return;
    };
    assert_eq!(records.len(), 20);
    assert_no_parse_errors(&records);
    assert_eq!(records[0].timestamp, ts("2025-08-13T08:45:01.123Z"));
    // The blank line after it is not part of the message.
    assert_eq!(
        records[5].message(),
        "database system is ready to accept connections"
    );
    let error = records.iter().find(|r| r.level == Level::Error).unwrap();
    assert_eq!(
        field(error, "statement"),
        Some("SELECT * FROM nonexistent_table;")
    );
    assert_eq!(field(error, "pid"), Some("12389"));
}

#[test]
fn lnav_multi_line_statement() {
    let Some(records) = records(&stderr("%m [%p] "), "lnav/logfile_postgres.1") else {
        return;
    };
    assert_eq!(records.len(), 5);
    assert_no_parse_errors(&records);
    let statement = field(&records[0], "statement").unwrap();
    assert_eq!(statement.lines().count(), 39);
    assert!(
        statement.starts_with("create table if not exists scrape_memory (\n    id smallserial")
    );
    assert!(statement.ends_with("\n);"));
    assert_eq!(
        records[0].message(),
        "syntax error at or near \"null\" at character 510"
    );
    assert_eq!(records[0].timestamp, ts("2025-04-11T22:14:12.837Z"));
    let levels: Vec<_> = records.iter().map(|r| r.level).collect();
    assert_eq!(
        levels,
        [
            Level::Error,
            Level::Warn,
            Level::Error,
            Level::Warn,
            Level::Notice
        ]
    );
}

#[test]
fn csvlog_pg11_multi_line_matches_filebeat() {
    let Some(records) = records(&CsvParser::new(), "beats/postgresql-11-multi-line.csv.log") else {
        return;
    };
    let Some(expected) = corpus_file("beats/postgresql-11-multi-line.csv.log-expected.json") else {
        return;
    };
    let expected: serde_json::Value = serde_json::from_slice(&expected).unwrap();
    let expected = expected.as_array().unwrap();
    assert_eq!(records.len(), expected.len());
    assert_no_parse_errors(&records);
    for (record, want) in records.iter().zip(expected) {
        let want = |key: &str| -> String {
            match &want[key] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        };
        assert_eq!(record.timestamp, ts(&want("@timestamp")));
        assert_eq!(field(record, "severity"), Some(want("log.level").as_str()));
        assert_eq!(record.level, Level::Info);
        // Filebeat keeps only the statement as message; logship keeps what PostgreSQL wrote.
        assert!(
            record.message().ends_with(&want("message")),
            "{:?}",
            record.message()
        );
        let duration_ns = field(record, "duration_ms")
            .unwrap()
            .parse::<f64>()
            .unwrap()
            * 1e6;
        assert_eq!(duration_ns.round().to_string(), want("event.duration"));
        for (ours, theirs) in [
            ("application_name", "postgresql.log.application_name"),
            ("remote_host", "postgresql.log.client_addr"),
            ("remote_port", "postgresql.log.client_port"),
            ("command_tag", "postgresql.log.command_tag"),
            ("database", "postgresql.log.database"),
            ("session_id", "postgresql.log.session_id"),
            ("sql_state", "postgresql.log.sql_state_code"),
            ("xid", "postgresql.log.transaction_id"),
            ("virtual_xid", "postgresql.log.virtual_transaction_id"),
            ("pid", "process.pid"),
            ("user", "user.name"),
        ] {
            assert_eq!(field(record, ours), Some(want(theirs).as_str()), "{ours}");
        }
        assert_eq!(
            ts(field(record, "session_start").unwrap()),
            ts(&want("postgresql.log.session_start_time"))
        );
    }
}

#[test]
fn csvlog_pg13_with_backend_type() {
    let Some(records) = records(&CsvParser::new(), "beats/postgresql-13-error-code.csv.log") else {
        return;
    };
    assert_eq!(records.len(), 4);
    assert_no_parse_errors(&records);
    assert!(
        records
            .iter()
            .all(|r| field(r, "backend_type") == Some("client backend"))
    );
    let fatal = &records[2];
    assert_eq!(fatal.level, Level::Critical);
    assert_eq!(field(fatal, "sql_state"), Some("25P03"));
    assert_eq!(field(fatal, "command_tag"), Some("idle in transaction"));
    assert_eq!(field(&records[3], "virtual_xid"), None);
    assert_eq!(field(&records[3], "line_num"), Some("7"));
    assert!(
        records[3]
            .message()
            .starts_with("disconnection: session time: 0:00:33.289")
    );
}

//! PostgreSQL multi-line entries: continuation lines are assembled before parsing, the last
//! entry of a quiet file is shipped after the flush timeout, and a held entry is never
//! checkpointed past (read again after a restart, not lost).

#[path = "support/tail.rs"]
mod tail_support;

use std::io::Write;
use std::time::Duration;

use logship::parsers::{Format, FormatSpec};
use logship::tail::ParserSpec;
use tail_support::*;

fn pg_spec(logs: &std::path::Path) -> logship::tail::SourceSpec {
    let mut s = spec("pg", &[glob_in(logs, "*.log")], &raw());
    s.parser = ParserSpec::Format(FormatSpec::new(Format::Postgres));
    s.multiline_timeout = Duration::from_millis(300);
    s
}

#[test]
fn continuation_lines_are_assembled_and_the_last_entry_flushed() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut f = append_open(&logs.path().join("postgresql.log"));
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![pg_spec(logs.path())],
        AckMode::InOrder,
    );
    write!(
        f,
        "2026-11-24 10:00:00.123 UTC [4242] LOG:  statement: SELECT *\n\
         \tFROM accounts\n\
         \tWHERE id = 1;\n\
         2026-11-24 10:00:01.456 UTC [4242] ERROR:  relation \"nope\" does not exist at character 15\n"
    )
    .unwrap();
    // The quiet file's last entry goes out after the flush timeout, not never.
    assert!(wait_until(LONG, || agent.sink.len() >= 2));
    let records = agent.stop();
    assert_eq!(records.len(), 2, "{records:#?}");
    let first = &records[0].record;
    assert!(first.parse_error.is_none(), "{first:?}");
    assert!(
        first.message().contains("FROM accounts") && first.message().contains("WHERE id = 1;"),
        "{first:?}"
    );
    assert_eq!(records[0].origin.start, 0);
    assert_eq!(records[1].origin.start, records[0].origin.end);
    assert!(records[1].record.message().contains("does not exist"));
}

#[test]
fn held_entry_is_read_again_after_restart_not_lost() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut f = append_open(&logs.path().join("postgresql.log"));
    write!(
        f,
        "2026-11-24 10:00:00.123 UTC [1] LOG:  one\n\
         2026-11-24 10:00:00.200 UTC [1] LOG:  two\n\
         \tcontinued\n"
    )
    .unwrap();
    let mut s = pg_spec(logs.path());
    s.multiline_timeout = Duration::from_secs(3600);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![s.clone()],
        AckMode::InOrder,
    );
    assert!(wait_until(LONG, || agent.sink.len() >= 1));
    // "two" is held waiting for more continuation lines when the agent stops.
    let first = agent.stop();
    assert_eq!(first.len(), 1);
    write!(
        f,
        "\tand more\n2026-11-24 10:00:01.000 UTC [1] LOG:  three\n"
    )
    .unwrap();
    let mut s2 = s;
    s2.multiline_timeout = Duration::from_millis(300);
    let agent = Agent::start(data.path(), fast_config(), vec![s2], AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 2));
    let second = agent.stop();
    let msgs: Vec<&str> = second.iter().map(|r| r.record.message()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].starts_with("two") && msgs[0].contains("continued") && msgs[0].contains("and more"),
        "{msgs:?}"
    );
    assert_eq!(msgs[1], "three");
}

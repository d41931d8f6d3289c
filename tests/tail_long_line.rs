//! A 50 MB line with no newline until its end, written while it is being read: one record
//! cut at `max_line_bytes` and flagged, the next line intact, memory bounded. Alone in its
//! test binary so the process's peak RSS measures this test only.

#[path = "support/tail.rs"]
mod tail_support;

use std::io::Write;

use logship::tail::TRUNCATED_FIELD;
use tail_support::*;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn fifty_megabyte_line_is_truncated_and_flagged_with_bounded_memory() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("long.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 1);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("long", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    assert!(wait_until(LONG, || agent.sink.len() >= 1));
    let before = peak_rss_kib();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n").unwrap();
    write_lines(&mut f, 1, 3);
    assert!(wait_until(LONG, || agent.sink.len() >= 4));
    let grew_mib = (peak_rss_kib() - before) / 1024;
    let records = agent.stop();

    let long = &records[1];
    assert_eq!(
        long.record.message().len(),
        100 * 1024,
        "cut at max_line_bytes"
    );
    assert_eq!(long.record.field(TRUNCATED_FIELD), Some("true"));
    assert_eq!(
        long.origin.end - long.origin.start,
        50 * 1024 * 1024 + 1,
        "the whole line is consumed"
    );
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_eq!(tally(&msgs).len(), 3, "the lines around it are intact");
    assert!(
        records
            .iter()
            .filter(|r| r.record.field(TRUNCATED_FIELD).is_some())
            .count()
            == 1
    );
    // Holding the line would need at least 50 MiB (more with Vec doubling).
    assert!(
        grew_mib < 20,
        "peak RSS grew by {grew_mib} MiB while reading a 50 MB line"
    );
}

//! Regressions of issue 10 at the tailer's level (no Cassandra): entries without a time of
//! their own keep their timestamp across a replay (defect 1), copies made by `copytruncate`
//! inside the pattern are not shipped again (defect 2), and the lag has one series per file
//! that returns to 0 (defect 3).

#[path = "support/tail.rs"]
mod tail_support;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write as _;
use std::sync::Arc;
use std::thread;

use jiff::Timestamp;
use logship::parsers::{Level, ParseError, Parsed, Parser};
use logship::pipeline::FileRecord;
use tail_support::*;

/// `T=<unix seconds> text` has a time; any other line has none (like a `log_format`
/// without `$time_local`, or a line that does not parse).
struct SometimesTimed;

impl Parser for SometimesTimed {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        let text = String::from_utf8_lossy(entry);
        let time = text
            .strip_prefix("T=")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|secs| secs.parse::<i64>().ok())
            .and_then(|secs| Timestamp::from_second(secs).ok());
        Ok(Parsed::new(time, Level::Info, text))
    }
    fn name(&self) -> &'static str {
        "sometimes-timed"
    }
}

/// Each entry's (file, offset) with the timestamp it was shipped with.
fn stamps(records: &[FileRecord]) -> BTreeMap<(u64, u64), Timestamp> {
    records
        .iter()
        .map(|r| ((r.origin.file.inode, r.origin.start), r.record.timestamp))
        .collect()
}

/// Defect 1: an entry replayed after a restart must land on the same primary key (`ts` is
/// part of it), so it must get the same timestamp as when it was first read, whether it
/// has a time of its own or not, and also when no entry of the file had one yet.
#[test]
fn untimed_entries_get_the_same_timestamp_when_replayed() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let parser: Arc<dyn Parser> = Arc::new(SometimesTimed);
    let sources = || vec![spec("app", &[glob_in(logs.path(), "*.log")], &parser)];
    let mut f = append_open(&logs.path().join("app.log"));
    // Untimed lines before any time, then timed and untimed mixed.
    for n in 0..300u64 {
        if n >= 100 && n % 3 == 0 {
            writeln!(f, "T={} {}", 1_700_000_000 + n, line(n)).unwrap();
        } else {
            writeln!(f, "{}", line(n)).unwrap();
        }
    }
    drop(f);

    // The first run ships everything but acknowledges only the first 50 entries, then
    // stops, so the restart replays the other 250.
    let agent = Agent::start(
        data.path(),
        fast_config(),
        sources(),
        AckMode::StopAfter(50),
    );
    assert!(wait_until(LONG, || agent.sink.len() >= 300));
    let first = agent.stop();
    // Apart from the read time, so the two runs cannot agree by accident.
    thread::sleep(std::time::Duration::from_millis(1100));
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 250));
    let second = agent.stop();
    assert_eq!(
        second.len(),
        250,
        "the replay starts at the acknowledged offset"
    );

    let before = stamps(&first);
    let mut differ = Vec::new();
    for (key, ts) in stamps(&second) {
        if before.get(&key) != Some(&ts) {
            differ.push((key.1, before.get(&key).copied(), ts));
        }
    }
    assert!(
        differ.is_empty(),
        "{} replayed entries got another timestamp (so another row), first {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    // Untimed entries after a timed one carry its time; read_at is the read time.
    for r in &second {
        let msg = &r.record.message();
        if !msg.starts_with("T=") {
            let n: u64 = msg[5..13].parse().unwrap();
            if n >= 102 {
                let timed = n - n % 3;
                assert_eq!(
                    r.record.timestamp,
                    Timestamp::from_second(1_700_000_000 + timed as i64).unwrap(),
                    "line {n} carries the time of line {timed}"
                );
            }
        }
        assert!(r.record.read_at > r.record.timestamp, "{msg}");
    }
}

/// The lines each delivered once, by content, and the set of paths delivered from.
fn once(records: &[FileRecord], total: u64) {
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, total);
}

const TOTAL: u64 = 6_000;

/// Defect 2: logrotate's `copytruncate` with `rotate 2` and the pattern `app.log*`: each
/// rotation renames `app.log.1` to `app.log.2`, copies `app.log` to `app.log.1` and
/// truncates `app.log`. The copy holds bytes already shipped from `app.log`; it must
/// continue after them, and the lines the tailer had not read before the truncation come
/// from it. The writer rotates without waiting for the tailer to catch up.
#[test]
fn copytruncate_with_copies_in_the_pattern_ships_every_line_once() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 200);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("app", &[glob_in(logs.path(), "app.log*")], &raw())],
        AckMode::InOrder,
    );
    let p = path.clone();
    let writer = thread::spawn(move || {
        let mut n = 200;
        for at in [1_500u64, 3_000, 4_500] {
            write_lines(&mut f, n, at);
            n = at;
            let (one, two) = (p.with_extension("log.1"), p.with_extension("log.2"));
            if one.exists() {
                fs::rename(&one, &two).unwrap();
            }
            fs::copy(&p, &one).unwrap();
            f.set_len(0).unwrap();
            thread::sleep(std::time::Duration::from_millis(300));
        }
        write_lines(&mut f, n, TOTAL);
    });
    writer.join().unwrap();
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        TOTAL
    )));
    // Settled: nothing more may arrive (rotate_wait is 0.7 s in fast_config).
    let monitor = agent.handle.monitor();
    assert!(wait_until(LONG, || {
        let files = monitor.snapshot().files;
        agent.sink.len() as u64 >= TOTAL && files.iter().all(|f| f.lag == 0)
    }));
    thread::sleep(std::time::Duration::from_millis(1500));

    // Defect 3: one lag series per file, all back at 0.
    let files = monitor.snapshot().files;
    let paths: HashSet<&str> = files.iter().map(|f| &*f.path).collect();
    assert_eq!(paths.len(), files.len(), "one entry per path: {files:?}");
    assert!(files.iter().all(|f| f.lag == 0), "{files:?}");

    let records = agent.stop();
    once(&records, TOTAL);
}

/// Restarting over the rotated copies (the agent was stopped across a copytruncate)
/// still reads each line once: the copy is recognised from the checkpoint.
#[test]
fn copytruncate_while_stopped_with_the_copy_in_the_pattern() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let sources = || vec![spec("app", &[glob_in(logs.path(), "app.log*")], &raw())];
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 1000);
    // First run: ships and acknowledges only part of the file.
    let agent = Agent::start(
        data.path(),
        fast_config(),
        sources(),
        AckMode::StopAfter(600),
    );
    assert!(wait_until(LONG, || agent.sink.len() >= 1000));
    let first = agent.stop();
    // While stopped: more lines, then copytruncate, then new lines.
    write_lines(&mut f, 1000, 1200);
    fs::copy(&path, path.with_extension("log.1")).unwrap();
    f.set_len(0).unwrap();
    write_lines(&mut f, 1200, 1500);
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || all_delivered(
        &[first.clone(), agent.sink.records.lock().unwrap().clone()]
            .concat()
            .iter()
            .map(|r| r.record.message().to_owned())
            .collect::<Vec<_>>(),
        1500
    )));
    thread::sleep(std::time::Duration::from_millis(1500));
    let second = agent.stop();
    // The first run's unacknowledged 400 are replayed from the copy under the same
    // identity and offsets (the same rows), the rest once.
    let acked: Vec<FileRecord> = first.into_iter().take(600).collect();
    once(&[acked.clone(), second.clone()].concat(), 1500);
    let first_ids: HashSet<_> = acked.iter().map(|r| r.origin.file).collect();
    let replayed = second
        .iter()
        .filter(|r| number(r.record.message()).is_some_and(|n| n < 1000));
    for r in replayed {
        assert!(
            first_ids.contains(&r.origin.file),
            "a line of the copy was shipped under a new identity: {:?}",
            r.origin
        );
    }
}

//! inotify alone (issue 10): with the periodic rescan set far longer than the test, appends,
//! new files and renames are still seen, and an inotify queue overflow triggers a rescan
//! that loses nothing.

#[path = "support/tail.rs"]
mod tail_support;

use std::fs;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logship::tail::TailConfig;
use tail_support::*;

/// Rescans and polls every 10 minutes: anything seen during the test came from inotify.
fn inotify_only() -> TailConfig {
    TailConfig {
        rescan_interval: Duration::from_secs(600),
        poll_interval: Duration::from_secs(600),
        rotate_wait: Duration::from_millis(700),
        checkpoint_interval: Duration::from_millis(100),
        ..TailConfig::default()
    }
}

/// How long until `n` records arrived; panics after 10 s (the rescan is 10 min away).
fn seen_within(agent: &Agent, n: usize, what: &str) -> Duration {
    let start = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || agent.sink.len() >= n),
        "{what}: not seen without a rescan ({} of {n} records)",
        agent.sink.len()
    );
    let took = start.elapsed();
    eprintln!("{what}: seen after {took:?}");
    took
}

#[test]
fn appends_creates_and_renames_are_seen_without_a_rescan() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 10);
    let agent = Agent::start(
        data.path(),
        inotify_only(),
        vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    seen_within(&agent, 10, "initial scan");
    let mut worst = Duration::ZERO;
    write_lines(&mut f, 10, 20);
    worst = worst.max(seen_within(&agent, 20, "append"));
    let mut g = append_open(&logs.path().join("new.log"));
    write_lines(&mut g, 20, 30);
    worst = worst.max(seen_within(&agent, 30, "create"));
    // rename + create, then writes to both (the old writer still holds the renamed file).
    fs::rename(&path, logs.path().join("app.log.1.log")).unwrap();
    let mut h = append_open(&path);
    write_lines(&mut f, 30, 40);
    write_lines(&mut h, 40, 50);
    worst = worst.max(seen_within(&agent, 50, "rename"));
    eprintln!("slowest: {worst:?} (rescan interval 600 s)");
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, 50);
}

const QUEUED: &str = "/proc/sys/fs/inotify/max_queued_events";

/// Lowers `max_queued_events` for as long as it lives. The value applies to inotify
/// instances created meanwhile (the kernel copies it at `inotify_init`), so it is held only
/// while the tailer starts, to keep other processes on the machine out of it.
struct LowQueue(String);

impl LowQueue {
    fn set(n: u32) -> Option<LowQueue> {
        let old = fs::read_to_string(QUEUED).ok()?;
        fs::write(QUEUED, n.to_string()).ok()?;
        Some(LowQueue(old))
    }
}

impl Drop for LowQueue {
    fn drop(&mut self) {
        let _ = fs::write(QUEUED, self.0.trim());
    }
}

#[test]
fn an_inotify_queue_overflow_rescans_and_loses_nothing() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sources = vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())];
    let low = LowQueue::set(8);
    let Some(low) = low else {
        let msg = format!("cannot lower {QUEUED} (needs root and a writable /proc/sys)");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let logged = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = Arc::clone(&logged);
    // Global: the source thread is not this one. Only this test of the binary sets it.
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || Captured(Arc::clone(&sink)))
            .with_ansi(false)
            .finish(),
    )
    .expect("the only subscriber of this test binary");
    let agent = Agent::start(data.path(), inotify_only(), sources, AckMode::InOrder);
    drop(low);
    // Far more events than the queue of 8 holds, faster than they are read: 200 files
    // created and written in a burst.
    const FILES: u64 = 200;
    for i in 0..FILES {
        let mut f = append_open(&logs.path().join(format!("f{i:03}.log")));
        writeln!(f, "{}", line(i)).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(20), || all_delivered(
            &agent.sink.messages(),
            FILES
        )),
        "after an overflow only a rescan finds the files whose events were lost: {} of {FILES}",
        agent.sink.len()
    );
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, FILES);
    let log = String::from_utf8_lossy(&logged.lock().unwrap()).into_owned();
    assert!(
        log.contains("inotify queue overflow"),
        "the burst did not overflow a queue of 8 events, so this test proved nothing:\n{log}"
    );
}

/// The source thread's log lines, kept for the assertion.
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

//! Shared by the `tail_*` tests: a raw-line parser, an in-memory sink that acknowledges,
//! a writer of numbered lines, and waiting on conditions.
#![allow(dead_code)]

// The one raw-line test parser, beside this file so a bench or a probe can include it alone.
#[path = "raw_parser.rs"]
mod raw_parser;
#[allow(unused_imports)] // not every tail test parses raw lines
pub(crate) use raw_parser::raw;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logship::parsers::Parser;
use logship::pipeline::queue::{self, QueueReceiver, RecvError};
use logship::pipeline::{FileRecord, Route, Table};
use logship::tail::{
    AckHandle, Checkpointer, ParserSpec, SourceSpec, TailConfig, Tailer, TailerHandle,
};

pub(crate) fn route(name: &str) -> Arc<Route> {
    Arc::new(Route {
        source: name.into(),
        table: Table::InfrastructureLogs,
        ttl: None,
        bucket: Duration::from_secs(3600),
    })
}

pub(crate) fn spec(name: &str, include: &[String], parser: &Arc<dyn Parser>) -> SourceSpec {
    SourceSpec::new(
        name,
        include.to_vec(),
        ParserSpec::Custom(Arc::clone(parser)),
        route(name),
        "testhost",
    )
}

/// Fast timers so tests finish quickly; correctness never depends on them.
pub(crate) fn fast_config() -> TailConfig {
    TailConfig {
        rescan_interval: Duration::from_millis(300),
        poll_interval: Duration::from_millis(200),
        rotate_wait: Duration::from_millis(700),
        checkpoint_interval: Duration::from_millis(100),
        ..TailConfig::default()
    }
}

/// How the sink acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckMode {
    InOrder,
    /// Holds three flush units and acknowledges them newest first.
    Reversed,
    /// Acknowledges nothing after this many records (a sink that stopped writing).
    StopAfter(usize),
}

/// An in-memory sink: takes flush units from the queue, keeps the records, acknowledges.
pub(crate) struct Sink {
    pub records: Arc<Mutex<Vec<FileRecord>>>,
    pub acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    pub(crate) fn start(rx: QueueReceiver<FileRecord>, acks: AckHandle, mode: AckMode) -> Sink {
        let records = Arc::new(Mutex::new(Vec::new()));
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, a, s) = (records.clone(), acked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held: Vec<Vec<FileRecord>> = Vec::new();
            let mut seen = 0usize;
            loop {
                match rx.recv_batch(100, Duration::from_millis(50), Duration::ZERO) {
                    Ok(unit) => {
                        r.lock().unwrap().extend(unit.iter().cloned());
                        seen += unit.len();
                        match mode {
                            AckMode::InOrder => {
                                acks.ack_records(&unit);
                                a.fetch_add(unit.len(), Ordering::SeqCst);
                            }
                            AckMode::Reversed => {
                                held.push(unit);
                                if held.len() == 3 {
                                    for u in held.drain(..).rev() {
                                        acks.ack_records(&u);
                                        a.fetch_add(u.len(), Ordering::SeqCst);
                                    }
                                }
                            }
                            AckMode::StopAfter(n) => {
                                let take = unit.len().min(n.saturating_sub(seen - unit.len()));
                                acks.ack_records(&unit[..take]);
                                a.fetch_add(take, Ordering::SeqCst);
                            }
                        }
                    }
                    Err(RecvError::Timeout) => {
                        for u in held.drain(..).rev() {
                            acks.ack_records(&u);
                            a.fetch_add(u.len(), Ordering::SeqCst);
                        }
                        if s.load(Ordering::SeqCst) {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Sink {
            records,
            acked,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.record.message().to_owned())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    /// Waits for the queue to be drained (senders dropped) and everything acknowledged.
    pub(crate) fn join(mut self) -> Vec<FileRecord> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}

/// A tailer plus its sink, over one data directory.
pub(crate) struct Agent {
    pub handle: TailerHandle,
    pub sink: Sink,
}

impl Agent {
    pub(crate) fn start(
        data: &Path,
        config: TailConfig,
        sources: Vec<SourceSpec>,
        mode: AckMode,
    ) -> Agent {
        let (cp, loaded) = Checkpointer::open(data).unwrap();
        let (tx, rx) = queue::bounded(1000);
        let handle = Tailer::start(config, sources, cp, loaded, tx).unwrap();
        let sink = Sink::start(rx, handle.acks(), mode);
        Agent { handle, sink }
    }

    /// Clean shutdown in the daemon's order: stop reading, drain, final checkpoints.
    pub(crate) fn stop(mut self) -> Vec<FileRecord> {
        self.handle.stop_reading();
        let records = self.sink.join();
        self.handle.finish().unwrap();
        records
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) const LONG: Duration = Duration::from_secs(60);

/// The numbered line `n` as written by [`line`].
pub(crate) fn line(n: u64) -> String {
    format!("line {n:08} some payload to make it look like a log line")
}

/// The number of a line written by [`line`].
pub(crate) fn number(msg: &str) -> Option<u64> {
    msg.strip_prefix("line ")?.get(..8)?.parse().ok()
}

/// How many times each number was delivered.
pub(crate) fn tally(messages: &[String]) -> BTreeMap<u64, usize> {
    let mut t = BTreeMap::new();
    for m in messages {
        if let Some(n) = number(m) {
            *t.entry(n).or_insert(0) += 1;
        }
    }
    t
}

/// Asserts 0..total each delivered exactly once.
pub(crate) fn assert_exactly_once(messages: &[String], total: u64) {
    let t = tally(messages);
    let missing: Vec<u64> = (0..total).filter(|n| !t.contains_key(n)).collect();
    let dups: Vec<(u64, usize)> = t
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| (*n, *c))
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} lines, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        dups.is_empty(),
        "{} duplicated lines, first {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    assert_eq!(t.len() as u64, total, "unexpected numbers delivered");
}

/// Whether every number of 0..total was delivered at least once.
pub(crate) fn all_delivered(messages: &[String], total: u64) -> bool {
    let t = tally(messages);
    (0..total).all(|n| t.contains_key(&n))
}

pub(crate) fn append_open(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Writes lines `from..to` to `f`, pausing now and then like a real program.
pub(crate) fn write_lines(f: &mut File, from: u64, to: u64) {
    for n in from..to {
        writeln!(f, "{}", line(n)).unwrap();
        if n % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

pub(crate) fn glob_in(dir: &Path, pattern: &str) -> String {
    format!("{}/{pattern}", dir.display())
}

pub(crate) fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

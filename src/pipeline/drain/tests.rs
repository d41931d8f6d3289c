//! The drain loop without Cassandra: an in-memory sink and a fault-injecting one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::sink::CircuitState;

/// What one scripted attempt does with the rows it is given.
#[derive(Debug, Clone)]
enum Fault {
    /// Every pending row fails with this.
    All(Failure),
    /// These unit indices fail with this; the others are written.
    Rows(Vec<usize>, Failure),
}

/// One attempt as the sink saw it.
#[derive(Debug, Clone)]
struct Attempt {
    at: Instant,
    pending: Vec<usize>,
    circuit: CircuitState,
}

/// Writes into memory; before that, plays its script of faults, one per attempt.
#[derive(Clone)]
struct FaultySink {
    written: Arc<Mutex<Vec<u32>>>,
    script: Arc<Mutex<VecDeque<Fault>>>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    /// Fails every attempt with this while set (a cluster that is down).
    down: Arc<Mutex<Option<Failure>>>,
    progress: Option<Arc<Progress>>,
}

impl FaultySink {
    fn new(script: Vec<Fault>) -> FaultySink {
        FaultySink {
            written: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            attempts: Arc::default(),
            down: Arc::default(),
            progress: None,
        }
    }

    fn written(&self) -> Vec<u32> {
        self.written.lock().unwrap().clone()
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }
}

impl Sink for FaultySink {
    type Item = u32;

    fn write(&mut self, unit: &[u32], pending: &[usize], _stop: &Stop) -> Vec<RowFailure> {
        self.attempts.lock().unwrap().push(Attempt {
            at: Instant::now(),
            pending: pending.to_vec(),
            circuit: self
                .progress
                .as_ref()
                .map_or(CircuitState::Closed, |p| p.circuit()),
        });
        let fault = match self.down.lock().unwrap().clone() {
            Some(f) => Some(Fault::All(f)),
            None => self.script.lock().unwrap().pop_front(),
        };
        let failing: Vec<(usize, Failure)> = match fault {
            None => Vec::new(),
            Some(Fault::All(f)) => pending.iter().map(|&i| (i, f.clone())).collect(),
            Some(Fault::Rows(rows, f)) => pending
                .iter()
                .filter(|i| rows.contains(i))
                .map(|&i| (i, f.clone()))
                .collect(),
        };
        let mut written = self.written.lock().unwrap();
        for &i in pending {
            if !failing.iter().any(|(j, _)| *j == i) {
                written.push(unit[i]);
            }
        }
        failing
            .into_iter()
            .map(|(index, failure)| RowFailure { index, failure })
            .collect()
    }

    fn dead_letter(&self, item: &u32, reason: &str) -> DeadLetterEntry {
        DeadLetterEntry {
            refused_at: String::new(),
            table: "test",
            id: item.to_string(),
            reason: reason.to_owned(),
            record: serde_json::json!({ "item": item }),
        }
    }
}

fn retry(initial_ms: u64, max_ms: u64, threshold: u32, cooldown_ms: u64) -> RetryConfig {
    RetryConfig {
        initial_backoff: Duration::from_millis(initial_ms),
        max_backoff: Duration::from_millis(max_ms),
        breaker_threshold: threshold,
        breaker_cooldown: Duration::from_millis(cooldown_ms),
    }
}

fn drain(retry: RetryConfig, max_records: usize, dead_letter: Option<std::path::PathBuf>) -> Drain {
    let policy = Policy {
        retry,
        stall_after: Duration::from_millis(200),
    };
    let progress = Arc::new(Progress::new("test", policy.stall_after, policy.breaker()));
    Drain {
        batch: BatchConfig {
            max_records,
            linger: Duration::from_millis(20),
        },
        policy,
        stop: Stop::new(),
        heartbeat: Heartbeat::register("test-drain"),
        progress,
        dead_letter: DeadLetter::new(dead_letter),
        table: Table::InfrastructureLogs,
    }
}

fn queued(n: u32) -> crossbeam_channel::Receiver<u32> {
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..n {
        tx.send(i).unwrap();
    }
    rx
}

fn unreachable() -> Failure {
    Failure::Unreachable("cannot reach 127.0.0.1:9 (connection refused)".into())
}

#[test]
fn failed_attempts_are_retried_with_growing_backoff_until_written() {
    let d = drain(retry(40, 1000, 100, 1000), 10, None);
    let mut sink = FaultySink::new(vec![
        Fault::All(Failure::Retry("write timeout".into())),
        Fault::All(Failure::Retry("write timeout".into())),
        Fault::All(Failure::Retry("write timeout".into())),
    ]);
    let mut acked = Vec::new();
    let ended = d.run(&queued(5), &mut sink, |u| acked.extend(u));
    assert_eq!(ended, Ended::Drained);
    assert_eq!(sink.written(), vec![0, 1, 2, 3, 4]);
    assert_eq!(acked, vec![0, 1, 2, 3, 4]);
    let at: Vec<Instant> = sink.attempts().iter().map(|a| a.at).collect();
    assert_eq!(at.len(), 4, "three failures then success");
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Equal jitter: each wait is at least half its step (40, 80, 160 ms).
    for (gap, step) in gaps.iter().zip([40_u64, 80, 160]) {
        assert!(*gap >= Duration::from_millis(step / 2), "{gaps:?}");
    }
    assert!(
        gaps[2] >= Duration::from_millis(80),
        "the step grows: {gaps:?}"
    );
    let m = d.progress.metrics();
    assert_eq!(m.retries, 3);
    assert_eq!(m.rows_written_infrastructure, 5);
    assert_eq!(m.units_written, 1);
}

#[test]
fn the_breaker_opens_probes_with_one_row_and_closes() {
    let mut d = drain(retry(1, 5, 2, 50), 10, None);
    let mut sink = FaultySink::new(vec![
        Fault::All(unreachable()),
        Fault::All(unreachable()),
        // The first probe fails: open again.
        Fault::All(unreachable()),
    ]);
    sink.progress = Some(Arc::clone(&d.progress));
    d.batch.linger = Duration::ZERO;
    let mut acked = Vec::new();
    d.run(&queued(4), &mut sink, |u| acked.extend(u));
    let attempts = sink.attempts();
    let shape: Vec<(usize, CircuitState)> = attempts
        .iter()
        .map(|a| (a.pending.len(), a.circuit))
        .collect();
    assert_eq!(
        shape,
        vec![
            (4, CircuitState::Closed),
            (4, CircuitState::Closed),
            (1, CircuitState::HalfOpen),
            (1, CircuitState::HalfOpen),
            // The probe succeeded: closed, the rest goes at once.
            (3, CircuitState::Closed),
        ]
    );
    // The open breaker waited its cool-down before each probe.
    assert!(attempts[2].at - attempts[1].at >= Duration::from_millis(45));
    assert!(attempts[3].at - attempts[2].at >= Duration::from_millis(45));
    assert_eq!(d.progress.circuit(), CircuitState::Closed);
    assert_eq!(acked, vec![0, 1, 2, 3]);
    assert_eq!(sink.written(), vec![0, 1, 2, 3]);
}

#[test]
fn the_probe_interval_is_bounded_whatever_the_configured_cooldown() {
    let d = drain(retry(1, 5, 1, 60_000), 10, None);
    let mut sink = FaultySink::new(vec![Fault::All(unreachable())]);
    let started = Instant::now();
    d.run(&queued(1), &mut sink, |_| {});
    assert!(started.elapsed() <= MAX_PROBE_INTERVAL + Duration::from_millis(500));
    assert_eq!(sink.written(), vec![0]);
}

#[test]
fn while_the_breaker_is_open_its_cooldown_paces_the_probes_not_the_backoff() {
    // A long backoff and a short cool-down: once the breaker is open, the probes follow the
    // cool-down (50, 100, 200 ms), so writes resume soon after the output is back.
    let mut d = drain(retry(5_000, 10_000, 1, 50), 10, None);
    d.batch.linger = Duration::ZERO;
    let mut sink = FaultySink::new(vec![
        Fault::All(unreachable()),
        Fault::All(unreachable()),
        Fault::All(unreachable()),
    ]);
    let mut acked = Vec::new();
    d.run(&queued(3), &mut sink, |u| acked.extend(u));
    let at: Vec<Instant> = sink.attempts().iter().map(|a| a.at).collect();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps.len(),
        4,
        "three failures, the probe, the rest: {gaps:?}"
    );
    for (gap, cooldown) in gaps.iter().zip([50_u64, 100, 200]) {
        assert!(
            *gap >= Duration::from_millis(cooldown - 5) && *gap < Duration::from_millis(1_000),
            "probe gaps {gaps:?}"
        );
    }
    assert_eq!(acked, vec![0, 1, 2]);
}

#[test]
fn the_stop_deadline_gives_up_the_unit_unacknowledged() {
    let d = drain(retry(10, 50, 3, 100), 100, None);
    let mut sink = FaultySink::new(Vec::new());
    *sink.down.lock().unwrap() = Some(unreachable());
    let stop = d.stop.clone();
    let started = Instant::now();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.at(Instant::now() + Duration::from_millis(100));
    });
    let mut acked = Vec::new();
    let ended = d.run(&queued(7), &mut sink, |u| acked.extend(u));
    stopper.join().unwrap();
    assert_eq!(ended, Ended::Stopped { unacked: 7 });
    assert!(acked.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(380) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(d.progress.oldest_unacked_age(), None);
}

#[test]
fn units_are_acknowledged_in_order_through_partial_failures() {
    let d = drain(retry(1, 5, 100, 10), 1000, None);
    // In the second unit rows 3 and 5 fail once and are retried alone.
    let mut sink = FaultySink::new(vec![
        Fault::Rows(vec![], Failure::Retry(String::new())),
        Fault::Rows(vec![3, 5], Failure::Retry("timeout".into())),
    ]);
    let mut units = Vec::new();
    let ended = d.run(&queued(2500), &mut sink, |u| units.push(u));
    assert_eq!(ended, Ended::Drained);
    let lens: Vec<usize> = units.iter().map(Vec::len).collect();
    assert_eq!(lens, vec![1000, 1000, 500]);
    let acked: Vec<u32> = units.into_iter().flatten().collect();
    assert_eq!(acked, (0..2500).collect::<Vec<_>>());
    let attempts = sink.attempts();
    assert_eq!(
        attempts[2].pending,
        vec![3, 5],
        "only the failed rows again"
    );
    let mut written = sink.written();
    written.sort_unstable();
    assert_eq!(written, (0..2500).collect::<Vec<_>>(), "each row once");
}

#[test]
fn a_row_refused_as_too_large_goes_to_the_dead_letter_file_and_the_unit_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let d = drain(retry(1, 5, 3, 10), 10, Some(dir.path().to_owned()));
    let mut sink = FaultySink::new(vec![Fault::Rows(
        vec![2],
        Failure::Reject("Mutation of 20971520 bytes is too large".into()),
    )]);
    let mut acked = Vec::new();
    let ended = d.run(&queued(4), &mut sink, |u| acked.extend(u));
    assert_eq!(ended, Ended::Drained);
    assert_eq!(
        acked,
        vec![0, 1, 2, 3],
        "the refused row is acknowledged too"
    );
    assert_eq!(sink.written(), vec![0, 1, 3]);
    assert_eq!(sink.attempts().len(), 1, "a refused row is not retried");
    let text =
        std::fs::read_to_string(dir.path().join(crate::sink::deadletter::FILE_NAME)).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["record"]["item"], 2);
    assert!(lines[0]["reason"].as_str().unwrap().contains("too large"));
    assert_eq!(d.progress.metrics().rows_dead_lettered, 1);
}

#[test]
fn a_stall_is_reported_with_the_last_error_and_ends_at_the_next_acknowledgement() {
    let d = drain(retry(10, 50, 2, 50), 10, None);
    let mut sink = FaultySink::new(Vec::new());
    *sink.down.lock().unwrap() = Some(unreachable());
    let down = Arc::clone(&sink.down);
    let progress = Arc::clone(&d.progress);
    let (tx, rx) = crossbeam_channel::unbounded();
    tx.send(1).unwrap();
    let observer = std::thread::spawn(move || {
        // Nothing is reported before stall_after (200 ms)...
        std::thread::sleep(Duration::from_millis(100));
        let early = (progress.stall(), progress.connected());
        std::thread::sleep(Duration::from_millis(400));
        let during = (
            progress.stall(),
            progress.connected(),
            progress.oldest_unacked_age(),
        );
        *down.lock().unwrap() = None;
        let until = Instant::now() + Duration::from_secs(5);
        while progress.oldest_unacked_age().is_some() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = (progress.stall(), progress.connected());
        drop(tx);
        (early, during, after)
    });
    d.run(&rx, &mut sink, |_| {});
    let (early, during, after) = observer.join().unwrap();
    assert_eq!(early, (None, false));
    let reason = during.0.expect("stalled after 500 ms");
    assert!(reason.starts_with("writes stalled for"), "{reason}");
    assert!(
        reason.ends_with("cannot reach 127.0.0.1:9 (connection refused)"),
        "{reason}"
    );
    assert!(!during.1, "not connected while no node answers");
    assert!(during.2.unwrap() >= Duration::from_millis(400));
    assert_eq!(after, (None, true));
}

#[test]
fn an_outage_is_waiting_not_a_hang() {
    let mut d = drain(retry(10, 50, 2, 50), 10, None);
    d.heartbeat = Heartbeat::register("test-drain-outage");
    let mut sink = FaultySink::new(Vec::new());
    *sink.down.lock().unwrap() = Some(unreachable());
    let stop = d.stop.clone();
    let watcher = std::thread::spawn(move || {
        let mut stuck = Vec::new();
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(100));
            stuck.extend(
                crate::pipeline::heartbeat::stuck(Duration::from_millis(300))
                    .into_iter()
                    .filter(|(n, _)| n == "test-drain-outage"),
            );
        }
        stop.now();
        stuck
    });
    let (_tx, rx) = crossbeam_channel::unbounded();
    _tx.send(1).unwrap();
    d.run(&rx, &mut sink, |_| {});
    assert!(watcher.join().unwrap().is_empty());
}

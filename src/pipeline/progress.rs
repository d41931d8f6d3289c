//! What the drain loop tells the rest of the agent: whether writes make progress, since
//! when they stopped and why, whether the output can be reached, and the write counters.
//! `/health`, `/metrics` and `STATUS=` read it; only the drain loop writes it.
//!
//! A stall is measured from the records' side, not the breaker's: as soon as the oldest
//! record handed to the sink has waited longer than `stall_after` without being
//! acknowledged, writes are stalled. One WARN when a stall starts, one INFO when an
//! acknowledgement ends it, with the outage measured from the last moment writes made
//! progress (the last acknowledgement, or the hand-over of the waiting unit if the sink
//! was idle before).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sink::breaker::Breaker;
use crate::sink::{CircuitState, MetricsSnapshot, SinkMetrics};

/// The drain loop's state, shared (in an `Arc`) with health and metrics.
#[derive(Debug)]
pub struct Progress {
    epoch: Instant,
    sink: &'static str,
    stall_after: Duration,
    pub(crate) metrics: SinkMetrics,
    pub(crate) breaker: Breaker,
    connected: AtomicBool,
    /// Milliseconds since `epoch` + 1 at which the unit in hand was handed to the sink;
    /// 0 = nothing waits.
    handed_ms: AtomicU64,
    /// Milliseconds since `epoch` of the last acknowledgement (start-up before the first).
    acked_ms: AtomicU64,
    stalled: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Progress {
    /// A tracker for a sink named `sink` ("cassandra", "file"...) whose writes count as
    /// stalled after `stall_after`, with the breaker the drain loop uses.
    pub fn new(sink: &'static str, stall_after: Duration, breaker: Breaker) -> Progress {
        Progress {
            epoch: Instant::now(),
            sink,
            stall_after,
            metrics: SinkMetrics::default(),
            breaker,
            connected: AtomicBool::new(false),
            handed_ms: AtomicU64::new(0),
            acked_ms: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            last_error: Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The sink's name.
    pub fn sink(&self) -> &'static str {
        self.sink
    }

    /// Whether the last attempt reached the output (false before the first and while no
    /// node answers).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Sets whether the output can be reached.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    /// The breaker's state.
    pub fn circuit(&self) -> CircuitState {
        self.breaker.state()
    }

    /// The write counters, for `/metrics`.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot(self.breaker.state())
    }

    /// The last error the output gave since writes last succeeded.
    pub fn last_error(&self) -> Option<String> {
        self.lock_error().clone()
    }

    /// Remembers the output's last error (`None` once a write succeeds).
    pub fn set_error(&self, error: Option<String>) {
        *self.lock_error() = error;
    }

    fn lock_error(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the oldest record handed to the sink has waited unacknowledged.
    pub fn oldest_unacked_age(&self) -> Option<Duration> {
        match self.handed_ms.load(Ordering::Relaxed) {
            0 => None,
            h => Some(Duration::from_millis(self.now_ms().saturating_sub(h - 1))),
        }
    }

    /// `Some("writes stalled for N s: <last error>")` while the oldest unacknowledged
    /// record has waited longer than `stall_after`.
    pub fn stall(&self) -> Option<String> {
        let age = self.oldest_unacked_age()?;
        if age <= self.stall_after {
            return None;
        }
        let since = self.outage_start_ms();
        let secs = self.now_ms().saturating_sub(since) / 1000;
        let error = self
            .last_error()
            .unwrap_or_else(|| format!("the {} sink has not answered yet", self.sink));
        Some(format!("writes stalled for {secs} s: {error}"))
    }

    /// The moment progress stopped: the later of the last acknowledgement and the
    /// hand-over of the waiting unit.
    fn outage_start_ms(&self) -> u64 {
        let handed = self.handed_ms.load(Ordering::Relaxed).saturating_sub(1);
        handed.max(self.acked_ms.load(Ordering::Relaxed))
    }

    /// A unit was handed to the sink.
    pub(crate) fn handed(&self) {
        let _ = self.handed_ms.compare_exchange(
            0,
            self.now_ms() + 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The unit in hand was acknowledged (or given up at shutdown).
    pub(crate) fn acked(&self) {
        let now = self.now_ms();
        if self.stalled.swap(false, Ordering::Relaxed) {
            let secs = now.saturating_sub(self.outage_start_ms()) as f64 / 1000.0;
            tracing::info!(
                sink = self.sink,
                outage_secs = secs,
                "writes resumed after {secs:.1} s"
            );
        }
        self.handed_ms.store(0, Ordering::Relaxed);
        self.acked_ms.store(now, Ordering::Relaxed);
        self.set_error(None);
    }

    /// Logs the start of a stall once; called on every beat of the drain loop.
    pub(crate) fn check(&self) {
        if self.stalled.load(Ordering::Relaxed) {
            return;
        }
        if let Some(reason) = self.stall() {
            self.stalled.store(true, Ordering::Relaxed);
            tracing::warn!(
                sink = self.sink,
                error = self.last_error().as_deref().unwrap_or(""),
                "writes stopped making progress: {reason}"
            );
        }
    }

    /// The unit in hand is dropped without an acknowledgement (shutdown).
    pub(crate) fn abandoned(&self) {
        self.handed_ms.store(0, Ordering::Relaxed);
    }
}

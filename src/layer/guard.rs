//! The guard the application keeps alive: dropping it flushes the buffer.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::worker::{LayerCounters, Msg};

/// The layer's counters, for an app's health endpoint or metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    /// Events waiting in the buffer now.
    pub queued: usize,
    /// The buffer's size in events (the builder's `buffer_capacity`).
    pub capacity: usize,
    /// Rows written so far, including the layer's own dropped-count rows.
    pub written: u64,
    /// Events dropped because the buffer was full, since the layer was built.
    pub dropped: u64,
}

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    /// Every event captured before the flush was written within the timeout.
    pub complete: bool,
    /// Rows written since the layer was built (a running total, not this flush's),
    /// including the layer's own dropped-count rows.
    pub written: u64,
    /// Events dropped because the buffer was full, since the layer was built.
    pub dropped: u64,
    /// Events still buffered or being retried when the timeout passed: exact after a
    /// shutdown (which discards them), approximate after [`FlushGuard::flush`].
    pub unwritten: u64,
}

impl fmt::Display for FlushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "logship: {} application events written, {} dropped because the buffer was full",
            self.written, self.dropped
        )?;
        if !self.complete {
            write!(
                f,
                ", {} not written before the flush timeout",
                self.unwritten
            )?;
        }
        Ok(())
    }
}

/// Keeps the layer's worker running. Dropping it writes what is buffered, waiting at most
/// the builder's `shutdown_timeout`, and prints one line to stderr if any event was dropped
/// or left unwritten. Keep it in `main` until the app exits.
#[must_use = "dropping the guard stops shipping at once: keep it alive until the app exits"]
#[derive(Debug)]
pub struct FlushGuard {
    tx: Sender<Msg>,
    /// Lets a timed-out shutdown count (and free) what the worker never took.
    rx: Receiver<Msg>,
    shared: Arc<LayerCounters>,
    capacity: usize,
    timeout: Duration,
    worker: Option<JoinHandle<()>>,
}

impl FlushGuard {
    pub(crate) fn new(
        (tx, rx): (Sender<Msg>, Receiver<Msg>),
        shared: Arc<LayerCounters>,
        capacity: usize,
        timeout: Duration,
        worker: JoinHandle<()>,
    ) -> Self {
        FlushGuard {
            tx,
            rx,
            shared,
            capacity,
            timeout,
            worker: Some(worker),
        }
    }

    /// The counters now; cheap (atomic loads), safe to call from a health endpoint.
    pub fn stats(&self) -> LayerStats {
        LayerStats {
            queued: self.tx.len(),
            capacity: self.capacity,
            written: self.shared.written(),
            dropped: self.shared.dropped(),
        }
    }

    /// Waits until every event captured before this call is written, or `timeout` passes.
    /// Shipping goes on afterwards.
    pub fn flush(&self, timeout: Duration) -> FlushReport {
        self.request(false, timeout)
    }

    /// Flushes within the builder's `shutdown_timeout` and stops the worker; returns the
    /// report instead of printing it.
    pub fn shutdown(mut self) -> FlushReport {
        self.stop()
    }

    fn stop(&mut self) -> FlushReport {
        let mut report = self.request(true, self.timeout);
        match self.worker.take() {
            Some(worker) if report.complete => {
                let _ = worker.join();
            }
            // A worker still retrying is told to give up; it is not waited for.
            _ => {
                self.shared.abandon();
                let left = self
                    .rx
                    .try_iter()
                    .filter(|m| matches!(m, Msg::Event(_)))
                    .count();
                report.unwritten = (left + self.shared.in_flight()) as u64;
            }
        }
        report
    }

    fn request(&self, stop: bool, timeout: Duration) -> FlushReport {
        let deadline = Instant::now() + timeout;
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        let complete = self.worker.is_some()
            && self
                .tx
                .send_deadline(
                    Msg::Flush {
                        reply: reply_tx,
                        stop,
                    },
                    deadline,
                )
                .is_ok()
            && reply_rx.recv_deadline(deadline).is_ok();
        let unwritten = if complete {
            0
        } else {
            (self.tx.len() + self.shared.in_flight()) as u64
        };
        FlushReport {
            complete,
            written: self.shared.written(),
            dropped: self.shared.dropped(),
            unwritten,
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        if self.worker.is_none() {
            return;
        }
        let report = self.stop();
        if report.dropped > 0 || !report.complete {
            eprintln!("{report}");
        }
    }
}

//! What the main thread, the sink thread and `/health` know about the sink besides the
//! drain loop's [`Progress`](logship::pipeline::progress::Progress): whether it is open,
//! why not, and what a shutdown left unacknowledged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The sink's state, shared through an `Arc`; every method is cheap and never blocks long.
#[derive(Debug, Default)]
pub(super) struct SinkState {
    /// The sink is open (connected, for Cassandra); never lowered once raised.
    ready: AtomicBool,
    /// The sink cannot be used (login, TLS, schema, an unwritable output): the agent
    /// stops with exit 1.
    fatal: AtomicBool,
    /// Records left unacknowledged by a shutdown that ran out of time (read again at the
    /// next start).
    unacked: AtomicU64,
    /// The agent's own log lines read back from syslog files and acknowledged without
    /// shipping (`/metrics`).
    pub(super) own_skipped: Arc<AtomicU64>,
    /// Why the sink is not open, for `/health` and the log; `None` once it is.
    problem: Mutex<Option<String>>,
}

impl SinkState {
    pub(super) fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The sink is open: clears the problem, then raises `ready`.
    pub(super) fn set_ready(&self) {
        self.set_problem(None);
        self.ready.store(true, Ordering::Relaxed);
    }

    pub(super) fn fatal(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }

    /// The sink cannot be used, for `reason`: `/health` shows it and the agent stops.
    pub(super) fn set_fatal(&self, reason: String) {
        self.set_problem(Some(reason));
        self.fatal.store(true, Ordering::Relaxed);
    }

    pub(super) fn set_problem(&self, p: Option<String>) {
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = p;
    }

    pub(super) fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn add_unacked(&self, records: u64) {
        self.unacked.fetch_add(records, Ordering::Relaxed);
    }

    pub(super) fn unacked(&self) -> u64 {
        self.unacked.load(Ordering::Relaxed)
    }
}

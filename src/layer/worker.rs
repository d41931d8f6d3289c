//! The layer's own thread: gathers flush units and writes them, retrying until they land.
//!
//! A plain `std` thread, so the layer works in apps with or without tokio; a writer that
//! needs an async runtime (the Cassandra sink) keeps a small one of its own on this thread.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::writer::StopSignal;
use super::{CapturedEvent, EventWriter};

/// What travels from the application threads (and the guard) to the worker.
#[derive(Debug)]
pub(crate) enum Msg {
    Event(CapturedEvent),
    /// Write everything sent before this message, then answer; `stop` ends the worker.
    Flush {
        reply: Sender<()>,
        stop: bool,
    },
}

/// Counters shared by the layer, the worker and the guard.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Events refused because the buffer was full (or the worker was gone).
    dropped: AtomicU64,
    /// Rows written, including the layer's own dropped-count rows.
    written: AtomicU64,
    /// Events taken off the channel whose unit is not written yet.
    in_flight: AtomicUsize,
    /// Set by the guard when its flush timed out: stop retrying and exit.
    abandon: AtomicBool,
}

impl Shared {
    pub(crate) fn note_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn abandon(&self) {
        self.abandon.store(true, Ordering::Relaxed);
    }

    pub(crate) fn abandoned(&self) -> bool {
        self.abandon.load(Ordering::Relaxed)
    }
}

/// How the worker gathers units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnitConfig {
    pub flush_size: usize,
    pub linger: Duration,
    /// The buffer's capacity, named in the dropped-count row.
    pub capacity: usize,
}

thread_local! {
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// True on the layer's worker thread, whose events (the driver's, the runtime's, ours)
/// must never be shipped, whatever their target.
pub(crate) fn on_worker_thread() -> bool {
    ON_WORKER.try_with(Cell::get).unwrap_or(false)
}

pub(crate) fn spawn(
    rx: Receiver<Msg>,
    writer: Box<dyn EventWriter>,
    shared: Arc<Shared>,
    config: UnitConfig,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("logship-layer".into())
        .spawn(move || {
            ON_WORKER.set(true);
            Worker {
                stop: StopSignal::new(Arc::clone(&shared)),
                rx,
                writer,
                shared,
                config,
                unit: Vec::with_capacity(config.flush_size),
                dropped_reported: 0,
                failing: false,
            }
            .run();
        })
}

struct Worker {
    stop: StopSignal,
    rx: Receiver<Msg>,
    writer: Box<dyn EventWriter>,
    shared: Arc<Shared>,
    config: UnitConfig,
    unit: Vec<CapturedEvent>,
    dropped_reported: u64,
    /// Whether the last write failed: failures and recovery are logged once each.
    failing: bool,
}

/// How a gathered unit ended.
enum Gathered {
    /// Full, or its linger time passed.
    Unit,
    Flush {
        reply: Sender<()>,
        stop: bool,
    },
    /// Every sender is gone: write what is left and exit.
    Closed,
}

impl Worker {
    fn run(mut self) {
        loop {
            let gathered = self.gather();
            self.write_unit();
            if self.shared.abandoned() {
                return;
            }
            // The dropped count is reported once the buffer has room again.
            if self.rx.is_empty() || !matches!(gathered, Gathered::Unit) {
                self.report_drops();
            }
            match gathered {
                Gathered::Unit => {}
                Gathered::Flush { reply, stop } => {
                    let _ = reply.send(());
                    if stop {
                        return;
                    }
                }
                Gathered::Closed => return,
            }
        }
    }

    /// Blocks for the first message, then fills the unit until it is full or `linger` has
    /// passed since that first event.
    fn gather(&mut self) -> Gathered {
        match self.rx.recv() {
            Ok(Msg::Event(e)) => self.unit.push(e),
            Ok(Msg::Flush { reply, stop }) => return Gathered::Flush { reply, stop },
            Err(_) => return Gathered::Closed,
        }
        self.shared
            .in_flight
            .store(self.unit.len(), Ordering::Relaxed);
        let deadline = Instant::now() + self.config.linger;
        while self.unit.len() < self.config.flush_size {
            let msg = match self.rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Disconnected) => return Gathered::Closed,
                Err(TryRecvError::Empty) => match self.rx.recv_deadline(deadline) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => return Gathered::Unit,
                    Err(RecvTimeoutError::Disconnected) => return Gathered::Closed,
                },
            };
            match msg {
                Msg::Event(e) => {
                    self.unit.push(e);
                    self.shared
                        .in_flight
                        .store(self.unit.len(), Ordering::Relaxed);
                }
                Msg::Flush { reply, stop } => return Gathered::Flush { reply, stop },
            }
        }
        Gathered::Unit
    }

    /// Writes the unit, retrying with backoff until it lands or the guard gives up.
    fn write_unit(&mut self) {
        if self.unit.is_empty() {
            return;
        }
        self.shared
            .in_flight
            .store(self.unit.len(), Ordering::Relaxed);
        let mut backoff = Backoff::default();
        loop {
            match self.writer.write(&self.unit, &self.stop) {
                Ok(()) => {
                    if self.failing {
                        self.failing = false;
                        tracing::info!(target: "logship::layer", "writing application events again");
                    }
                    break;
                }
                Err(error) => {
                    if !self.failing {
                        self.failing = true;
                        // Goes to the app's other layers (its console); never to this one.
                        tracing::warn!(
                            target: "logship::layer",
                            error = %error,
                            "cannot write application events; buffering and retrying"
                        );
                    }
                    if !self.sleep(backoff.next_delay()) {
                        return;
                    }
                }
            }
        }
        self.shared
            .written
            .fetch_add(self.unit.len() as u64, Ordering::Relaxed);
        self.unit.clear();
        self.shared.in_flight.store(0, Ordering::Relaxed);
    }

    /// Writes a WARN row saying how many events were dropped since the last such row.
    fn report_drops(&mut self) {
        let dropped = self.shared.dropped();
        if dropped <= self.dropped_reported || !self.unit.is_empty() {
            return;
        }
        let newly = dropped - self.dropped_reported;
        self.dropped_reported = dropped;
        let message = format!(
            "logship dropped {newly} application events: its buffer of {} events was full",
            self.config.capacity
        );
        self.unit.push(CapturedEvent::internal(
            &message,
            &[
                ("dropped", newly.to_string()),
                ("capacity", self.config.capacity.to_string()),
            ],
        ));
        self.write_unit();
    }

    /// Sleeps `delay`, waking early if the guard gives up; false if it did.
    fn sleep(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            if self.shared.abandoned() {
                return false;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Exponential backoff with jitter between writes of a unit that keeps failing.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    const MAX: Duration = Duration::from_secs(5);

    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // ±25 %, so many apps restarted together do not retry in lockstep.
        base.mul_f64(rand::random_range(0.75..1.25))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(75) && first <= Duration::from_millis(125));
        for _ in 0..20 {
            b.next_delay();
        }
        let last = b.next_delay();
        assert!(last <= Backoff::MAX.mul_f64(1.25) && last >= Backoff::MAX.mul_f64(0.75));
    }
}

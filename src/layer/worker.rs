//! The layer's own thread: runs the pipeline's drain loop ([`crate::pipeline::drain`]) on
//! the events the application hands over, so the Layer and the daemon gather, retry,
//! break the circuit and stop in one and the same way.
//!
//! A plain `std` thread, so the layer works in apps with or without tokio; a sink that
//! needs an async runtime (Cassandra) keeps a small one of its own on this thread. What
//! travels beside the events (the guard's flush requests) and the layer's dropped-count
//! row are handled by `LayerSource`, the loop's source.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::CapturedEvent;
use crate::pipeline::Table;
use crate::pipeline::batch::{BatchConfig, Received, UnitSource};
use crate::pipeline::drain::{self, Drain, Policy, Source, Stop};
use crate::pipeline::heartbeat::Heartbeat;
use crate::pipeline::progress::Progress;
use crate::sink::RetryConfig;
use crate::sink::deadletter::DeadLetter;

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

/// Counters and the stop signal shared by the layer, the worker and the guard.
#[derive(Debug, Default)]
pub(crate) struct LayerCounters {
    /// Events refused because the buffer was full (or the worker was gone).
    dropped: AtomicU64,
    /// Rows written, including the layer's own dropped-count rows.
    written: AtomicU64,
    /// Events taken off the channel whose unit is not written yet.
    in_flight: AtomicUsize,
    /// Raised by the guard when its flush timed out: stop retrying and exit.
    stop: Stop,
}

impl LayerCounters {
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
        self.stop.now();
    }
}

/// How the worker gathers units.
#[derive(Debug, Clone)]
pub(crate) struct UnitConfig {
    pub flush_size: usize,
    pub linger: Duration,
    /// The buffer's capacity, named in the dropped-count row.
    pub capacity: usize,
    /// Backoff and breaker of the drain loop.
    pub retry: RetryConfig,
}

thread_local! {
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// True on the layer's worker thread, whose events (the driver's, the runtime's, ours)
/// must never be shipped, whatever their target.
pub(crate) fn on_worker_thread() -> bool {
    ON_WORKER.try_with(Cell::get).unwrap_or(false)
}

/// The layer's sink: Cassandra, or the application's own [`super::EventWriter`].
pub(crate) type LayerSink = Box<dyn drain::Sink<Item = CapturedEvent>>;

pub(crate) fn spawn(
    rx: Receiver<Msg>,
    mut sink: LayerSink,
    shared: Arc<LayerCounters>,
    config: UnitConfig,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("logship-layer".into())
        .spawn(move || {
            ON_WORKER.set(true);
            let policy = Policy {
                retry: config.retry.clone(),
                stall_after: Duration::from_secs(5),
            };
            let drain = Drain {
                batch: BatchConfig {
                    max_records: config.flush_size,
                    linger: config.linger,
                },
                progress: Arc::new(Progress::new("layer", policy.stall_after, policy.breaker())),
                policy,
                stop: shared.stop.clone(),
                heartbeat: Heartbeat::register("logship-layer"),
                // Refused events are logged whole on this thread (never shipped).
                dead_letter: DeadLetter::new(None),
                table: Table::ApplicationLogs,
            };
            let source = LayerSource {
                rx,
                shared: Arc::clone(&shared),
                capacity: config.capacity,
                flush: RefCell::new(None),
                reported: Cell::new(0),
            };
            drain.run(&source, &mut sink, |unit| {
                shared
                    .written
                    .fetch_add(unit.len() as u64, Ordering::Relaxed);
                shared.in_flight.store(0, Ordering::Relaxed);
            });
        })
}

/// The channel as the drain loop's source: events are items; a flush request ends the
/// unit being gathered and is answered once everything before it is written; the count
/// of dropped events becomes a WARN row once the buffer has room again.
struct LayerSource {
    rx: Receiver<Msg>,
    shared: Arc<LayerCounters>,
    capacity: usize,
    /// A flush request waiting for the units before it.
    flush: RefCell<Option<(Sender<()>, bool)>>,
    /// Dropped events already reported in a row.
    reported: Cell<u64>,
}

impl LayerSource {
    /// The WARN row for events dropped since the last one, if any were.
    fn drop_row(&self) -> Option<CapturedEvent> {
        let dropped = self.shared.dropped();
        let newly = dropped
            .checked_sub(self.reported.get())
            .filter(|&n| n > 0)?;
        self.reported.set(dropped);
        let message = format!(
            "logship dropped {newly} application events: its buffer of {} events was full",
            self.capacity
        );
        Some(CapturedEvent::internal(
            &message,
            &[
                ("dropped", newly.to_string()),
                ("capacity", self.capacity.to_string()),
            ],
        ))
    }

    fn item(&self, e: CapturedEvent) -> Received<CapturedEvent> {
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        Received::Item(e)
    }

    /// Nothing more to hand out now: the drop row if one is due, else `otherwise`.
    fn quiet(&self, otherwise: Received<CapturedEvent>) -> Received<CapturedEvent> {
        match self.drop_row() {
            Some(row) => self.item(row),
            None => otherwise,
        }
    }
}

impl UnitSource for LayerSource {
    type Item = CapturedEvent;

    fn recv_timeout(&self, timeout: Duration) -> Received<CapturedEvent> {
        if self.flush.borrow().is_some() {
            // Nothing after the flush request joins a unit before it is answered.
            return self.quiet(Received::Timeout);
        }
        let msg = if timeout.is_zero() {
            self.rx
                .try_recv()
                .map_err(|e| e == TryRecvError::Disconnected)
        } else {
            self.rx
                .recv_timeout(timeout)
                .map_err(|e| e == RecvTimeoutError::Disconnected)
        };
        match msg {
            Ok(Msg::Event(e)) => self.item(e),
            Ok(Msg::Flush { reply, stop }) => {
                *self.flush.borrow_mut() = Some((reply, stop));
                self.quiet(Received::Timeout)
            }
            Err(false) => self.quiet(Received::Timeout),
            Err(true) => self.quiet(Received::Closed),
        }
    }
}

impl Source for LayerSource {
    fn settled(&self) -> ControlFlow<()> {
        if self.shared.dropped() > self.reported.get() {
            // The drop row goes out first; the flush is answered after it.
            return ControlFlow::Continue(());
        }
        match self.flush.borrow_mut().take() {
            Some((reply, stop)) => {
                let _ = reply.send(());
                if stop {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            None => ControlFlow::Continue(()),
        }
    }
}

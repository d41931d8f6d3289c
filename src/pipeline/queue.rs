//! The bounded FIFO channel between the sources and the drain loop.
//!
//! Both bounds (items and bytes) are kept by the queue's own counters; the channel under
//! them is unbounded (crossbeam's list flavour, blocks of 31 items allocated as they fill
//! and freed as they drain). A channel bounded in items would allocate and touch a slot for
//! every item of `capacity` up front: 10,000 file records, about 3.5 MiB of RSS held by an
//! empty queue.
//!
//! File sources use [`QueueSender::send`] (or [`QueueSender::send_timeout`] to stay
//! responsive to shutdown): when the queue is full they wait, because the file on disk is
//! the real buffer and waiting loses nothing. In-app events (the tracing Layer) cannot wait,
//! so they use [`QueueSender::try_send`], which drops the item and counts the drop.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::FileRecord;
use super::batch::{self, BatchConfig, Next, Received, UnitSource};

/// The longest a sender waiting for bytes sleeps before it looks again (a safety net: the
/// receiver wakes it as soon as it takes an item).
const ROOM_POLL: Duration = Duration::from_millis(50);

/// What both ends of one queue share: the gauges and the two bounds.
struct QueueState<T> {
    high_water: AtomicUsize,
    dropped: AtomicU64,
    /// Items in the queue now, or reserved by a sender about to queue them.
    items: AtomicUsize,
    capacity: usize,
    /// Bytes of the items in the queue now, as `size` tells them.
    bytes: AtomicUsize,
    max_bytes: usize,
    size: Box<dyn Fn(&T) -> usize + Send + Sync>,
    /// Live receivers: a sender waiting for bytes gives up when none is left.
    receivers: AtomicUsize,
    /// Senders waiting for bytes; the receiver wakes them only when there are some.
    waiting: AtomicUsize,
    room: Mutex<()>,
    freed: Condvar,
}

impl<T> fmt::Debug for QueueState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueState")
            .field("bytes", &self.bytes)
            .field("max_bytes", &self.max_bytes)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl<T> QueueState<T> {
    /// Takes room for one item of `size` bytes if there is some. An empty queue takes any
    /// item, however big, so an item larger than the byte bound still passes (alone).
    fn try_reserve(&self, size: usize) -> bool {
        let slot = self
            .items
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if !slot {
            return false;
        }
        let room = self
            .bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                (b == 0 || b.saturating_add(size) <= self.max_bytes).then(|| b + size)
            })
            .is_ok();
        if !room {
            self.items.fetch_sub(1, Ordering::SeqCst);
        }
        room
    }

    /// Takes room for one item of `size` bytes, waiting until `deadline` (`None`: for
    /// ever). False if the deadline passed or every receiver is gone first.
    fn reserve(&self, size: usize, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_reserve(size) {
                return true;
            }
            if self.receivers.load(Ordering::SeqCst) == 0 {
                return false;
            }
            let mut wait = ROOM_POLL;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                wait = wait.min(left);
            }
            // Announce the wait before looking again under the lock: a receiver that frees
            // bytes after that look sees the announcement and wakes us (no lost wake-up).
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let guard = self.room.lock().unwrap_or_else(|e| e.into_inner());
            if !self.try_reserve(size) {
                let _ = self.freed.wait_timeout(guard, wait);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            drop(guard);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return true;
        }
    }

    fn release(&self, size: usize) {
        let bytes = self.bytes.fetch_sub(size, Ordering::SeqCst) - size;
        let items = self.items.fetch_sub(1, Ordering::SeqCst) - 1;
        // Wake waiting senders once there is room for a run of items (an eighth of either
        // bound free), not for every item taken: a sender woken per item sleeps and wakes
        // once per item while the sources run ahead of the sink, a futex round trip per
        // line. An empty queue always wakes them (an item bigger than the bound waits for
        // that).
        let room = items <= self.capacity - self.capacity / 8
            && bytes <= self.max_bytes - self.max_bytes / 8;
        if room && self.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.room.lock().unwrap_or_else(|e| e.into_inner());
            self.freed.notify_all();
        }
    }
}

/// A snapshot of a queue's gauges, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Items waiting now.
    pub depth: usize,
    /// Most items the queue holds.
    pub capacity: usize,
    /// The highest depth seen since the queue was made.
    pub high_water: usize,
    /// Items refused by [`QueueSender::try_send`] because the queue was full.
    pub dropped: u64,
    /// Bytes of the items waiting now (as the queue's sizing function tells them).
    pub bytes: usize,
    /// Most bytes the queue holds (`usize::MAX`: no byte bound).
    pub max_bytes: usize,
}

/// Why a blocking send did not queue its item; the item is handed back.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError<T> {
    /// Every receiver is gone: nothing will ever read the item.
    #[error("the queue's receiver is gone")]
    Closed(T),
    /// The queue stayed full for the whole timeout.
    #[error("the queue stayed full")]
    Full(T),
}

impl<T> SendError<T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(t) | SendError::Full(t) => t,
        }
    }
}

/// Makes a queue holding at most `capacity` items (at least 1), with no byte bound.
pub fn bounded<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    bounded_in_bytes(capacity, usize::MAX, |_| 0)
}

/// Makes a queue holding at most `capacity` items (at least 1) and at most `max_bytes`
/// bytes of them, each item sized by `size` (which must give the same answer for an item
/// every time it is asked). Whichever bound is reached first makes senders wait (or
/// [`QueueSender::try_send`] drop). An item bigger than `max_bytes` still passes when the
/// queue is empty, so no item can block the queue for ever.
pub fn bounded_in_bytes<T>(
    capacity: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize + Send + Sync + 'static,
) -> (QueueSender<T>, QueueReceiver<T>) {
    let capacity = capacity.max(1);
    let (tx, rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(QueueState {
        high_water: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        items: AtomicUsize::new(0),
        capacity,
        bytes: AtomicUsize::new(0),
        max_bytes: max_bytes.max(1),
        size: Box::new(size),
        receivers: AtomicUsize::new(1),
        waiting: AtomicUsize::new(0),
        room: Mutex::new(()),
        freed: Condvar::new(),
    });
    (
        QueueSender {
            tx,
            capacity,
            shared: Arc::clone(&shared),
        },
        QueueReceiver {
            rx,
            capacity,
            shared,
        },
    )
}

/// The bytes a queued file record holds: the record's heap ([`Record::heap_bytes`]: its
/// text, a spilled field table, its parse error), the queue item itself (the record's
/// inline field table included) and the origin's path when the item owns it alone. Used to
/// size the daemon's queue ([`bounded_in_bytes`]), so the RSS of a full queue stays near
/// `[buffer] max_bytes`.
///
/// [`Record::heap_bytes`]: logship_parsers::Record::heap_bytes
pub fn file_record_bytes(item: &FileRecord) -> usize {
    std::mem::size_of::<FileRecord>() + item.record.heap_bytes()
}

/// The sending end; cheap to clone, one per source thread.
#[derive(Debug)]
pub struct QueueSender<T> {
    tx: Sender<T>,
    capacity: usize,
    shared: Arc<QueueState<T>>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            capacity: self.capacity,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> QueueSender<T> {
    /// Queues `item`, waiting while the queue is full (file sources: backpressure).
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        let size = (self.shared.size)(&item);
        if !self.shared.reserve(size, None) {
            return Err(SendError::Closed(item));
        }
        self.enqueue(item, size).map_err(SendError::Closed)
    }

    /// Like [`send`](Self::send) but gives up after `timeout`, so a blocked source can
    /// notice a shutdown request.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
        let size = (self.shared.size)(&item);
        // Room now needs no deadline: no clock read per item while the queue has room.
        if !self.shared.try_reserve(size)
            && !self.shared.reserve(size, Some(Instant::now() + timeout))
        {
            return Err(if self.shared.receivers.load(Ordering::SeqCst) == 0 {
                SendError::Closed(item)
            } else {
                SendError::Full(item)
            });
        }
        self.enqueue(item, size).map_err(SendError::Closed)
    }

    /// Queues `item` if there is room; otherwise drops it, counts the drop and returns
    /// false (in-app events: never block the application).
    pub fn try_send(&self, item: T) -> bool {
        let size = (self.shared.size)(&item);
        if !self.shared.try_reserve(size) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.enqueue(item, size).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Puts an item whose room (`size` bytes) is reserved into the channel, which never
    /// waits: the counters are the bounds. The item comes back, its room given back, when
    /// every receiver is gone.
    fn enqueue(&self, item: T, size: usize) -> Result<(), T> {
        if let Err(e) = self.tx.send(item) {
            self.shared.release(size);
            return Err(e.into_inner());
        }
        self.note_depth();
        Ok(())
    }

    /// The queue's gauges now.
    pub fn stats(&self) -> QueueStats {
        stats(self.tx.len(), self.capacity, &self.shared)
    }

    /// Raises the high-water mark; the item count the queue keeps is its depth (items
    /// reserved but not yet in the channel included), read without walking the channel.
    fn note_depth(&self) {
        let depth = self.shared.items.load(Ordering::Relaxed);
        // A load first: the mark rarely moves, and a read-modify-write per item would
        // contend with the receiver's counters.
        if depth > self.shared.high_water.load(Ordering::Relaxed) {
            self.shared.high_water.fetch_max(depth, Ordering::Relaxed);
        }
    }
}

/// The receiving end, read by the sink.
#[derive(Debug)]
pub struct QueueReceiver<T> {
    rx: Receiver<T>,
    capacity: usize,
    shared: Arc<QueueState<T>>,
}

impl<T> Clone for QueueReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        QueueReceiver {
            rx: self.rx.clone(),
            capacity: self.capacity,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::SeqCst);
        // Wake senders waiting for bytes: they look at the receivers again.
        let _guard = self.shared.room.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.freed.notify_all();
    }
}

/// Why [`QueueReceiver::recv_batch`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived within the timeout.
    #[error("nothing arrived within the timeout")]
    Timeout,
    /// Every sender is gone and the queue is empty: the sink may finish.
    #[error("every sender is gone and the queue is empty")]
    Closed,
}

impl<T> QueueReceiver<T> {
    /// Waits for one item; `Err` once every sender is gone and the queue is drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        let item = self.rx.recv().map_err(|_| RecvError::Closed)?;
        Ok(self.took(item))
    }

    /// Waits up to `timeout` for one item (`Duration::ZERO`: only one already there).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        let item = if timeout.is_zero() {
            self.rx.try_recv().map_err(|e| {
                if e.is_disconnected() {
                    RecvError::Closed
                } else {
                    RecvError::Timeout
                }
            })?
        } else {
            self.rx.recv_timeout(timeout).map_err(|e| match e {
                RecvTimeoutError::Timeout => RecvError::Timeout,
                RecvTimeoutError::Disconnected => RecvError::Closed,
            })?
        };
        Ok(self.took(item))
    }

    /// Gives the bytes of an item taken out back to the senders.
    fn took(&self, item: T) -> T {
        self.shared.release((self.shared.size)(&item));
        item
    }

    /// Gathers a flush unit: waits up to `timeout` for the first item, then takes what else
    /// arrives within `linger` after it, up to `max` items ([`batch::next_unit`] on this queue).
    pub fn recv_batch(
        &self,
        max: usize,
        timeout: Duration,
        linger: Duration,
    ) -> Result<Vec<T>, RecvError> {
        let config = BatchConfig {
            max_records: max,
            linger,
        };
        match batch::next_unit(self, &config, timeout) {
            Next::Unit(unit) => Ok(unit),
            Next::Idle => Err(RecvError::Timeout),
            Next::Closed => Err(RecvError::Closed),
        }
    }

    /// The queue's gauges now.
    pub fn stats(&self) -> QueueStats {
        stats(self.rx.len(), self.capacity, &self.shared)
    }
}

impl<T> UnitSource for QueueReceiver<T> {
    type Item = T;

    fn recv_timeout(&self, timeout: Duration) -> Received<T> {
        match QueueReceiver::recv_timeout(self, timeout) {
            Ok(item) => Received::Item(item),
            Err(RecvError::Timeout) => Received::Timeout,
            Err(RecvError::Closed) => Received::Closed,
        }
    }
}

fn stats<T>(depth: usize, capacity: usize, shared: &QueueState<T>) -> QueueStats {
    QueueStats {
        depth,
        capacity,
        high_water: shared.high_water.load(Ordering::Relaxed),
        dropped: shared.dropped.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
        max_bytes: shared.max_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_send_drops_and_counts_when_full() {
        let (tx, rx) = bounded::<u32>(2);
        assert!(tx.try_send(1));
        assert!(tx.try_send(2));
        assert!(!tx.try_send(3));
        let s = rx.stats();
        assert_eq!((s.depth, s.capacity, s.high_water, s.dropped), (2, 2, 2, 1));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.stats().depth, 1);
        assert_eq!(rx.stats().high_water, 2);
    }

    #[test]
    fn send_waits_for_room_instead_of_dropping() {
        let (tx, rx) = bounded::<u32>(1);
        tx.send(1).unwrap();
        assert_eq!(
            tx.send_timeout(2, Duration::from_millis(10)),
            Err(SendError::Full(2))
        );
        let sender = std::thread::spawn(move || tx.send(2));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        sender.join().unwrap().unwrap();
        assert_eq!(rx.stats().dropped, 0);
        assert_eq!(rx.recv(), Err(RecvError::Closed));
    }

    #[test]
    fn recv_batch_takes_up_to_max() {
        let (tx, rx) = bounded::<u32>(10);
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let b = rx
            .recv_batch(3, Duration::from_secs(1), Duration::ZERO)
            .unwrap();
        assert_eq!(b, vec![0, 1, 2]);
        let b = rx
            .recv_batch(3, Duration::from_secs(1), Duration::ZERO)
            .unwrap();
        assert_eq!(b, vec![3, 4]);
        drop(tx);
        assert_eq!(
            rx.recv_batch(3, Duration::from_secs(1), Duration::ZERO),
            Err(RecvError::Closed)
        );
    }

    #[test]
    fn bytes_bound_the_queue_before_the_item_count() {
        // Items are their own size in bytes: 40 + 40 fit in 100, a third 40 does not.
        let (tx, rx) = bounded_in_bytes::<usize>(10, 100, |n| *n);
        assert!(tx.try_send(40));
        assert!(tx.try_send(40));
        assert!(!tx.try_send(40));
        assert!(tx.try_send(20));
        let s = rx.stats();
        assert_eq!((s.depth, s.bytes, s.max_bytes, s.dropped), (3, 100, 100, 1));
        assert_eq!(
            tx.send_timeout(1, Duration::from_millis(20)),
            Err(SendError::Full(1))
        );
        // A blocked sender goes on as soon as an item is taken out.
        let sender = std::thread::spawn(move || {
            let started = Instant::now();
            tx.send(30).unwrap();
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(rx.recv(), Ok(40));
        let waited = sender.join().unwrap();
        assert!(waited >= Duration::from_millis(20), "{waited:?}");
        assert_eq!(rx.stats().bytes, 90);
        let rest: Vec<usize> = std::iter::from_fn(|| rx.recv().ok()).collect();
        assert_eq!(rest, vec![40, 20, 30]);
        assert_eq!(rx.stats().bytes, 0);
    }

    #[test]
    fn an_item_bigger_than_the_bound_passes_alone() {
        let (tx, rx) = bounded_in_bytes::<usize>(10, 100, |n| *n);
        assert!(tx.try_send(500));
        assert!(!tx.try_send(1));
        assert_eq!(rx.recv(), Ok(500));
        assert!(tx.try_send(1));
    }

    #[test]
    fn a_sender_waiting_for_bytes_sees_the_receiver_go() {
        let (tx, rx) = bounded_in_bytes::<usize>(10, 10, |n| *n);
        tx.send(10).unwrap();
        let sender = std::thread::spawn(move || tx.send(5));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(SendError::Closed(5)));
    }
}

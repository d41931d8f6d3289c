//! The bounded FIFO channel between the sources and the drain loop.
//!
//! Both bounds (items and bytes) are kept by the queue's own counters; the channel under
//! them is unbounded (crossbeam's list flavour, blocks of 31 items allocated as they fill
//! and freed as they drain). A channel bounded in items would allocate and touch a slot for
//! every item of `capacity` up front: 10,000 file records, about 3.5 MiB of RSS held by an
//! empty queue.
//!
//! File sources use [`QueueSender::send_all_timeout`] (or [`QueueSender::send`]): when the
//! queue is full they wait, because the file on disk is the real buffer and waiting loses
//! nothing. In-app events (the tracing Layer) cannot wait, so they use
//! [`QueueSender::try_send`], which drops the item and counts the drop.
//!
//! A source that has many items at once (the tailer, a read's worth of lines) queues them as
//! one run: one channel operation, one wake-up of a waiting receiver and one update of each
//! counter for the whole run, where one item at a time pays each per item and, with the
//! sender and the receiver on two cores, moves the channel's and the counters' cache lines
//! between the cores per item. The receiver hands the run out one item at a time and gives
//! its room back when the last one is taken.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::FileRecord;
use super::batch::{self, BatchConfig, Next, Received, UnitSource};

/// The longest a sender waiting for bytes sleeps before it looks again (a safety net: the
/// receiver wakes it as soon as it takes an item).
const ROOM_POLL: Duration = Duration::from_millis(50);

/// Emptied run vectors kept for senders to reuse.
const SPARE_RUNS: usize = 2;

/// Units handed back by the receiver and not yet dropped by a sender, and emptied unit
/// vectors kept for the receiver: beyond that the receiver drops a unit itself.
const RETURNED_UNITS: usize = 2;

/// What both ends of one queue share: the gauges and the two bounds.
struct QueueState<T> {
    high_water: AtomicUsize,
    dropped: AtomicU64,
    /// Items in the queue now (a run's until its last item is taken), or reserved by a
    /// sender about to queue them.
    items: AtomicUsize,
    /// Items of runs already handed out while their run's room is still held: the depth is
    /// `items - handed`.
    handed: AtomicUsize,
    capacity: usize,
    /// Bytes of the items in the queue now (a run's until its last item is taken), as
    /// `size` tells them.
    bytes: AtomicUsize,
    max_bytes: usize,
    size: Box<dyn Fn(&T) -> usize + Send + Sync>,
    /// Live receivers: a sender waiting for bytes gives up when none is left.
    receivers: AtomicUsize,
    /// Senders waiting for bytes; the receiver wakes them only when there are some.
    waiting: AtomicUsize,
    room: Mutex<()>,
    freed: Condvar,
    /// Emptied run vectors, capacity kept, for senders to fill again: a sender's run vector
    /// is allocated once, not per run.
    spare: Kept<T>,
    /// Units the receiver is done with ([`QueueReceiver::give_back`]), for a sender to drop
    /// on its own thread.
    returned: Mutex<Vec<Vec<T>>>,
    /// Whether `returned` holds any: senders look at this, not the lock, per item.
    any_returned: AtomicBool,
    /// Unit vectors a sender emptied, capacity kept, for the receiver's next units.
    emptied: Kept<T>,
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
    /// Takes room for as many of the first items of `sizes` (each item's size in bytes) as
    /// fit, in order; returns how many. An empty queue takes its first item however big, so
    /// an item larger than the byte bound still passes (alone).
    fn try_reserve(&self, sizes: &[usize]) -> usize {
        let Ok(before) = self
            .items
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.capacity).then(|| n + sizes.len().min(self.capacity - n))
            })
        else {
            return 0;
        };
        let slots = sizes.len().min(self.capacity - before);
        let mut fit = 0;
        let bytes = self
            .bytes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                let mut total = b;
                fit = 0;
                for &size in &sizes[..slots] {
                    if total != 0 && total.saturating_add(size) > self.max_bytes {
                        break;
                    }
                    total += size;
                    fit += 1;
                }
                (fit > 0).then_some(total)
            });
        if bytes.is_err() {
            fit = 0;
        }
        if fit < slots {
            self.items.fetch_sub(slots - fit, Ordering::SeqCst);
        }
        fit
    }

    /// Takes room for as many of the first items of `sizes` as fit, at least one, waiting
    /// until `deadline` (`None`: for ever); returns how many. 0 if the deadline passed or
    /// every receiver is gone first.
    fn reserve(&self, sizes: &[usize], deadline: Option<Instant>) -> usize {
        loop {
            let got = self.try_reserve(sizes);
            if got > 0 {
                return got;
            }
            if self.receivers.load(Ordering::SeqCst) == 0 {
                return 0;
            }
            let mut wait = ROOM_POLL;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return 0;
                }
                wait = wait.min(left);
            }
            // Announce the wait before looking again under the lock: a receiver that frees
            // bytes after that look sees the announcement and wakes us (no lost wake-up).
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let guard = self.room.lock().unwrap_or_else(|e| e.into_inner());
            let got = self.try_reserve(sizes);
            if got == 0 {
                let _ = self.freed.wait_timeout(guard, wait);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            drop(guard);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return got;
        }
    }

    /// Drops the items of the units the receiver handed back, on the calling (sending)
    /// thread, and keeps their vectors for the receiver.
    fn drop_returned(&self) {
        if !self.any_returned.load(Ordering::Relaxed) {
            return;
        }
        let returned = {
            let mut r = self.returned.lock().unwrap_or_else(|e| e.into_inner());
            self.any_returned.store(false, Ordering::Relaxed);
            std::mem::take(&mut *r)
        };
        for mut unit in returned {
            unit.clear();
            self.emptied.keep(unit);
        }
    }

    /// Gives back the room of `count` items of `size` bytes in all.
    fn release(&self, count: usize, size: usize) {
        let bytes = self.bytes.fetch_sub(size, Ordering::SeqCst) - size;
        let items = self.items.fetch_sub(count, Ordering::SeqCst) - count;
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

/// Emptied vectors, capacity kept, for reuse: at most `most` of them.
struct Kept<T> {
    vecs: Mutex<Vec<Vec<T>>>,
    most: usize,
}

impl<T> Kept<T> {
    fn new(most: usize) -> Self {
        Kept {
            vecs: Mutex::new(Vec::new()),
            most,
        }
    }

    /// A kept vector, if there is one.
    fn take(&self) -> Option<Vec<T>> {
        self.vecs.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps an empty vector unless `most` are kept already (then it is freed).
    fn keep(&self, v: Vec<T>) {
        let mut vecs = self.vecs.lock().unwrap_or_else(|e| e.into_inner());
        if vecs.len() < self.most {
            vecs.push(v);
        }
    }
}

/// What the channel carries: one item, or a run of items queued together by one sender.
#[derive(Debug)]
enum Slot<T> {
    One(T),
    /// At least one item, and the bytes of them all.
    Run(Vec<T>, usize),
}

/// The rest of a run the receiver is handing out, and the room the whole run holds.
#[derive(Debug)]
struct Pending<T> {
    items: VecDeque<T>,
    count: usize,
    bytes: usize,
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
    /// Bytes of the items waiting now, as the queue's sizing function tells them (a run of
    /// items queued together holds its bytes until its last item is taken).
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
    let (tx, rx) = crossbeam_channel::unbounded::<Slot<T>>();
    let shared = Arc::new(QueueState {
        high_water: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        items: AtomicUsize::new(0),
        handed: AtomicUsize::new(0),
        capacity,
        bytes: AtomicUsize::new(0),
        max_bytes: max_bytes.max(1),
        size: Box::new(size),
        receivers: AtomicUsize::new(1),
        waiting: AtomicUsize::new(0),
        room: Mutex::new(()),
        freed: Condvar::new(),
        spare: Kept::new(SPARE_RUNS),
        returned: Mutex::new(Vec::new()),
        any_returned: AtomicBool::new(false),
        emptied: Kept::new(RETURNED_UNITS),
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
            pending: Mutex::new(None),
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
    tx: Sender<Slot<T>>,
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
        if self.shared.reserve(&[size], None) == 0 {
            return Err(SendError::Closed(item));
        }
        self.enqueue(item, size).map_err(SendError::Closed)
    }

    /// Like [`send`](Self::send) but gives up after `timeout`, so a blocked source can
    /// notice a shutdown request.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
        let size = (self.shared.size)(&item);
        // Room now needs no deadline: no clock read per item while the queue has room.
        if self.shared.try_reserve(&[size]) == 0
            && self.shared.reserve(&[size], Some(Instant::now() + timeout)) == 0
        {
            return Err(self.refused(item));
        }
        self.enqueue(item, size).map_err(SendError::Closed)
    }

    /// Queues every item of `items`, in order, in as few runs as the room allows (all of
    /// them in one while it lasts), waiting while the queue is full; gives up once it has
    /// waited `timeout` for room, so a blocked source can notice a shutdown request. Queued
    /// items are taken from the front of `items`: on `Ok` it is empty, on an error it holds
    /// the items not queued, in order.
    pub fn send_all_timeout(
        &self,
        items: &mut Vec<T>,
        timeout: Duration,
    ) -> Result<(), SendError<()>> {
        self.shared.drop_returned();
        let sizes: Vec<usize> = items.iter().map(|i| (self.shared.size)(i)).collect();
        let mut from = 0;
        while from < sizes.len() {
            let left = &sizes[from..];
            let mut got = self.shared.try_reserve(left);
            if got == 0 {
                got = self.shared.reserve(left, Some(Instant::now() + timeout));
            }
            if got == 0 {
                return Err(self.refused(()));
            }
            let run = if got == items.len() {
                std::mem::replace(items, self.shared.spare.take().unwrap_or_default())
            } else {
                items.drain(..got).collect()
            };
            let bytes = left[..got].iter().sum();
            if let Err(e) = self.tx.send(Slot::Run(run, bytes)) {
                self.shared.release(got, bytes);
                if let Slot::Run(mut run, _) = e.into_inner() {
                    run.append(items);
                    *items = run;
                }
                return Err(SendError::Closed(()));
            }
            self.note_depth();
            from += got;
        }
        Ok(())
    }

    /// Queues `item` if there is room; otherwise drops it, counts the drop and returns
    /// false (in-app events: never block the application).
    pub fn try_send(&self, item: T) -> bool {
        let size = (self.shared.size)(&item);
        if self.shared.try_reserve(&[size]) == 0 {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.enqueue(item, size).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Why a wait for room ended without it: every receiver gone, or the time ran out.
    fn refused<U>(&self, item: U) -> SendError<U> {
        if self.shared.receivers.load(Ordering::SeqCst) == 0 {
            SendError::Closed(item)
        } else {
            SendError::Full(item)
        }
    }

    /// Puts an item whose room (`size` bytes) is reserved into the channel, which never
    /// waits: the counters are the bounds. The item comes back, its room given back, when
    /// every receiver is gone.
    fn enqueue(&self, item: T, size: usize) -> Result<(), T> {
        self.shared.drop_returned();
        if let Err(e) = self.tx.send(Slot::One(item)) {
            self.shared.release(1, size);
            let Slot::One(item) = e.into_inner() else {
                unreachable!("the channel gives back the slot it was given")
            };
            return Err(item);
        }
        self.note_depth();
        Ok(())
    }

    /// The queue's gauges now.
    pub fn stats(&self) -> QueueStats {
        stats(self.capacity, &self.shared)
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
    rx: Receiver<Slot<T>>,
    capacity: usize,
    shared: Arc<QueueState<T>>,
    /// The run being handed out (each receiver its own: a run goes to one receiver).
    pending: Mutex<Option<Pending<T>>>,
}

impl<T> Clone for QueueReceiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        QueueReceiver {
            rx: self.rx.clone(),
            capacity: self.capacity,
            shared: Arc::clone(&self.shared),
            pending: Mutex::new(None),
        }
    }
}

impl<T> Drop for QueueReceiver<T> {
    fn drop(&mut self) {
        // A run's items left unread are dropped with it, as the channel's are with the last
        // receiver; their room goes back.
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pending.take() {
            let handed = p.count - p.items.len();
            self.shared.handed.fetch_sub(handed, Ordering::Relaxed);
            self.shared.release(p.count, p.bytes);
        }
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
        if let Some(item) = self.next_of_run() {
            return Ok(item);
        }
        let slot = self.rx.recv().map_err(|_| RecvError::Closed)?;
        self.took(slot).ok_or(RecvError::Timeout)
    }

    /// Waits up to `timeout` for one item (`Duration::ZERO`: only one already there).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        if let Some(item) = self.next_of_run() {
            return Ok(item);
        }
        let slot = if timeout.is_zero() {
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
        self.took(slot).ok_or(RecvError::Timeout)
    }

    /// The next item of the run being handed out, if there is one; the run's room goes
    /// back with its last item.
    fn next_of_run(&self) -> Option<T> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let run = pending.as_mut()?;
        let item = run.items.pop_front();
        if !run.items.is_empty() {
            self.shared.handed.fetch_add(1, Ordering::Relaxed);
        } else if let Some(run) = pending.take() {
            drop(pending);
            self.shared
                .handed
                .fetch_sub(run.count - 1, Ordering::Relaxed);
            self.shared.release(run.count, run.bytes);
            // An empty deque turns into a vector without moving anything.
            self.shared.spare.keep(Vec::from(run.items));
        }
        item
    }

    /// The first item of a slot taken out of the channel; a run's others wait in `pending`.
    /// (`None` only for an empty run, which senders never queue.)
    fn took(&self, slot: Slot<T>) -> Option<T> {
        match slot {
            Slot::One(item) => {
                self.shared.release(1, (self.shared.size)(&item));
                Some(item)
            }
            Slot::Run(items, bytes) => {
                let run = Pending {
                    count: items.len(),
                    items: VecDeque::from(items),
                    bytes,
                };
                *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(run);
                self.next_of_run()
            }
        }
    }

    /// Hands back a unit whose items are written and acknowledged: the next send (of any
    /// kind) drops them on the sender's thread, and the vector comes back as a later
    /// unit's.
    ///
    /// Why: the items were allocated on the sender's thread. glibc's malloc frees a block
    /// of another thread's arena under that arena's lock, contended by the sender
    /// allocating the next items; freed on their own thread, the same blocks go to that
    /// thread's cache and are allocated again without a lock (docs/tail-speed.md, round 4).
    /// A unit handed back while two wait for a sender is dropped here.
    pub fn give_back(&self, unit: Vec<T>) {
        let mut returned = self
            .shared
            .returned
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if returned.len() < RETURNED_UNITS {
            returned.push(unit);
            self.shared.any_returned.store(true, Ordering::Relaxed);
        }
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
        stats(self.capacity, &self.shared)
    }
}

impl<T> UnitSource for QueueReceiver<T> {
    type Item = T;

    fn unit_vec(&self, capacity: usize) -> Vec<T> {
        match self.shared.emptied.take() {
            Some(v) if v.capacity() >= capacity => v,
            _ => Vec::with_capacity(capacity),
        }
    }

    fn recv_timeout(&self, timeout: Duration) -> Received<T> {
        match QueueReceiver::recv_timeout(self, timeout) {
            Ok(item) => Received::Item(item),
            Err(RecvError::Timeout) => Received::Timeout,
            Err(RecvError::Closed) => Received::Closed,
        }
    }
}

fn stats<T>(capacity: usize, shared: &QueueState<T>) -> QueueStats {
    QueueStats {
        depth: shared
            .items
            .load(Ordering::Relaxed)
            .saturating_sub(shared.handed.load(Ordering::Relaxed)),
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
    fn a_run_is_queued_whole_when_there_is_room_and_handed_out_in_order() {
        let (tx, rx) = bounded::<u32>(10);
        tx.send(0).unwrap();
        let mut run: Vec<u32> = (1..=5).collect();
        tx.send_all_timeout(&mut run, Duration::from_millis(10))
            .unwrap();
        assert!(run.is_empty());
        assert_eq!(rx.stats().depth, 6);
        assert_eq!(rx.recv(), Ok(0));
        // The run's room goes back with its last item.
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.stats().depth, 4);
        let b = rx
            .recv_batch(3, Duration::from_secs(1), Duration::ZERO)
            .unwrap();
        assert_eq!(b, vec![2, 3, 4]);
        assert_eq!(rx.recv(), Ok(5));
        assert_eq!(rx.stats().depth, 0);
        drop(tx);
        assert_eq!(rx.recv(), Err(RecvError::Closed));
    }

    #[test]
    fn a_run_bigger_than_the_room_goes_in_parts_as_room_frees() {
        let (tx, rx) = bounded::<u32>(4);
        tx.send(0).unwrap();
        let sender = std::thread::spawn(move || {
            let mut run: Vec<u32> = (1..=9).collect();
            tx.send_all_timeout(&mut run, Duration::from_secs(10))
                .map(|()| run)
        });
        let got: Vec<u32> = (0..10).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(sender.join().unwrap(), Ok(vec![]));
        assert!(rx.stats().high_water <= 4, "{:?}", rx.stats());
    }

    #[test]
    fn a_run_that_finds_no_room_is_handed_back_in_order() {
        let (tx, rx) = bounded_in_bytes::<usize>(10, 100, |n| *n);
        let mut run = vec![60, 30, 20, 5];
        // 60 and 30 fit in 100; 20 does not, and no room frees within the timeout.
        assert_eq!(
            tx.send_all_timeout(&mut run, Duration::from_millis(20)),
            Err(SendError::Full(()))
        );
        assert_eq!(run, vec![20, 5]);
        assert_eq!(rx.stats().bytes, 90);
        drop(rx);
        assert_eq!(
            tx.send_all_timeout(&mut run, Duration::from_millis(20)),
            Err(SendError::Closed(()))
        );
        assert_eq!(run, vec![20, 5]);
    }

    #[test]
    fn a_receiver_dropped_in_the_middle_of_a_run_gives_its_room_back() {
        let (tx, rx) = bounded_in_bytes::<usize>(4, 100, |n| *n);
        let other = rx.clone();
        let mut run = vec![10, 20, 30];
        tx.send_all_timeout(&mut run, Duration::ZERO).unwrap();
        assert_eq!(rx.recv(), Ok(10));
        // The run's bytes stay held until its last item is taken (or its receiver goes).
        assert_eq!((other.stats().depth, other.stats().bytes), (2, 60));
        drop(rx);
        assert_eq!((other.stats().depth, other.stats().bytes), (0, 0));
        assert!(tx.try_send(100));
        assert_eq!(other.recv(), Ok(100));
    }

    /// Notes on which thread each item is dropped.
    struct Tracked(std::sync::mpsc::Sender<std::thread::ThreadId>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            let _ = self.0.send(std::thread::current().id());
        }
    }

    #[test]
    fn units_given_back_are_dropped_by_the_next_sender_and_their_vectors_reused() {
        let (tx, rx) = bounded::<Tracked>(10);
        let (dropped, drops) = std::sync::mpsc::channel();
        let mut run: Vec<Tracked> = (0..3).map(|_| Tracked(dropped.clone())).collect();
        tx.send_all_timeout(&mut run, Duration::ZERO).unwrap();
        let unit = rx
            .recv_batch(10, Duration::from_secs(1), Duration::ZERO)
            .unwrap();
        assert_eq!(unit.len(), 3);
        let capacity = unit.capacity();
        rx.give_back(unit);
        assert!(
            drops.try_recv().is_err(),
            "nothing is dropped on the receiver's side"
        );
        let sender = std::thread::spawn(move || {
            let mut next = vec![Tracked(dropped)];
            tx.send_all_timeout(&mut next, Duration::ZERO).unwrap();
            std::thread::current().id()
        });
        let sender_id = sender.join().unwrap();
        let ids: Vec<_> = drops.try_iter().collect();
        assert_eq!(ids, vec![sender_id; 3]);
        // The next unit is gathered into the emptied vector.
        let unit = rx
            .recv_batch(10, Duration::from_secs(1), Duration::ZERO)
            .unwrap();
        assert_eq!((unit.len(), unit.capacity()), (1, capacity));
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

//! The bounded FIFO channel between the sources and the drain loop.
//!
//! File sources use [`QueueSender::send`] (or [`QueueSender::send_timeout`] to stay
//! responsive to shutdown): when the queue is full they wait, because the file on disk is
//! the real buffer and waiting loses nothing. In-app events (the tracing Layer) cannot wait,
//! so they use [`QueueSender::try_send`], which drops the item and counts the drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::batch::{self, BatchConfig, Next, Received, UnitSource};

/// Counters shared by both ends of one queue.
#[derive(Debug, Default)]
struct Counters {
    high_water: AtomicUsize,
    dropped: AtomicU64,
}

/// A snapshot of a queue's gauges, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Items waiting now.
    pub depth: usize,
    pub capacity: usize,
    /// The highest depth seen since the queue was made.
    pub high_water: usize,
    /// Items refused by [`QueueSender::try_send`] because the queue was full.
    pub dropped: u64,
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
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(t) | SendError::Full(t) => t,
        }
    }
}

/// Makes a queue holding at most `capacity` items (at least 1).
pub fn bounded<T>(capacity: usize) -> (QueueSender<T>, QueueReceiver<T>) {
    let capacity = capacity.max(1);
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let counters = Arc::new(Counters::default());
    (
        QueueSender {
            tx,
            capacity,
            counters: Arc::clone(&counters),
        },
        QueueReceiver {
            rx,
            capacity,
            counters,
        },
    )
}

/// The sending end; cheap to clone, one per source thread.
#[derive(Debug)]
pub struct QueueSender<T> {
    tx: Sender<T>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            capacity: self.capacity,
            counters: Arc::clone(&self.counters),
        }
    }
}

impl<T> QueueSender<T> {
    /// Queues `item`, waiting while the queue is full (file sources: backpressure).
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        self.tx
            .send(item)
            .map_err(|e| SendError::Closed(e.into_inner()))?;
        self.note_depth();
        Ok(())
    }

    /// Like [`send`](Self::send) but gives up after `timeout`, so a blocked source can
    /// notice a shutdown request.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
        match self.tx.send_timeout(item, timeout) {
            Ok(()) => {
                self.note_depth();
                Ok(())
            }
            Err(crossbeam_channel::SendTimeoutError::Timeout(t)) => Err(SendError::Full(t)),
            Err(crossbeam_channel::SendTimeoutError::Disconnected(t)) => Err(SendError::Closed(t)),
        }
    }

    /// Queues `item` if there is room; otherwise drops it, counts the drop and returns
    /// false (in-app events: never block the application).
    pub fn try_send(&self, item: T) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.note_depth();
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn stats(&self) -> QueueStats {
        stats(self.tx.len(), self.capacity, &self.counters)
    }

    fn note_depth(&self) {
        self.counters
            .high_water
            .fetch_max(self.tx.len(), Ordering::Relaxed);
    }
}

/// The receiving end, read by the sink.
#[derive(Debug)]
pub struct QueueReceiver<T> {
    rx: Receiver<T>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl<T> Clone for QueueReceiver<T> {
    fn clone(&self) -> Self {
        QueueReceiver {
            rx: self.rx.clone(),
            capacity: self.capacity,
            counters: Arc::clone(&self.counters),
        }
    }
}

/// Why [`QueueReceiver::recv_batch`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    #[error("nothing arrived within the timeout")]
    Timeout,
    /// Every sender is gone and the queue is empty: the sink may finish.
    #[error("every sender is gone and the queue is empty")]
    Closed,
}

impl<T> QueueReceiver<T> {
    /// Waits for one item; `Err` once every sender is gone and the queue is drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.rx.recv().map_err(|_| RecvError::Closed)
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => RecvError::Timeout,
            RecvTimeoutError::Disconnected => RecvError::Closed,
        })
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

    pub fn stats(&self) -> QueueStats {
        stats(self.rx.len(), self.capacity, &self.counters)
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

fn stats(depth: usize, capacity: usize, counters: &Counters) -> QueueStats {
    QueueStats {
        depth,
        capacity,
        high_water: counters.high_water.load(Ordering::Relaxed),
        dropped: counters.dropped.load(Ordering::Relaxed),
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
}

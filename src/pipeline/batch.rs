//! Flush units: up to `max_records` items, or what arrived within `linger` of the first
//! one, whichever comes first. Used by the daemon's sink loop and the Layer's worker.
//!
//! The pattern is the one of `tracing-appender`'s worker: a blocking wait for the first
//! item (so an idle pipeline costs nothing), then non-blocking takes to fill the unit.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The `[batch]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most records in one flush unit.
    pub max_records: usize,
    /// Longest a record waits for its unit to fill (`"1s"`).
    #[serde(with = "crate::duration")]
    pub linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_records: 1000,
            linger: Duration::from_secs(1),
        }
    }
}

/// One outcome of waiting on a channel.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<T> {
    /// The next item.
    Item(T),
    /// Nothing arrived in time.
    Timeout,
    /// Every sender is gone and nothing is left.
    Closed,
}

/// A channel a unit can be gathered from.
pub trait UnitSource {
    /// What the channel carries.
    type Item;
    /// Waits up to `timeout` for an item (`Duration::ZERO` = only what is already there).
    fn recv_timeout(&self, timeout: Duration) -> Received<Self::Item>;

    /// An empty vector for a unit of up to `capacity` items (a channel may keep emptied
    /// ones to reuse).
    fn unit_vec(&self, capacity: usize) -> Vec<Self::Item> {
        Vec::with_capacity(capacity)
    }
}

impl<T> UnitSource for crossbeam_channel::Receiver<T> {
    type Item = T;
    fn recv_timeout(&self, timeout: Duration) -> Received<T> {
        let r = if timeout.is_zero() {
            self.try_recv().map_err(|e| e.is_disconnected())
        } else {
            crossbeam_channel::Receiver::recv_timeout(self, timeout)
                .map_err(|e| e.is_disconnected())
        };
        match r {
            Ok(item) => Received::Item(item),
            Err(true) => Received::Closed,
            Err(false) => Received::Timeout,
        }
    }
}

/// What [`next_unit`] gathered.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<T> {
    /// A unit of 1..=`max_records` items. When the channel closed while filling it, the
    /// next call returns `Closed`.
    Unit(Vec<T>),
    /// Nothing arrived within `idle_wait` (time to check for shutdown, reload...).
    Idle,
    /// Every sender is gone and everything has been handed out.
    Closed,
}

/// Gathers the next flush unit: waits up to `idle_wait` for a first item, then fills the
/// unit until `max_records` or until `linger` has passed since that first item.
pub fn next_unit<S: UnitSource>(
    source: &S,
    config: &BatchConfig,
    idle_wait: Duration,
) -> Next<S::Item> {
    let max = config.max_records.max(1);
    let first = match source.recv_timeout(idle_wait) {
        Received::Item(item) => item,
        Received::Timeout => return Next::Idle,
        Received::Closed => return Next::Closed,
    };
    let deadline = Instant::now() + config.linger;
    let mut unit = source.unit_vec(max.min(4096));
    unit.push(first);
    while unit.len() < max {
        // Fast path first: a busy channel fills the unit without touching the clock.
        let next = match source.recv_timeout(Duration::ZERO) {
            Received::Timeout => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                source.recv_timeout(left)
            }
            other => other,
        };
        match next {
            Received::Item(item) => unit.push(item),
            Received::Timeout | Received::Closed => break,
        }
    }
    Next::Unit(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_channel_gives_units_of_max_records() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..2500 {
            tx.send(i).unwrap();
        }
        let config = BatchConfig {
            max_records: 1000,
            linger: Duration::from_secs(3600),
        };
        let wait = Duration::from_secs(5);
        let Next::Unit(a) = next_unit(&rx, &config, wait) else {
            panic!()
        };
        let Next::Unit(b) = next_unit(&rx, &config, wait) else {
            panic!()
        };
        assert_eq!((a.len(), b.len()), (1000, 1000));
        assert_eq!(a[0], 0);
        assert_eq!(b[0], 1000);
        drop(tx);
        // The last 500 come out although linger is an hour: the channel closed.
        assert_eq!(
            next_unit(&rx, &config, wait),
            Next::Unit((2000..2500).collect())
        );
        assert_eq!(next_unit(&rx, &config, wait), Next::Closed);
    }

    #[test]
    fn linger_ends_a_partial_unit() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let config = BatchConfig {
            max_records: 1000,
            linger: Duration::from_millis(50),
        };
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        // The sender stays open: only the linger can end this unit.
        assert_eq!(
            next_unit(&rx, &config, Duration::from_secs(5)),
            Next::Unit(vec![1, 2])
        );
        drop(tx);
    }

    #[test]
    fn an_empty_channel_is_idle_then_closed() {
        let (tx, rx) = crossbeam_channel::unbounded::<u8>();
        let config = BatchConfig::default();
        assert_eq!(
            next_unit(&rx, &config, Duration::from_millis(10)),
            Next::Idle
        );
        drop(tx);
        assert_eq!(
            next_unit(&rx, &config, Duration::from_millis(10)),
            Next::Closed
        );
    }

    #[test]
    fn items_arriving_within_linger_join_the_unit() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let config = BatchConfig {
            max_records: 3,
            linger: Duration::from_secs(60),
        };
        let sender = std::thread::spawn(move || {
            for i in 0..3 {
                tx.send(i).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            tx
        });
        // max_records ends the unit long before the minute of linger.
        assert_eq!(
            next_unit(&rx, &config, Duration::from_secs(60)),
            Next::Unit(vec![0, 1, 2])
        );
        drop(sender.join().unwrap());
    }

    #[test]
    fn config_defaults_and_parses() {
        assert_eq!(BatchConfig::default().max_records, 1000);
        let c: BatchConfig = serde_json::from_str(r#"{"linger":"250ms"}"#).unwrap();
        assert_eq!(c.linger, Duration::from_millis(250));
        assert_eq!(c.max_records, 1000);
    }
}

//! The sink's counters and write-latency histogram, read by `/metrics` (issue 6).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::breaker::CircuitState;

/// Upper bounds (seconds) of the unit-latency histogram's buckets; the last bucket is +Inf.
pub const LATENCY_BOUNDS_SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Live counters of one drain loop (held by its `pipeline::progress::Progress`).
#[derive(Debug, Default)]
pub struct SinkMetrics {
    rows_infra: AtomicU64,
    rows_app: AtomicU64,
    units: AtomicU64,
    retries: AtomicU64,
    failed_requests: AtomicU64,
    truncated: AtomicU64,
    dead_lettered: AtomicU64,
    latency_counts: [AtomicU64; LATENCY_BOUNDS_SECONDS.len() + 1],
    latency_sum_micros: AtomicU64,
}

/// A consistent-enough copy of the counters (each is read once, without a lock).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// Rows acknowledged by Cassandra into `infrastructure_logs`.
    pub rows_written_infrastructure: u64,
    /// Rows acknowledged into `application_logs`.
    pub rows_written_application: u64,
    /// Flush units fully written.
    pub units_written: u64,
    /// Attempts repeated after a retryable failure (one per unit attempt, not per row).
    pub retries: u64,
    /// Requests that failed (each row or batch counts once per attempt).
    pub failed_requests: u64,
    /// Rows shortened to `max_record_bytes` and flagged.
    pub rows_truncated: u64,
    /// Records Cassandra refused, written to the dead-letter file.
    pub rows_dead_lettered: u64,
    /// Latency of whole flush units (first attempt to acknowledgement, retries included):
    /// non-cumulative counts per bucket of [`LATENCY_BOUNDS_SECONDS`], then +Inf.
    pub unit_latency_counts: Vec<u64>,
    /// Sum of those units' latencies (the histogram's `_sum`).
    pub unit_latency_sum: Duration,
    /// The breaker's state when the snapshot was taken.
    pub circuit: CircuitState,
}

impl MetricsSnapshot {
    /// Cumulative bucket counts, as a Prometheus histogram wants them (`le` buckets).
    pub fn unit_latency_cumulative(&self) -> Vec<u64> {
        self.unit_latency_counts
            .iter()
            .scan(0, |acc, c| {
                *acc += c;
                Some(*acc)
            })
            .collect()
    }
}

impl SinkMetrics {
    pub(crate) fn add_rows(&self, infra: u64, app: u64) {
        self.rows_infra.fetch_add(infra, Ordering::Relaxed);
        self.rows_app.fetch_add(app, Ordering::Relaxed);
    }

    pub(crate) fn add_unit(&self, latency: Duration) {
        self.units.fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        let i = LATENCY_BOUNDS_SECONDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BOUNDS_SECONDS.len());
        self.latency_counts[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            latency.as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    pub(crate) fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_failed_requests(&self, n: u64) {
        self.failed_requests.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_truncated(&self, n: u64) {
        self.truncated.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now (relaxed loads: each is exact, they are not one atomic view),
    /// with the breaker's state, which the caller reads from the breaker.
    pub fn snapshot(&self, circuit: CircuitState) -> MetricsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            rows_written_infrastructure: get(&self.rows_infra),
            rows_written_application: get(&self.rows_app),
            units_written: get(&self.units),
            retries: get(&self.retries),
            failed_requests: get(&self.failed_requests),
            rows_truncated: get(&self.truncated),
            rows_dead_lettered: get(&self.dead_lettered),
            unit_latency_counts: self.latency_counts.iter().map(get).collect(),
            unit_latency_sum: Duration::from_micros(get(&self.latency_sum_micros)),
            circuit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_that_holds_it() {
        let m = SinkMetrics::default();
        m.add_unit(Duration::from_micros(800));
        m.add_unit(Duration::from_millis(7));
        m.add_unit(Duration::from_secs(60));
        let s = m.snapshot(CircuitState::Closed);
        assert_eq!(s.unit_latency_counts[0], 1);
        assert_eq!(s.unit_latency_counts[3], 1);
        assert_eq!(*s.unit_latency_counts.last().unwrap(), 1);
        assert_eq!(*s.unit_latency_cumulative().last().unwrap(), 3);
        assert_eq!(s.units_written, 3);
    }
}

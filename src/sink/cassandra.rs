//! Cassandra as a drain-loop [`Sink`](crate::pipeline::drain::Sink): each attempt sends the
//! pending rows of a unit through the shared session ([`CassandraSink::attempt`]); the drain loop
//! retries, backs off and breaks the circuit. Rows have deterministic ids, so a unit
//! written again after a crash or a partial failure rewrites the same rows.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::CassandraSink;
use super::deadletter::DeadLetterEntry;
use super::error::SinkError;
use super::retry::{Failure, RowFailure};
use super::row::{AppEvent, AppRoute};
use super::row::{RequestFields, Row};
use crate::pipeline::FileRecord;
use crate::pipeline::drain::{self, Stop};
use crate::pipeline::progress::Progress;

/// File records into `infrastructure_logs`, on a runtime the caller owns.
#[derive(Debug)]
pub struct CassandraFiles {
    sink: CassandraSink,
    runtime: tokio::runtime::Handle,
    progress: Arc<Progress>,
}

impl CassandraFiles {
    /// Writes through `sink`, driving its futures on `runtime` from the drain thread;
    /// truncated rows are counted in `progress`'s metrics.
    pub fn new(
        sink: CassandraSink,
        runtime: tokio::runtime::Handle,
        progress: Arc<Progress>,
    ) -> CassandraFiles {
        CassandraFiles {
            sink,
            runtime,
            progress,
        }
    }
}

impl drain::Sink for CassandraFiles {
    type Item = FileRecord;

    fn write(&mut self, unit: &[FileRecord], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        let max = self.sink.max_record_bytes();
        let fields = self.sink.request_fields();
        let default = RequestFields::default();
        let ids = |r: &FileRecord| fields.get(&*r.route.source).unwrap_or(&default);
        let rows: Vec<Row<'_>> = unit.iter().map(|r| Row::file(r, max, ids(r))).collect();
        let failures = self
            .runtime
            .block_on(until_stopped(stop, self.sink.attempt(&rows, pending)));
        match failures {
            Some(failures) => {
                count_truncated(&self.progress, &rows, pending, &failures);
                failures
            }
            None => stopped(pending),
        }
    }

    fn dead_letter(&self, item: &FileRecord, reason: &str) -> DeadLetterEntry {
        super::dead_letter_entry(
            &Row::file(
                item,
                self.sink.max_record_bytes(),
                &RequestFields::default(),
            ),
            reason.to_owned(),
        )
    }

    fn attempt_bound(&self) -> Duration {
        self.sink.request_timeout() * 2
    }
}

/// Application events into `application_logs` (the async write helper's; the Layer has
/// its own, connecting lazily).
#[derive(Debug)]
pub struct CassandraApps {
    sink: CassandraSink,
    runtime: tokio::runtime::Handle,
    route: AppRoute,
}

impl CassandraApps {
    /// Writes through `sink` with `route`'s TTL and bucket, on `runtime`.
    pub fn new(
        sink: CassandraSink,
        runtime: tokio::runtime::Handle,
        route: AppRoute,
    ) -> CassandraApps {
        CassandraApps {
            sink,
            runtime,
            route,
        }
    }
}

impl drain::Sink for CassandraApps {
    type Item = AppEvent;

    fn write(&mut self, unit: &[AppEvent], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        let max = self.sink.max_record_bytes();
        let rows: Vec<Row<'_>> = unit.iter().map(|e| Row::app(e, &self.route, max)).collect();
        self.runtime
            .block_on(until_stopped(stop, self.sink.attempt(&rows, pending)))
            .unwrap_or_else(|| stopped(pending))
    }

    fn dead_letter(&self, item: &AppEvent, reason: &str) -> DeadLetterEntry {
        super::dead_letter_entry(
            &Row::app(item, &self.route, self.sink.max_record_bytes()),
            reason.to_owned(),
        )
    }

    fn attempt_bound(&self) -> Duration {
        self.sink.request_timeout() * 2
    }
}

/// Counts the rows written by this attempt that were cut to `max_record_bytes`.
pub(crate) fn count_truncated(
    progress: &Progress,
    rows: &[Row<'_>],
    pending: &[usize],
    failures: &[RowFailure],
) {
    let truncated = pending
        .iter()
        .filter(|&&i| rows[i].truncated() && !failures.iter().any(|f| f.index == i))
        .count();
    progress.metrics.add_truncated(truncated as u64);
}

/// Every pending row, failed because the stop deadline passed during the attempt.
pub(crate) fn stopped(pending: &[usize]) -> Vec<RowFailure> {
    RowFailure::all(
        pending.iter().copied(),
        &Failure::Retry("the shutdown deadline passed during the write".into()),
    )
}

/// What a failure to connect means for the rows waiting: retry while no node answers,
/// an operator's problem otherwise (login, TLS, schema).
pub fn connect_failure(e: &SinkError) -> Failure {
    let reason = format!("{e:#}");
    match e {
        SinkError::Unreachable { .. } => Failure::Unreachable(reason),
        _ => Failure::Fatal(reason),
    }
}

/// Runs `fut` unless `stop`'s deadline passes first (`None` then); the deadline is read
/// every 50 ms, so one set during the attempt is seen.
pub async fn until_stopped<F: Future>(stop: &Stop, fut: F) -> Option<F::Output> {
    let watch = async {
        while !stop.passed() {
            let step = stop
                .deadline()
                .map_or(Duration::from_millis(50), |d| {
                    d.saturating_duration_since(std::time::Instant::now())
                })
                .min(Duration::from_millis(50));
            tokio::time::sleep(step).await;
        }
    };
    tokio::select! {
        out = fut => Some(out),
        () = watch => None,
    }
}

//! The application's own output for the layer: [`EventWriter`], run by the drain loop
//! through `WriterSink`. The loop retries, backs off and stops; the writer only writes.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use super::CapturedEvent;
use crate::pipeline::drain::{self, Stop};
use crate::sink::deadletter::DeadLetterEntry;
use crate::sink::retry::{Failure, RowFailure};

/// Why a flush unit was not written. The worker keeps the unit and writes it again later;
/// the row ids fixed at capture make the rewrite idempotent.
pub type WriteError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Writes flush units. Called on the layer's worker thread, one unit at a time.
pub trait EventWriter: Send + 'static {
    /// Writes every event of `unit`, or fails; a partly written unit is written again
    /// whole. A writer that waits by itself should give up once `stop` is raised.
    fn write(&mut self, unit: &[CapturedEvent], stop: &StopSignal) -> Result<(), WriteError>;
}

/// Raised when the guard's flush timed out at shutdown: nothing waits for the unit anymore.
#[derive(Debug, Clone)]
pub struct StopSignal {
    stop: Stop,
}

/// The guard gave up waiting for this write.
#[derive(Debug, thiserror::Error)]
#[error("the shutdown flush timed out")]
pub struct FlushTimedOut;

impl StopSignal {
    pub(crate) fn new(stop: Stop) -> Self {
        StopSignal { stop }
    }

    /// Whether the guard gave up.
    pub fn is_raised(&self) -> bool {
        self.stop.passed()
    }

    /// Runs `fut` until it completes or the signal is raised (checked every 50 ms).
    pub async fn or_stopped<F: Future>(&self, fut: F) -> Result<F::Output, FlushTimedOut> {
        let watch = async {
            while !self.is_raised() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            out = fut => Ok(out),
            () = watch => Err(FlushTimedOut),
        }
    }
}

/// An [`EventWriter`] as a drain-loop sink: each contiguous run of pending events is
/// written whole, and fails whole.
pub(crate) struct WriterSink {
    writer: Box<dyn EventWriter>,
}

impl WriterSink {
    pub(crate) fn new(writer: Box<dyn EventWriter>) -> WriterSink {
        WriterSink { writer }
    }
}

impl drain::Sink for WriterSink {
    type Item = CapturedEvent;

    fn write(&mut self, unit: &[CapturedEvent], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        let signal = StopSignal::new(stop.clone());
        let mut failures = Vec::new();
        for run in runs(pending) {
            if let Err(e) = self.writer.write(&unit[run.clone()], &signal) {
                failures.extend(RowFailure::all(run, &Failure::Retry(e.to_string())));
            }
        }
        failures
    }

    fn dead_letter(&self, item: &CapturedEvent, reason: &str) -> DeadLetterEntry {
        dead_letter_entry(item, reason)
    }
}

/// An event the output refused, for the dead-letter log.
pub(crate) fn dead_letter_entry(item: &CapturedEvent, reason: &str) -> DeadLetterEntry {
    DeadLetterEntry {
        refused_at: jiff::Timestamp::now().to_string(),
        table: "application_logs",
        id: item.id().to_string(),
        reason: reason.to_owned(),
        record: serde_json::json!({
            "target": item.target(),
            "level": item.level().as_str(),
            "message": item.message(),
        }),
    }
}

/// Ascending indices as contiguous ranges: `[1,2,3,7]` → `1..4, 7..8`.
fn runs(pending: &[usize]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for &i in pending {
        match out.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pending_rows_become_contiguous_runs() {
        assert_eq!(super::runs(&[1, 2, 3, 7]), vec![1..4, 7..8]);
        assert!(super::runs(&[]).is_empty());
    }
}

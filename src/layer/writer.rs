//! Where the worker sends flush units: Cassandra in production, anything else in tests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::CapturedEvent;
use super::worker::Shared;

/// Why a flush unit was not written. The worker keeps the unit and writes it again later;
/// the row ids fixed at capture make the rewrite idempotent.
pub type WriteError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Writes flush units. Called on the layer's worker thread, one unit at a time.
pub trait EventWriter: Send + 'static {
    /// Writes every event of `unit`, or fails; a partly written unit is written again
    /// whole. A writer that retries by itself should give up once `stop` is raised.
    fn write(&mut self, unit: &[CapturedEvent], stop: &StopSignal) -> Result<(), WriteError>;
}

/// Raised when the guard's flush timed out at shutdown: nothing waits for the unit anymore.
#[derive(Debug, Clone)]
pub struct StopSignal {
    shared: Arc<Shared>,
}

/// The guard gave up waiting for this write.
#[derive(Debug, thiserror::Error)]
#[error("the shutdown flush timed out")]
pub struct Stopped;

impl StopSignal {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        StopSignal { shared }
    }

    pub fn is_raised(&self) -> bool {
        self.shared.abandoned()
    }

    /// Runs `fut` until it completes or the signal is raised (checked every 50 ms).
    pub async fn or_stopped<F: Future>(&self, fut: F) -> Result<F::Output, Stopped> {
        let watch = async {
            while !self.is_raised() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            out = fut => Ok(out),
            () = watch => Err(Stopped),
        }
    }
}

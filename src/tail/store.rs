//! Saving the tracker's progress to the checkpoint file: every `checkpoint_interval_ms` from
//! the checkpoint thread, at the end, and at once from a source thread when a file's
//! carried time must be durable before an entry stamped with it is shipped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::pipeline::heartbeat;

use super::ack::AckTracker;
use super::checkpoint::{Checkpoint, CheckpointError, Checkpointer};

/// The one writer of the checkpoint file; saves are serialised.
#[derive(Debug)]
pub(crate) struct CheckpointStore {
    checkpointer: Checkpointer,
    tracker: Arc<AckTracker>,
    retention: Duration,
    /// What the file holds now, so an unchanged snapshot is not written again.
    last: Mutex<Option<Vec<Checkpoint>>>,
}

impl CheckpointStore {
    pub(crate) fn new(
        checkpointer: Checkpointer,
        tracker: Arc<AckTracker>,
        retention: Duration,
    ) -> Self {
        CheckpointStore {
            checkpointer,
            tracker,
            retention,
            last: Mutex::new(None),
        }
    }

    /// Writes the tracker's checkpoints if they changed since the last save; returns once
    /// they are durable.
    pub(crate) fn save(&self) -> Result<(), CheckpointError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.tracker.checkpoints(self.retention);
        if last.as_ref() != Some(&now) {
            self.checkpointer.save(&now)?;
        }
        self.tracker.saved(&now);
        *last = Some(now);
        Ok(())
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        self.checkpointer.path()
    }
}

/// A checkpoint thread waiting for its next round counts as alive until then plus this.
const HEARTBEAT_SLACK: Duration = Duration::from_secs(5);

/// Saves whenever an offset moved, and once more when told to stop.
///
/// The thread beats like the source threads: it is alive while it waits for the next round
/// and after each save, so a save wedged in `fsync` (a dead disk or network filesystem)
/// stops the watchdog ping instead of silently freezing every checkpoint.
pub(crate) fn checkpoint_loop(
    store: &CheckpointStore,
    interval: Duration,
    stop: &Receiver<()>,
) -> Result<(), CheckpointError> {
    let _alive = heartbeat::register_current("tail:checkpoints");
    let mut seen_changes = 0;
    let mut failing = false;
    loop {
        heartbeat::waiting_until(Instant::now() + interval + HEARTBEAT_SLACK);
        let stopping = !matches!(
            stop.recv_timeout(interval),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        );
        // Read before the snapshot, so the next round sees only later changes.
        let changes = store.tracker.changes();
        if changes == seen_changes && !stopping && !failing {
            continue;
        }
        seen_changes = changes;
        heartbeat::beat();
        let saved = store.save();
        heartbeat::beat();
        match saved {
            Ok(()) => {
                if failing {
                    tracing::info!(path = %store.path().display(), "checkpoints written again");
                    failing = false;
                }
            }
            Err(e) if stopping => return Err(e),
            Err(e) => {
                if !failing {
                    tracing::error!(error = %with_causes(&e), "cannot write checkpoints; will retry");
                    failing = true;
                }
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

/// `e` and every cause under it, `outer: inner: ...`. A `thiserror` error prints only its
/// own message, and the cause (`No space left on device`) is what the operator needs.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

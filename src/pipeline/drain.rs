//! The drain loop: the one place where queued records become written, acknowledged units.
//! The daemon's sink thread and the tracing Layer's worker both run [`Drain::run`].
//!
//! Each turn gathers a flush unit ([`batch::next_unit`]), writes it through a [`Sink`],
//! retries what failed with one backoff ([`Backoff`]) behind one circuit breaker
//! ([`Breaker`]), dead-letters what the sink refused for good, and hands the unit back to
//! the caller's acknowledgement in the order it was gathered. It beats a heartbeat while it
//! works or waits (an outage is not a hang) and honours one [`Stop`]: once its deadline has
//! passed, the unit in hand is given up unacknowledged, so file sources read it again at
//! the next start.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Table;
use super::batch::{self, BatchConfig, Next, Received, UnitSource};
use super::heartbeat::Heartbeat;
use super::progress::Progress;
use crate::sink::RetryConfig;
use crate::sink::breaker::{Breaker, CircuitState, Permit};
use crate::sink::deadletter::{DeadLetter, DeadLetterEntry};
use crate::sink::retry::{Backoff, Failure, RowFailure};

/// The drain loop beats at least this often, whatever it waits for.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// The longest wait between probes while the breaker is open: writes resume within this
/// of the output taking them again.
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// An output for flush units: Cassandra, a file, stdout, nothing. Pluggable storage: the
/// drain loop knows only this trait. See docs/sinks.md for writing a new one.
pub trait Sink: Send {
    /// What a unit holds.
    type Item;

    /// One attempt at writing `unit[i]` for every `i` in `pending` (ascending). Returns
    /// the rows that were not written, each with what its failure means; an empty vector
    /// means every pending row is written, durably for a sink that persists (the caller
    /// acknowledges the unit next, which advances checkpoints). Should give up soon after
    /// `stop`'s deadline passes.
    fn write(&mut self, unit: &[Self::Item], pending: &[usize], stop: &Stop) -> Vec<RowFailure>;

    /// The dead-letter entry for an item the sink refused for good.
    fn dead_letter(&self, item: &Self::Item, reason: &str) -> DeadLetterEntry;

    /// The longest one attempt can take when the output is slow but alive (its request
    /// timeouts): the thread counts as waiting, not stuck, for that long.
    fn attempt_bound(&self) -> Duration {
        Duration::from_secs(10)
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    type Item = S::Item;

    fn write(&mut self, unit: &[Self::Item], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        (**self).write(unit, pending, stop)
    }

    fn dead_letter(&self, item: &Self::Item, reason: &str) -> DeadLetterEntry {
        (**self).dead_letter(item, reason)
    }

    fn attempt_bound(&self) -> Duration {
        (**self).attempt_bound()
    }
}

/// Where units come from, with a hook for control that travels beside the items (the
/// Layer's flush requests).
pub trait Source: UnitSource {
    /// Called whenever the loop holds nothing unacknowledged (after each acknowledged
    /// unit, and when nothing arrived); `Break` ends the loop.
    fn settled(&self) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<T> Source for super::queue::QueueReceiver<T> {}
impl<T> Source for crossbeam_channel::Receiver<T> {}

/// The one stop signal: a deadline after which writes give up. Cheap to clone; every
/// clone sees the same deadline.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Milliseconds since `EPOCH`, 0 = none; read on every wait, so an atomic.
    deadline: Arc<AtomicU64>,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Stop {
    /// A signal with no deadline.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Give up writing from `deadline` on (an earlier deadline set before stays).
    pub fn at(&self, deadline: Instant) {
        let ms = deadline.saturating_duration_since(epoch()).as_millis() as u64 + 1;
        let _ = self
            .deadline
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                (d == 0 || ms < d).then_some(ms)
            });
    }

    /// Give up now.
    pub fn now(&self) {
        self.at(Instant::now());
    }

    /// The deadline, if one is set.
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(epoch() + Duration::from_millis(ms - 1)),
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Sleeps up to `d`, beating `heartbeat` and waking early at the deadline; false if
    /// the deadline passed.
    pub fn sleep(&self, d: Duration, heartbeat: &Heartbeat) -> bool {
        let until = Instant::now() + d;
        loop {
            heartbeat.beat();
            if self.passed() {
                return false;
            }
            let mut left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            if let Some(dl) = self.deadline() {
                left = left.min(dl.saturating_duration_since(Instant::now()));
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// How the loop retries.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Backoff between attempts while the breaker is closed.
    pub retry: RetryConfig,
    /// Records wait this long unacknowledged before writes count as stalled.
    pub stall_after: Duration,
}

impl Policy {
    /// The breaker this policy asks for: opens after `breaker_threshold` failed attempts,
    /// probes after `breaker_cooldown` but never less often than every
    /// [`MAX_PROBE_INTERVAL`].
    pub fn breaker(&self) -> Breaker {
        let cooldown = self.retry.breaker_cooldown.min(MAX_PROBE_INTERVAL);
        Breaker::new(self.retry.breaker_threshold, cooldown, MAX_PROBE_INTERVAL)
    }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// Every sender is gone and everything was acknowledged.
    Drained,
    /// The source asked to finish ([`Source::settled`]).
    Finished,
    /// The stop deadline passed; this many records of the unit in hand were not
    /// acknowledged (records still queued are not counted).
    Stopped {
        /// Records of the unit in hand left unacknowledged.
        unacked: usize,
    },
}

/// What delivering one unit took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Attempts made (1 when nothing failed).
    pub attempts: u32,
    /// Records refused for good and dead-lettered.
    pub dead_lettered: usize,
}

/// One drain loop's settings and shared state.
#[derive(Debug, Clone)]
pub struct Drain {
    /// How units are gathered.
    pub batch: BatchConfig,
    /// How failures are retried.
    pub policy: Policy,
    /// When to give up.
    pub stop: Stop,
    /// The loop's heartbeat.
    pub heartbeat: Heartbeat,
    /// What health and metrics read.
    pub progress: Arc<Progress>,
    /// Where refused records go.
    pub dead_letter: DeadLetter,
    /// The table written rows are counted under in the metrics.
    pub table: Table,
}

impl Drain {
    /// Runs until the source is drained, asks to finish, or the stop deadline passes.
    /// `ack` receives each written unit, in the order units were gathered.
    pub fn run<Src, S, A>(&self, source: &Src, sink: &mut S, mut ack: A) -> Ended
    where
        Src: Source<Item = S::Item>,
        S: Sink + ?Sized,
        A: FnMut(Vec<S::Item>),
    {
        let beating = Beating {
            source,
            drain: self,
        };
        loop {
            self.heartbeat.beat();
            self.progress.check();
            if self.stop.passed() {
                return Ended::Stopped { unacked: 0 };
            }
            match batch::next_unit(&beating, &self.batch, HEARTBEAT) {
                Next::Closed => return Ended::Drained,
                Next::Idle => {
                    if source.settled().is_break() {
                        return Ended::Finished;
                    }
                }
                Next::Unit(unit) => {
                    self.progress.handed();
                    if self.deliver(sink, &unit).is_none() {
                        self.progress.abandoned();
                        return Ended::Stopped {
                            unacked: unit.len(),
                        };
                    }
                    ack(unit);
                    self.progress.acked();
                    if source.settled().is_break() {
                        return Ended::Finished;
                    }
                }
            }
        }
    }

    /// Writes the whole unit, retrying and dead-lettering: one turn of the loop without
    /// the gathering (for callers holding a unit already). `None` if the stop deadline
    /// passed first.
    pub fn deliver<S: Sink + ?Sized>(&self, sink: &mut S, unit: &[S::Item]) -> Option<Delivered> {
        let started = Instant::now();
        let progress = &*self.progress;
        let breaker = &progress.breaker;
        let mut pending: Vec<usize> = (0..unit.len()).collect();
        let mut dead: Vec<(usize, String)> = Vec::new();
        let mut backoff = Backoff::new(&self.policy.retry);
        let mut attempts = 0_u32;
        let mut last_fatal: Option<String> = None;
        while !pending.is_empty() {
            self.heartbeat.beat();
            progress.check();
            if self.stop.passed() {
                return None;
            }
            let probe = match breaker.permit() {
                Permit::Probe => true,
                Permit::Wait(d) => {
                    if !self.stop.sleep(d.min(HEARTBEAT), &self.heartbeat) {
                        return None;
                    }
                    continue;
                }
                _ => false,
            };
            if attempts > 0 {
                progress.metrics.add_retry();
            }
            attempts += 1;
            let batch: &[usize] = if probe { &pending[..1] } else { &pending };
            self.heartbeat
                .waiting_until(Instant::now() + sink.attempt_bound());
            let failures = sink.write(unit, batch, &self.stop);
            self.heartbeat.beat();
            progress.metrics.add_failed_requests(failures.len() as u64);

            let mut failed = Vec::new();
            let mut reason: Option<String> = None;
            let mut fatal: Option<String> = None;
            let mut reached = false;
            let mut not_written = vec![false; unit.len()];
            for RowFailure { index, failure } in failures {
                not_written[index] = true;
                match failure {
                    Failure::Reject(r) => {
                        reached = true;
                        dead.push((index, r));
                    }
                    Failure::Fatal(r) => {
                        reached = true;
                        fatal.get_or_insert_with(|| r.clone());
                        reason.get_or_insert(r);
                        failed.push(index);
                    }
                    Failure::Unreachable(r) => {
                        reason.get_or_insert(r);
                        failed.push(index);
                    }
                    other => {
                        reached = true;
                        reason.get_or_insert_with(|| other.reason().to_owned());
                        failed.push(index);
                    }
                }
            }
            let written = batch.iter().filter(|&&i| !not_written[i]).count();
            let count = |n: usize| match self.table {
                Table::InfrastructureLogs => progress.metrics.add_rows(n as u64, 0),
                Table::ApplicationLogs => progress.metrics.add_rows(0, n as u64),
            };
            count(written);
            progress.set_connected(reached || written > 0);

            let mut next: Vec<usize> = pending[batch.len()..].to_vec();
            next.extend(failed.iter().copied());
            next.sort_unstable();
            pending = next;

            let Some(reason) = reason else {
                breaker.on_success();
                backoff = Backoff::new(&self.policy.retry);
                continue;
            };
            if written == 0 || probe {
                breaker.on_failure(&reason);
            }
            progress.set_error(Some(reason.clone()));
            if fatal.is_none() && breaker.state() != CircuitState::Closed {
                // The open breaker paces the probes (at most MAX_PROBE_INTERVAL apart):
                // sleeping the backoff as well would delay the resume by up to
                // max_backoff after the output takes writes again.
                tracing::debug!(pending = pending.len(), error = %reason, "write attempt failed; the breaker paces the next probe");
                continue;
            }
            let delay = match fatal {
                // Nothing will be accepted until an operator acts: say so once per
                // reason, keep the unit (the files are the buffer) and try again slowly.
                Some(f) => {
                    if last_fatal.as_deref() != Some(f.as_str()) {
                        tracing::error!(error = %f, "the sink refuses writes; keeping the unit and retrying");
                        last_fatal = Some(f);
                    }
                    self.policy.retry.max_backoff
                }
                None => backoff.next_delay(),
            };
            tracing::debug!(pending = pending.len(), ?delay, error = %reason, "write attempt failed; retrying");
            if !self.stop.sleep(delay, &self.heartbeat) {
                return None;
            }
        }
        if !dead.is_empty() {
            let entries: Vec<DeadLetterEntry> = dead
                .iter()
                .map(|(i, r)| sink.dead_letter(&unit[*i], r))
                .collect();
            // The unit is acknowledged only once its refused records are safe on disk.
            let mut backoff = Backoff::new(&self.policy.retry);
            while let Err(e) = self.dead_letter.append(&entries) {
                let reason = format!("{e:#}");
                tracing::error!(error = %reason, "cannot write refused records to the dead-letter file; retrying");
                progress.set_error(Some(reason));
                if !self.stop.sleep(backoff.next_delay(), &self.heartbeat) {
                    return None;
                }
            }
            progress.metrics.add_dead_lettered(dead.len() as u64);
        }
        progress.metrics.add_unit(started.elapsed());
        Some(Delivered {
            attempts,
            dead_lettered: dead.len(),
        })
    }
}

/// The source seen through the loop: waits are cut into heartbeat steps, so a long linger
/// or an idle pipeline never looks like a stuck thread, and stalls are noticed on time.
struct Beating<'a, Src> {
    source: &'a Src,
    drain: &'a Drain,
}

impl<Src: UnitSource> UnitSource for Beating<'_, Src> {
    type Item = Src::Item;

    fn unit_vec(&self, capacity: usize) -> Vec<Src::Item> {
        self.source.unit_vec(capacity)
    }

    fn recv_timeout(&self, timeout: Duration) -> Received<Src::Item> {
        if timeout.is_zero() {
            return self.source.recv_timeout(timeout);
        }
        let until = Instant::now() + timeout;
        loop {
            let step = until
                .saturating_duration_since(Instant::now())
                .min(HEARTBEAT);
            self.drain
                .heartbeat
                .waiting_until(Instant::now() + step + HEARTBEAT);
            let asked = Instant::now();
            match self.source.recv_timeout(step) {
                Received::Timeout => {
                    self.drain.heartbeat.beat();
                    self.drain.progress.check();
                    // A source that answers before its step is up ends the unit (the
                    // Layer's flush request): pass that on.
                    let early = asked.elapsed() < step;
                    if early || Instant::now() >= until || self.drain.stop.passed() {
                        return Received::Timeout;
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests;

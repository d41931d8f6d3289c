//! The circuit breaker: after repeated failed attempts it stops sending whole units,
//! waits, then lets one small probe through. The one breaker of the code base (the drain
//! loop's). The probe interval is bounded (see [`Breaker::new`]) so writes resume within a
//! few seconds of the output taking them again, while a down cluster sees one small write
//! per interval, not a flood. Outage logs (one WARN, one INFO) belong to the drain loop's
//! progress tracker, which measures the outage from the last acknowledgement.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The breaker's state, as `/metrics` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Writing normally.
    Closed,
    /// Failing: no writes until the cool-down ends.
    Open,
    /// One probe is being sent to see whether the cluster is back.
    HalfOpen,
}

impl CircuitState {
    /// 0 closed, 1 half-open, 2 open: a gauge value.
    pub const fn as_gauge(self) -> u8 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }

    const fn from_gauge(v: u8) -> CircuitState {
        match v {
            0 => CircuitState::Closed,
            1 => CircuitState::HalfOpen,
            _ => CircuitState::Open,
        }
    }
}

/// What a writer may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Permit {
    /// Send everything.
    Full,
    /// Send one row only; its outcome decides the breaker.
    Probe,
    /// Wait this long, then ask again.
    Wait(Duration),
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    open_until: Instant,
    cooldown: Duration,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

/// Counts failed attempts; open after `threshold` of them in a row.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    base_cooldown: Duration,
    max_cooldown: Duration,
    state: AtomicU8,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failed attempts in a row, then lets a
    /// probe through after `cooldown`, doubling the wait while probes fail, up to
    /// `max_cooldown`.
    pub fn new(threshold: u32, cooldown: Duration, max_cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            base_cooldown: cooldown,
            max_cooldown: max_cooldown.max(cooldown),
            state: AtomicU8::new(CircuitState::Closed.as_gauge()),
            inner: Mutex::new(Inner {
                failures: 0,
                open_until: Instant::now(),
                cooldown,
                opened_at: None,
                probe_in_flight: false,
            }),
        }
    }

    /// The state now.
    pub fn state(&self) -> CircuitState {
        CircuitState::from_gauge(self.state.load(Ordering::Relaxed))
    }

    fn set(&self, s: CircuitState) {
        self.state.store(s.as_gauge(), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is plain counters: still consistent after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the writer may send now.
    pub fn permit(&self) -> Permit {
        let mut inner = self.lock();
        match self.state() {
            CircuitState::Closed => Permit::Full,
            CircuitState::HalfOpen if inner.probe_in_flight => {
                Permit::Wait(Duration::from_millis(50))
            }
            CircuitState::HalfOpen | CircuitState::Open => {
                let now = Instant::now();
                if now < inner.open_until {
                    return Permit::Wait(inner.open_until - now);
                }
                if self.state() == CircuitState::Open {
                    tracing::debug!("circuit breaker half-open: probing");
                    self.set(CircuitState::HalfOpen);
                }
                inner.probe_in_flight = true;
                Permit::Probe
            }
        }
    }

    /// Records a successful attempt: closes the breaker.
    pub fn on_success(&self) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.probe_in_flight = false;
        inner.cooldown = self.base_cooldown;
        if self.state() != CircuitState::Closed {
            let open = inner.opened_at.take().map_or(0, |t| t.elapsed().as_secs());
            tracing::debug!(
                open_secs = open,
                "circuit breaker closed after {open} s open"
            );
            self.set(CircuitState::Closed);
        }
    }

    /// Records a failed attempt; `reason` is logged when this opens the circuit.
    pub fn on_failure(&self, reason: &str) {
        let mut inner = self.lock();
        let now = Instant::now();
        match self.state() {
            CircuitState::Closed => {
                inner.failures += 1;
                if inner.failures >= self.threshold {
                    inner.cooldown = self.base_cooldown;
                    inner.open_until = now + inner.cooldown;
                    inner.opened_at = Some(now);
                    self.set(CircuitState::Open);
                    tracing::info!(
                        error = reason,
                        "circuit breaker open after {} failed attempts: {reason}; probing every {} s or more",
                        inner.failures,
                        inner.cooldown.as_secs()
                    );
                }
            }
            CircuitState::HalfOpen | CircuitState::Open => {
                inner.probe_in_flight = false;
                inner.cooldown = (inner.cooldown * 2).min(self.max_cooldown);
                inner.open_until = now + inner.cooldown;
                if self.state() == CircuitState::HalfOpen {
                    tracing::debug!(error = reason, "probe failed; breaker open again");
                    self.set(CircuitState::Open);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_then_closes() {
        let b = Breaker::new(3, Duration::ZERO, Duration::ZERO);
        assert_eq!(b.permit(), Permit::Full);
        b.on_failure("timeout");
        b.on_failure("timeout");
        assert_eq!(b.state(), CircuitState::Closed);
        b.on_failure("timeout");
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.permit(), Permit::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(matches!(b.permit(), Permit::Wait(_)), "one probe at a time");
        b.on_failure("still down");
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.permit(), Permit::Probe);
        b.on_success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.permit(), Permit::Full);
    }

    #[test]
    fn open_breaker_makes_writers_wait_and_cooldown_doubles() {
        let b = Breaker::new(1, Duration::from_secs(5), Duration::from_secs(30));
        b.on_failure("down");
        match b.permit() {
            Permit::Wait(d) => assert!(d > Duration::from_secs(4) && d <= Duration::from_secs(5)),
            other => panic!("{other:?}"),
        }
        b.lock().open_until = Instant::now();
        assert_eq!(b.permit(), Permit::Probe);
        b.on_failure("down");
        match b.permit() {
            Permit::Wait(d) => assert!(d > Duration::from_secs(9), "{d:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn success_resets_the_failure_count() {
        let b = Breaker::new(2, Duration::ZERO, Duration::ZERO);
        b.on_failure("x");
        b.on_success();
        b.on_failure("x");
        assert_eq!(b.state(), CircuitState::Closed);
    }
}

//! Liveness of the long-running threads (the drain loop, every tailer): each one proves it
//! is alive by beating, and the systemd watchdog ping stops when one of them is stuck.
//!
//! Waiting is not being stuck: a thread about to block until some instant says so with
//! [`waiting_until`], and counts as alive until then. A thread counts as stuck only when
//! it has neither beaten nor announced a wait for longer than the bound the caller asks
//! about ([`stuck`]), e.g. a sink write wedged in the driver or a tailer blocked in a read
//! of a dead network filesystem.
//!
//! The registry is process-wide so a thread registers itself with one line
//! ([`register_current`]) and beats with another ([`beat`]), without handles passed
//! through every constructor. A thread's entry leaves the registry when its guard drops.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// One thread's heartbeat: milliseconds since the registry's epoch until which the thread
/// is known to be alive.
#[derive(Debug)]
struct Beat {
    name: String,
    alive_until_ms: AtomicU64,
}

#[derive(Debug)]
struct Registry {
    epoch: Instant,
    beats: Mutex<Vec<Weak<Beat>>>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        epoch: Instant::now(),
        beats: Mutex::new(Vec::new()),
    })
}

fn ms_of(t: Instant) -> u64 {
    t.saturating_duration_since(registry().epoch).as_millis() as u64
}

thread_local! {
    static CURRENT: RefCell<Option<Heartbeat>> = const { RefCell::new(None) };
}

/// A registered heartbeat; the thread holding it is watched until it is dropped.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    beat: Arc<Beat>,
}

impl Heartbeat {
    /// Registers a heartbeat named `name` (shown when the thread is stuck).
    pub fn register(name: impl Into<String>) -> Heartbeat {
        let beat = Arc::new(Beat {
            name: name.into(),
            alive_until_ms: AtomicU64::new(ms_of(Instant::now())),
        });
        let mut beats = registry().beats.lock().unwrap_or_else(|p| p.into_inner());
        beats.retain(|w| w.strong_count() > 0);
        beats.push(Arc::downgrade(&beat));
        Heartbeat { beat }
    }

    /// The thread is alive now.
    pub fn beat(&self) {
        self.beat
            .alive_until_ms
            .fetch_max(ms_of(Instant::now()), Ordering::Relaxed);
    }

    /// The thread is about to wait, at most until `until`: alive until then.
    pub fn waiting_until(&self, until: Instant) {
        self.beat
            .alive_until_ms
            .fetch_max(ms_of(until), Ordering::Relaxed);
    }
}

/// Registers a heartbeat for the calling thread, used by [`beat`] and [`waiting_until`]
/// on this thread; it is watched until the returned guard drops.
#[must_use = "the thread is watched only while the guard lives"]
pub fn register_current(name: impl Into<String>) -> CurrentGuard {
    let hb = Heartbeat::register(name);
    CURRENT.with(|c| *c.borrow_mut() = Some(hb));
    CurrentGuard { _private: () }
}

/// Keeps the calling thread's heartbeat registered; dropping it unregisters.
#[derive(Debug)]
pub struct CurrentGuard {
    _private: (),
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.borrow_mut().take());
    }
}

/// Beats the calling thread's heartbeat (a no-op on a thread without one).
pub fn beat() {
    let _ = CURRENT.try_with(|c| {
        if let Some(hb) = c.borrow().as_ref() {
            hb.beat();
        }
    });
}

/// The calling thread waits at most until `until` (a no-op on a thread without one).
pub fn waiting_until(until: Instant) {
    let _ = CURRENT.try_with(|c| {
        if let Some(hb) = c.borrow().as_ref() {
            hb.waiting_until(until);
        }
    });
}

/// Threads whose heartbeat is older than `bound`, with how long they have been silent.
pub fn stuck(bound: Duration) -> Vec<(String, Duration)> {
    let now = ms_of(Instant::now());
    let beats = registry().beats.lock().unwrap_or_else(|p| p.into_inner());
    beats
        .iter()
        .filter_map(Weak::upgrade)
        .filter_map(|b| {
            let silent = now.saturating_sub(b.alive_until_ms.load(Ordering::Relaxed));
            (silent > bound.as_millis() as u64)
                .then(|| (b.name.clone(), Duration::from_millis(silent)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_thread_is_stuck_a_waiting_one_is_not() {
        let silent = Heartbeat::register("test-silent");
        let waiting = Heartbeat::register("test-waiting");
        waiting.waiting_until(Instant::now() + Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(30));
        let names: Vec<String> = stuck(Duration::from_millis(10))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(names.contains(&"test-silent".to_owned()), "{names:?}");
        assert!(!names.contains(&"test-waiting".to_owned()), "{names:?}");
        silent.beat();
        let names: Vec<String> = stuck(Duration::from_millis(10))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(!names.contains(&"test-silent".to_owned()), "{names:?}");
    }

    #[test]
    fn a_dropped_heartbeat_leaves_the_registry() {
        let gone = Heartbeat::register("test-gone");
        drop(gone);
        std::thread::sleep(Duration::from_millis(20));
        assert!(stuck(Duration::ZERO).iter().all(|(n, _)| n != "test-gone"));
    }

    #[test]
    fn the_current_threads_heartbeat_is_beaten_by_the_free_functions() {
        std::thread::spawn(|| {
            let _guard = register_current("test-current");
            std::thread::sleep(Duration::from_millis(30));
            beat();
            assert!(
                stuck(Duration::from_millis(20))
                    .iter()
                    .all(|(n, _)| n != "test-current")
            );
        })
        .join()
        .unwrap();
    }
}

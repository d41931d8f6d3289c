//! `ack = "written"`: requests waiting for the drain loop to acknowledge their events.
//!
//! A request registers one waiter per event id before it queues them; the drain loop's
//! acknowledgement callback releases, for each written event, the oldest waiter of its id
//! (the queue is FIFO, so that is the registration of that very event).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::sink::AppEvent;

/// One request's wait.
#[derive(Debug)]
pub(crate) struct Waiter {
    left: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Waiter {
    /// Resolves once every event of the request is written.
    pub(crate) async fn wait(&self) {
        while self.left.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
    }
}

/// Every waiting request, by event id.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_id: Mutex<HashMap<Uuid, VecDeque<Arc<Waiter>>>>,
}

impl Waiters {
    /// Registers a request of these events.
    pub(crate) fn register(&self, ids: &[Uuid]) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            left: AtomicUsize::new(ids.len()),
            done: tokio::sync::Notify::new(),
        });
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            map.entry(*id).or_default().push_back(Arc::clone(&waiter));
        }
        waiter
    }

    /// Takes back a registration whose events were not queued.
    pub(crate) fn cancel(&self, ids: &[Uuid], waiter: &Arc<Waiter>) {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            if let Some(q) = map.get_mut(id) {
                if let Some(pos) = q.iter().rposition(|w| Arc::ptr_eq(w, waiter)) {
                    q.remove(pos);
                }
                if q.is_empty() {
                    map.remove(id);
                }
            }
        }
    }

    /// The drain loop acknowledged `unit`.
    pub(crate) fn written(&self, unit: &[AppEvent]) {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return;
        }
        for e in unit {
            let Some(q) = map.get_mut(&e.id) else {
                continue;
            };
            let waiter = q.pop_front();
            if q.is_empty() {
                map.remove(&e.id);
            }
            if let Some(w) = waiter {
                if w.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    w.done.notify_waiters();
                    w.done.notify_one();
                }
            }
        }
    }
}

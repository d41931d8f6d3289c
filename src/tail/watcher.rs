//! Wake-ups from inotify (through `notify`), one watch per directory.
//!
//! Events are only hints that something changed: the periodic rescan stays the source of
//! truth, so a lost or overflowed event delays a line, never loses it. Directories that
//! cannot be watched (not there yet, watch limit reached) are polled instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// Wake-ups buffered between the notify thread and the source thread. When full, events
/// are dropped and a full rescan is requested instead.
const WAKE_CAPACITY: usize = 4096;

/// What a notify event means to a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A file's content changed.
    Data(PathBuf),
    /// Something was created, removed or renamed in this directory.
    Dir(PathBuf),
    /// Events were lost: rescan everything.
    Rescan,
}

/// The inotify watches of one source's directories, or polling where inotify cannot watch.
pub struct DirWatcher {
    source: Arc<str>,
    watcher: Option<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Existing directories that could not be watched.
    polled: HashSet<PathBuf>,
    /// Roots that do not exist yet.
    missing: HashSet<PathBuf>,
    wakes: Receiver<Wake>,
    overflow: Arc<AtomicBool>,
}

impl DirWatcher {
    /// A watcher for the source named `source` (used in logs), watching nothing yet.
    pub fn new(source: Arc<str>) -> Self {
        let (tx, wakes) = crossbeam_channel::bounded(WAKE_CAPACITY);
        let overflow = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&overflow);
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            forward(ev, &tx, &flag);
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    source = %source,
                    error = %e,
                    "cannot start inotify; polling every directory instead (check fs.inotify.max_user_instances)"
                );
                None
            }
        };
        DirWatcher {
            source,
            watcher,
            watched: HashSet::new(),
            polled: HashSet::new(),
            missing: HashSet::new(),
            wakes,
            overflow,
        }
    }

    /// Where file and directory events arrive.
    pub fn wakes(&self) -> &Receiver<Wake> {
        &self.wakes
    }

    /// True once after wake-ups were dropped: the caller must rescan everything.
    pub fn take_overflow(&self) -> bool {
        self.overflow.swap(false, Ordering::Relaxed)
    }

    /// Whether some directory must be polled.
    pub fn needs_polling(&self) -> bool {
        !self.polled.is_empty() || !self.missing.is_empty()
    }

    /// Directories that are polled because inotify could not watch them.
    pub fn polled(&self) -> impl Iterator<Item = &PathBuf> {
        self.polled.iter()
    }

    /// Root directories that do not exist yet.
    pub fn missing(&self) -> impl Iterator<Item = &PathBuf> {
        self.missing.iter()
    }

    /// Whether `dir` has an inotify watch.
    pub fn is_watched(&self, dir: &Path) -> bool {
        self.watched.contains(dir) || self.polled.contains(dir)
    }

    /// Watches exactly `dirs` (the directories a full scan found), polls those that cannot
    /// be watched and remembers the `missing` roots.
    pub fn sync(&mut self, dirs: &[PathBuf], missing: &[PathBuf]) {
        let wanted: HashSet<&PathBuf> = dirs.iter().collect();
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|d| !wanted.contains(d))
            .cloned()
            .collect();
        for dir in stale {
            if let Some(w) = &mut self.watcher {
                // The directory may be gone already, taking its watch with it.
                let _ = w.unwatch(&dir);
            }
            self.watched.remove(&dir);
        }
        self.polled.retain(|d| wanted.contains(d));
        for dir in dirs {
            if self.watched.contains(dir) || self.polled.contains(dir) {
                continue;
            }
            let result = match &mut self.watcher {
                Some(w) => w
                    .watch(dir, RecursiveMode::NonRecursive)
                    .map_err(|e| e.to_string()),
                None => Err("inotify unavailable".to_owned()),
            };
            match result {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                }
                Err(e) => {
                    if self.watcher.is_some() {
                        tracing::warn!(
                            source = %self.source,
                            dir = %dir.display(),
                            error = %e,
                            "cannot watch directory; polling it instead (check fs.inotify.max_user_watches)"
                        );
                    }
                    self.polled.insert(dir.clone());
                }
            }
        }
        let now_missing: HashSet<PathBuf> = missing.iter().cloned().collect();
        for dir in now_missing.difference(&self.missing) {
            tracing::info!(source = %self.source, dir = %dir.display(), "directory does not exist yet; checking for it periodically");
        }
        self.missing = now_missing;
    }
}

fn forward(ev: notify::Result<notify::Event>, tx: &Sender<Wake>, overflow: &AtomicBool) {
    let send = |w: Wake| {
        if let Err(TrySendError::Full(_)) = tx.try_send(w) {
            overflow.store(true, Ordering::Relaxed);
        }
    };
    let ev = match ev {
        Ok(ev) => ev,
        Err(_) => return send(Wake::Rescan),
    };
    if ev.need_rescan() {
        return send(Wake::Rescan);
    }
    match ev.kind {
        EventKind::Modify(ModifyKind::Data(_)) | EventKind::Modify(ModifyKind::Any) => {
            for p in ev.paths {
                send(Wake::Data(p));
            }
        }
        EventKind::Access(_) => {}
        _ => {
            for p in ev.paths {
                if let Some(dir) = p.parent() {
                    send(Wake::Dir(dir.to_owned()));
                }
            }
        }
    }
}

//! The thread that follows one source's files: discovery, reading, rotation, hand-off of
//! records to the queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use logship_parsers::{Entry, Parser};

use crate::pipeline::heartbeat;
use crate::pipeline::{FileId, FileRecord, Origin, QueueSender, queue::SendError};

use super::SourceSpec;
use super::ack::{AckTracker, Claimed};
use super::config::{ReadFrom, TailConfig};
use super::discover::Patterns;
use super::reader::{Batch, FileReader, Key, OpenError, ReadStatus};
use super::watcher::{DirWatcher, Wake};

/// Bytes read from one file before the others get a turn.
const READ_BUDGET: u64 = 1024 * 1024;
const READ_BUF: usize = 64 * 1024;
/// How often a source blocked on a full queue looks for a stop request.
const SEND_POLL: Duration = Duration::from_millis(100);
/// A tailer waiting for file events counts as alive until its wait's end plus this.
const HEARTBEAT_SLACK: Duration = Duration::from_secs(5);

/// Counters of one source, read by metrics.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Newline-terminated lines read.
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
    /// Records handed to the queue.
    pub records: AtomicU64,
    /// Records whose entry did not parse.
    pub parse_errors: AtomicU64,
    /// Files followed now.
    pub files: AtomicU64,
}

/// What every source thread shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub tracker: Arc<AckTracker>,
    pub open_files: Arc<AtomicUsize>,
    pub config: TailConfig,
}

pub(crate) enum Control {
    Stop,
}

/// Stop was requested (or the queue's reader is gone) while records were being sent.
struct Stopped;

pub(crate) struct SourceWorker {
    spec: SourceSpec,
    parser: Arc<dyn Parser>,
    patterns: Patterns,
    shared: Shared,
    queue: QueueSender<FileRecord>,
    control: Receiver<Control>,
    counters: Arc<SourceCounters>,
    watcher: DirWatcher,
    readers: HashMap<Key, FileReader>,
    by_path: HashMap<PathBuf, Key>,
    ready: VecDeque<Key>,
    ready_set: HashSet<Key>,
    open_order: VecDeque<Key>,
    /// Readers with a held multi-line entry or rotated away: they have deadlines.
    timed: HashSet<Key>,
    /// Paths that failed, with the error kind logged (one log line per change).
    failed: HashMap<PathBuf, io::ErrorKind>,
    claim_warned: HashSet<Key>,
    buf: Vec<u8>,
    stopping: bool,
}

impl SourceWorker {
    pub(crate) fn new(
        spec: SourceSpec,
        parser: Arc<dyn Parser>,
        patterns: Patterns,
        shared: Shared,
        queue: QueueSender<FileRecord>,
        control: Receiver<Control>,
        counters: Arc<SourceCounters>,
    ) -> Self {
        let watcher = DirWatcher::new(Arc::clone(&spec.name));
        SourceWorker {
            spec,
            parser,
            patterns,
            shared,
            queue,
            control,
            counters,
            watcher,
            readers: HashMap::new(),
            by_path: HashMap::new(),
            ready: VecDeque::new(),
            ready_set: HashSet::new(),
            open_order: VecDeque::new(),
            timed: HashSet::new(),
            failed: HashMap::new(),
            claim_warned: HashSet::new(),
            buf: vec![0; READ_BUF],
            stopping: false,
        }
    }

    /// Follows the files until told to stop. `first_start`: apply `read_from` to the files
    /// found now. `started` is signalled once they are found and positioned.
    pub(crate) fn run(mut self, first_start: bool, started: Sender<()>) {
        tracing::info!(source = %self.spec.name, "source started");
        let _alive = heartbeat::register_current(format!("tail:{}", self.spec.name));
        self.rescan(None, first_start && self.spec.read_from == ReadFrom::End);
        self.adopt_rotated();
        let _ = started.send(());
        drop(started);
        let cfg = self.shared.config.clone();
        let mut next_rescan = Instant::now() + cfg.rescan_interval();
        let mut next_poll = Instant::now() + cfg.poll_interval();
        while !self.stopping {
            self.drain_ready();
            if self.stopping {
                break;
            }
            let now = Instant::now();
            let mut deadline = next_rescan;
            if self.watcher.needs_polling() {
                deadline = deadline.min(next_poll);
            }
            if let Some(t) = self.next_timer() {
                deadline = deadline.min(t);
            }
            let wait = deadline.saturating_duration_since(now);
            heartbeat::waiting_until(deadline + HEARTBEAT_SLACK);
            let wakes = self.watcher.wakes().clone();
            crossbeam_channel::select! {
                recv(self.control) -> _ => {
                    self.stopping = true;
                    break;
                }
                recv(wakes) -> w => {
                    if let Ok(w) = w {
                        self.handle_wakes(w, &wakes);
                    }
                }
                default(wait) => {}
            }
            if self.watcher.take_overflow() {
                tracing::debug!(source = %self.spec.name, "file events overflowed; rescanning");
                self.rescan(None, false);
            }
            let now = Instant::now();
            if now >= next_rescan {
                self.rescan(None, false);
                self.close_idle(now);
                next_rescan = now + cfg.rescan_interval();
            }
            if self.watcher.needs_polling() && now >= next_poll {
                self.poll();
                next_poll = now + cfg.poll_interval();
            }
            self.run_timers(Instant::now());
        }
        self.shutdown();
    }

    /// At start-up, finds files that were rotated out of the patterns while the agent was
    /// down (`access.log` renamed to `access.log.1`): same device, inode and head as a
    /// checkpoint, with bytes past it. They are read to their end and let go, so lines
    /// written before the rotation are not lost.
    fn adopt_rotated(&mut self) {
        let candidates = self.shared.tracker.unowned_inodes();
        if candidates.is_empty() {
            return;
        }
        let dirs: Vec<PathBuf> = self.patterns.scan().dirs;
        let now = Instant::now();
        for dir in dirs {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                let key = (meta.dev(), meta.ino());
                if !meta.is_file() || self.readers.contains_key(&key) {
                    continue;
                }
                let Some((_, acked)) = candidates.get(&key) else {
                    continue;
                };
                if meta.len() <= *acked {
                    continue;
                }
                tracing::info!(
                    source = %self.spec.name,
                    file = %path.display(),
                    "file rotated while the agent was stopped; reading the rest of it"
                );
                let mut r = FileReader::new(key, path, self.spec.max_line_bytes, 0);
                r.adopt_only = true;
                r.gone_since = Some(now);
                self.readers.insert(key, r);
                self.timed.insert(key);
                self.mark_ready(key);
            }
        }
    }

    fn handle_wakes(&mut self, first: Wake, wakes: &Receiver<Wake>) {
        let mut dirs: HashSet<PathBuf> = HashSet::new();
        let mut full = false;
        for w in std::iter::once(first).chain(wakes.try_iter().take(4 * READ_BUF)) {
            match w {
                Wake::Data(path) => match self.by_path.get(&path) {
                    Some(&key) => self.mark_ready(key),
                    None => {
                        if self.patterns.matches(&path) {
                            if let Some(d) = path.parent() {
                                dirs.insert(d.to_owned());
                            }
                        }
                    }
                },
                Wake::Dir(dir) => {
                    if self.watcher.is_watched(&dir) {
                        dirs.insert(dir);
                    } else {
                        full = true;
                    }
                }
                Wake::Rescan => full = true,
            }
        }
        if full {
            self.rescan(None, false);
        } else if !dirs.is_empty() {
            let dirs: Vec<PathBuf> = dirs.into_iter().collect();
            self.rescan(Some(&dirs), false);
        }
    }

    fn poll(&mut self) {
        if self.watcher.missing().any(|d| d.is_dir()) {
            self.rescan(None, false);
            return;
        }
        let dirs: Vec<PathBuf> = self.watcher.polled().cloned().collect();
        if !dirs.is_empty() {
            self.rescan(Some(&dirs), false);
        }
    }

    fn mark_ready(&mut self, key: Key) {
        if self.ready_set.insert(key) {
            self.ready.push_back(key);
        }
    }

    /// Finds the source's files (all, or those in `scope`), notices new, renamed, rotated
    /// and deleted ones. `from_end`: position new files at their end (first start).
    fn rescan(&mut self, scope: Option<&[PathBuf]>, from_end: bool) {
        let paths = match scope {
            None => {
                let scan = self.patterns.scan();
                self.watcher.sync(&scan.dirs, &scan.missing);
                scan.files
            }
            Some(dirs) => dirs
                .iter()
                .flat_map(|d| self.patterns.scan_dir(d))
                .collect(),
        };
        let mut seen: HashSet<&Path> = HashSet::with_capacity(paths.len());
        for path in &paths {
            let meta = match fs::metadata(path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.report_error(path, &e);
                    continue;
                }
            };
            // FIFOs and devices would block or never end; directories are not logs.
            if !meta.is_file() {
                continue;
            }
            let key = (meta.dev(), meta.ino());
            seen.insert(path);
            match self.readers.get_mut(&key) {
                Some(r) => {
                    if r.path != *path {
                        tracing::info!(
                            source = %self.spec.name,
                            file = %path.display(),
                            from = %r.path.display(),
                            "file renamed; still reading it"
                        );
                        r.set_path(path.clone());
                    }
                    if r.gone_since.take().is_some() {
                        self.timed.remove(&key);
                    }
                    if self.by_path.get(path) != Some(&key) {
                        self.by_path.insert(path.clone(), key);
                    }
                    if meta.len() != r.offset() || !r.claimed {
                        self.mark_ready(key);
                    }
                }
                None => {
                    let start = if from_end { meta.len() } else { 0 };
                    let reader =
                        FileReader::new(key, path.clone(), self.spec.max_line_bytes, start);
                    tracing::debug!(source = %self.spec.name, file = %path.display(), "found file");
                    self.readers.insert(key, reader);
                    self.by_path.insert(path.clone(), key);
                    self.mark_ready(key);
                    if from_end {
                        // Position it now, so the checkpoint written right after the
                        // first scan already holds the end.
                        self.prepare(key);
                    }
                }
            }
        }
        let in_scope = |p: &Path| match scope {
            None => true,
            Some(dirs) => p.parent().is_some_and(|d| dirs.iter().any(|s| s == d)),
        };
        let now = Instant::now();
        let mut gone = Vec::new();
        for (key, r) in &mut self.readers {
            if r.gone_since.is_some() || !in_scope(&r.path) {
                continue;
            }
            let still_here =
                seen.contains(r.path.as_path()) && self.by_path.get(&r.path) == Some(key);
            if !still_here {
                r.gone_since = Some(now);
                gone.push((*key, r.path.clone()));
                tracing::info!(
                    source = %self.spec.name,
                    file = %r.path.display(),
                    "file rotated away or deleted; reading it to its end"
                );
            }
        }
        for (key, path) in gone {
            if self.by_path.get(&path) == Some(&key) {
                self.by_path.remove(&path);
            }
            self.timed.insert(key);
            self.mark_ready(key);
        }
        self.counters
            .files
            .store(self.readers.len() as u64, Ordering::Relaxed);
    }

    /// Reads every file with new data, a turn each, until none has more.
    fn drain_ready(&mut self) {
        while let Some(key) = self.ready.pop_front() {
            self.ready_set.remove(&key);
            if let Ok(Control::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) =
                self.control.try_recv()
            {
                self.stopping = true;
            }
            if self.stopping {
                return;
            }
            match self.read_turn(key) {
                Ok(true) => self.mark_ready(key),
                Ok(false) => {}
                Err(Stopped) => {
                    self.stopping = true;
                    return;
                }
            }
        }
    }

    /// Opens the file if needed and claims it; false if it cannot be read now.
    fn prepare(&mut self, key: Key) -> bool {
        let Some(r) = self.readers.get(&key) else {
            return false;
        };
        if !r.is_open() {
            if r.gone_since.is_some() && !r.adopt_only {
                // Its descriptor was closed for idleness: nothing left to read from it.
                self.release(key, true);
                return false;
            }
            if !self.make_room(key) {
                return false;
            }
            let Some(r) = self.readers.get_mut(&key) else {
                return false;
            };
            match r.open() {
                Ok(()) => {
                    self.shared.open_files.fetch_add(1, Ordering::Relaxed);
                    self.open_order.push_back(key);
                    let path = r.path.clone();
                    if self.failed.remove(&path).is_some() {
                        tracing::info!(source = %self.spec.name, file = %path.display(), "file readable again");
                    }
                }
                Err(OpenError::Replaced) => {
                    self.release(key, true);
                    return false;
                }
                Err(OpenError::Io(e)) => {
                    let path = r.path.clone();
                    self.report_error(&path, &e);
                    self.forget(key);
                    return false;
                }
            }
        }
        let Some(r) = self.readers.get_mut(&key) else {
            return false;
        };
        if r.claimed {
            return true;
        }
        let id = match r.identify() {
            Ok(Some(id)) => id,
            // No complete first line yet: nothing to read until it grows.
            Ok(None) => return false,
            Err(e) => {
                let path = r.path.clone();
                self.report_error(&path, &e);
                self.forget(key);
                return false;
            }
        };
        if r.adopt_only && !self.shared.tracker.knows(&id) {
            // Same inode, other head: a new file that reused the inode, not ours.
            self.forget(key);
            return false;
        }
        let size = r.size().ok().flatten().unwrap_or(0);
        let start_if_new = r.start_if_new.min(size);
        match self
            .shared
            .tracker
            .claim(id, &r.path_str, &self.spec.name, || start_if_new)
        {
            Ok(offset) => {
                let offset = if offset > size {
                    tracing::info!(
                        source = %self.spec.name,
                        file = %r.path.display(),
                        checkpoint = offset,
                        size,
                        "file is shorter than its checkpoint (truncated while stopped); reading it from the start"
                    );
                    self.shared.tracker.update(id, size, |a| a.reset(0));
                    0
                } else {
                    offset
                };
                if let Err(e) = r.start_at(offset) {
                    let path = r.path.clone();
                    self.report_error(&path, &e);
                    self.shared.tracker.release(id);
                    self.forget(key);
                    return false;
                }
                r.id = Some(id);
                r.claimed = true;
                self.claim_warned.remove(&key);
                tracing::debug!(source = %self.spec.name, file = %r.path.display(), offset, "reading file");
                true
            }
            Err(Claimed { by }) => {
                if self.claim_warned.insert(key) {
                    tracing::warn!(
                        source = %self.spec.name,
                        file = %r.path.display(),
                        other_source = %by,
                        "file matches another source that already reads it; skipping it here"
                    );
                }
                false
            }
        }
    }

    /// One turn of reading `key`. Ok(true) if it has more to read.
    fn read_turn(&mut self, key: Key) -> Result<bool, Stopped> {
        if !self.prepare(key) {
            return Ok(false);
        }
        let parser = Arc::clone(&self.parser);
        loop {
            heartbeat::beat();
            let Some(r) = self.readers.get_mut(&key) else {
                return Ok(false);
            };
            let mut batch = Batch::default();
            let status = r.read(&mut self.buf, READ_BUDGET, parser.as_ref(), &mut batch);
            let (id, path, pending) = (r.id, Arc::clone(&r.path_str), r.has_pending_entry());
            let size = r.size().ok().flatten().unwrap_or_else(|| r.offset());
            if pending {
                self.timed.insert(key);
            }
            if let Some(id) = id {
                self.deliver(id, &path, size, batch)?;
            }
            match status {
                Ok(ReadStatus::Eof) => return Ok(false),
                Ok(ReadStatus::More) => return Ok(true),
                Ok(ReadStatus::Truncated) => {
                    tracing::info!(source = %self.spec.name, file = %path, "file truncated (copytruncate); reading it again from the start");
                    if let Some(old) = id {
                        self.shared.tracker.update(old, 0, |a| a.reset(0));
                        self.shared.tracker.release(old);
                    }
                    if let Some(r) = self.readers.get_mut(&key) {
                        r.claimed = false;
                        r.start_if_new = 0;
                    }
                    if !self.prepare(key) {
                        return Ok(false);
                    }
                }
                Err(e) => {
                    let p = PathBuf::from(path.as_ref());
                    self.report_error(&p, &e);
                    self.release(key, false);
                    return Ok(false);
                }
            }
        }
    }

    /// Turns entries into records, registers them as in flight, and queues them.
    fn deliver(
        &mut self,
        id: FileId,
        path: &Arc<str>,
        size: u64,
        batch: Batch,
    ) -> Result<(), Stopped> {
        let c = &self.counters;
        c.lines.fetch_add(batch.lines, Ordering::Relaxed);
        c.bytes.fetch_add(batch.bytes, Ordering::Relaxed);
        if batch.entries.is_empty() && batch.settled.is_none() {
            return Ok(());
        }
        let now = jiff::Timestamp::now();
        let records: Vec<FileRecord> = batch
            .entries
            .iter()
            .map(|e| self.record(e, id, path, now))
            .collect();
        let errors = records
            .iter()
            .filter(|r| r.record.parse_error.is_some())
            .count();
        c.parse_errors.fetch_add(errors as u64, Ordering::Relaxed);
        self.shared.tracker.update(id, size, |a| {
            for e in &batch.entries {
                a.register(e.start, e.end);
            }
            if let Some(s) = batch.settled {
                a.skip(s);
            }
        });
        for rec in records {
            let start = rec.origin.start;
            if self.send(rec).is_err() {
                self.shared
                    .tracker
                    .update(id, size, |a| a.unregister_from(start));
                return Err(Stopped);
            }
            self.counters.records.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn record(&self, e: &Entry, id: FileId, path: &Arc<str>, now: jiff::Timestamp) -> FileRecord {
        let mut record = self.parser.record(&e.bytes, &self.spec.context, now);
        if e.truncated {
            record
                .fields
                .insert(super::TRUNCATED_FIELD.to_owned(), "true".to_owned());
        }
        FileRecord {
            record,
            origin: Origin {
                file: id,
                path: Arc::clone(path),
                start: e.start,
                end: e.end,
            },
            route: Arc::clone(&self.spec.route),
        }
    }

    /// Queues one record, waiting while the queue is full; gives up on a stop request.
    fn send(&mut self, mut rec: FileRecord) -> Result<(), Stopped> {
        loop {
            match self.queue.send_timeout(rec, SEND_POLL) {
                Ok(()) => return Ok(()),
                Err(SendError::Closed(_)) => return Err(Stopped),
                Err(SendError::Full(r)) => {
                    // Waiting for room is alive: the sink's thread answers for the wait.
                    heartbeat::beat();
                    rec = r;
                    if let Ok(Control::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) =
                        self.control.try_recv()
                    {
                        return Err(Stopped);
                    }
                }
            }
        }
    }

    /// Closes the least recently opened idle file while too many are open.
    fn make_room(&mut self, opening: Key) -> bool {
        let max = self.shared.config.max_open_files.max(1);
        let mut tries = self.open_order.len();
        while self.shared.open_files.load(Ordering::Relaxed) >= max {
            if tries == 0 {
                return false;
            }
            tries -= 1;
            let Some(k) = self.open_order.pop_front() else {
                return false;
            };
            let Some(r) = self.readers.get_mut(&k) else {
                continue;
            };
            if !r.is_open() {
                continue;
            }
            if k == opening || r.gone_since.is_some() || self.ready_set.contains(&k) {
                self.open_order.push_back(k);
                continue;
            }
            r.close();
            self.shared.open_files.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    fn close_idle(&mut self, now: Instant) {
        let idle = self.shared.config.idle_close();
        let mut keep = VecDeque::with_capacity(self.open_order.len());
        let mut seen = HashSet::new();
        while let Some(k) = self.open_order.pop_front() {
            let Some(r) = self.readers.get_mut(&k) else {
                continue;
            };
            if !r.is_open() || !seen.insert(k) {
                continue;
            }
            let idle_for = now.saturating_duration_since(r.last_data);
            if r.gone_since.is_none() && !self.ready_set.contains(&k) && idle_for >= idle {
                r.close();
                self.shared.open_files.fetch_sub(1, Ordering::Relaxed);
            } else {
                keep.push_back(k);
            }
        }
        self.open_order = keep;
    }

    fn next_timer(&self) -> Option<Instant> {
        let cfg = &self.shared.config;
        self.timed
            .iter()
            .filter_map(|k| self.readers.get(k))
            .filter_map(|r| {
                let flush = r
                    .has_pending_entry()
                    .then(|| r.last_data + self.spec.multiline_timeout);
                let release = r.gone_since.map(|g| g.max(r.last_data) + cfg.rotate_wait());
                match (flush, release) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }

    fn run_timers(&mut self, now: Instant) {
        let keys: Vec<Key> = self.timed.iter().copied().collect();
        let rotate_wait = self.shared.config.rotate_wait();
        for key in keys {
            let Some(r) = self.readers.get_mut(&key) else {
                self.timed.remove(&key);
                continue;
            };
            if r.has_pending_entry() {
                let mut batch = Batch::default();
                r.flush_stale(now, self.spec.multiline_timeout, &mut batch);
                let (id, path) = (r.id, Arc::clone(&r.path_str));
                let size = r.offset();
                if let Some(id) = id {
                    if self.deliver(id, &path, size, batch).is_err() {
                        self.stopping = true;
                        return;
                    }
                }
            }
            let Some(r) = self.readers.get(&key) else {
                continue;
            };
            match r.gone_since {
                Some(g) if now >= g.max(r.last_data) + rotate_wait => {
                    // A last look: the writer may have added lines since the last event.
                    loop {
                        match self.read_turn(key) {
                            Ok(true) => continue,
                            Ok(false) => break,
                            Err(Stopped) => {
                                self.stopping = true;
                                return;
                            }
                        }
                    }
                    let fresh = self
                        .readers
                        .get(&key)
                        .is_some_and(|r| now.saturating_duration_since(r.last_data) < rotate_wait);
                    if !fresh {
                        self.release(key, true);
                    }
                }
                Some(_) => {}
                None if !r.has_pending_entry() => {
                    self.timed.remove(&key);
                }
                None => {}
            }
        }
    }

    /// Lets go of a file: ships its last partial line if `finish`, closes it, and leaves its
    /// progress to the tracker until acknowledged.
    fn release(&mut self, key: Key, finish: bool) {
        let Some(mut r) = self.readers.remove(&key) else {
            return;
        };
        if finish && r.claimed {
            if let Some(id) = r.id {
                let mut batch = Batch::default();
                r.finish(self.parser.as_ref(), &mut batch);
                let path = Arc::clone(&r.path_str);
                if self.deliver(id, &path, r.offset(), batch).is_err() {
                    self.stopping = true;
                }
            }
        }
        self.drop_reader(r);
        tracing::debug!(source = %self.spec.name, "released file");
    }

    /// Drops a reader that could not be read; the file is tried again at the next scan.
    fn forget(&mut self, key: Key) {
        if let Some(r) = self.readers.remove(&key) {
            self.drop_reader(r);
        }
    }

    fn drop_reader(&mut self, r: FileReader) {
        if let (true, Some(id)) = (r.claimed && r.is_deleted(), r.id) {
            self.shared.tracker.mark_deleted(id);
        }
        if r.is_open() {
            self.shared.open_files.fetch_sub(1, Ordering::Relaxed);
        }
        if r.claimed {
            if let Some(id) = r.id {
                self.shared.tracker.release(id);
            }
        }
        if self.by_path.get(&r.path) == Some(&r.key) {
            self.by_path.remove(&r.path);
        }
        self.timed.remove(&r.key);
        self.counters
            .files
            .store(self.readers.len() as u64, Ordering::Relaxed);
    }

    /// Logs a file's error once per change of error kind; the other files carry on.
    fn report_error(&mut self, path: &Path, e: &io::Error) {
        let kind = e.kind();
        if self.failed.get(path) == Some(&kind) {
            return;
        }
        self.failed.insert(path.to_owned(), kind);
        tracing::error!(
            source = %self.spec.name,
            file = %path.display(),
            error_kind = %kind,
            error = %e,
            "cannot read file; other files carry on"
        );
    }

    fn shutdown(mut self) {
        let keys: Vec<Key> = self.readers.keys().copied().collect();
        for key in keys {
            // Partial lines and held entries are not shipped: they were never
            // acknowledged, so they are read again by whoever takes the file over.
            self.forget(key);
        }
        tracing::info!(source = %self.spec.name, "source stopped");
    }
}

//! The thread that follows one source's files: its loop (wake-ups, timers, stop), turning
//! entries into records and handing them to the queue. What happens to each file (found,
//! claimed, read, rotated, truncated, copied, let go, closed) is in [`lifecycle`].

mod lifecycle;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use logship_parsers::Parser;

use crate::pipeline::heartbeat;
use crate::pipeline::{FileId, FileRecord, Origin, QueueSender, queue::SendError};

use super::SourceSpec;
use super::ack::AckTracker;
use super::config::{ReadFrom, TailConfig};
use super::discover::Patterns;
use super::reader::{Batch, EntryAt, FileReader, Key};
use super::store::CheckpointStore;
use super::watcher::{DirWatcher, Wake};

/// Bytes read from one file before the others get a turn.
const READ_BUDGET: u64 = 2 * 1024 * 1024;
/// One `read` syscall's worth: large enough that syscalls and per-read bookkeeping are
/// a small share, small enough that the bytes are still in cache when framed and parsed.
const READ_BUF: usize = 256 * 1024;
/// How often a source blocked on a full queue looks for a stop request.
const SEND_POLL: Duration = Duration::from_millis(100);

/// Most records queued as one run. A read's records go to the queue in runs (one channel
/// operation and one wake-up of the sink per run, not per line); a run's vector lives until
/// its last record is taken, so runs are kept small: 256 records are 88 KB of vector, where
/// a whole 256 KiB read of nginx lines (about 1,600 records, 550 KB) raised the agent's
/// RSS catching up a backlog by about 6 MiB.
const RUN_RECORDS: usize = 256;
/// A tailer waiting for file events counts as alive until its wait's end plus this.
const HEARTBEAT_SLACK: Duration = Duration::from_secs(5);

/// Counters of one source, read by metrics.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Newline-terminated lines read.
    pub lines: AtomicU64,
    /// Bytes read.
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
pub(crate) struct SourceContext {
    pub tracker: Arc<AckTracker>,
    pub store: Arc<CheckpointStore>,
    pub open_files: Arc<AtomicUsize>,
    pub config: TailConfig,
}

pub(crate) enum Control {
    Stop,
}

/// Records could not be queued: a stop was requested, or the queue's reader is gone, while
/// the source waited to send. The source thread then ends.
struct SendAborted;

pub(crate) struct SourceWorker {
    spec: SourceSpec,
    parser: Arc<dyn Parser>,
    patterns: Patterns,
    shared: SourceContext,
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
    /// The records of one run; the queue swaps it for an emptied run vector.
    records: Vec<FileRecord>,
    /// The read buffer; a turn's entries point into it until delivered.
    buf: Vec<u8>,
    /// Reused by every read so its entry list and text keep their capacity.
    batch: Batch,
    stopping: bool,
}

impl SourceWorker {
    pub(crate) fn new(
        spec: SourceSpec,
        parser: Arc<dyn Parser>,
        patterns: Patterns,
        shared: SourceContext,
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
            batch: Batch::default(),
            records: Vec::new(),
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
                Wake::Rescan => {
                    if !full {
                        tracing::info!(source = %self.spec.name, "file events were lost (inotify queue overflow); rescanning");
                    }
                    full = true;
                }
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

    /// Writes the checkpoint file now, so the files claimed since the last save (and their
    /// carried times) are in it before any of their entries is queued.
    fn save_claims(&self) {
        if let Err(e) = self.shared.store.save() {
            // Shipping anyway loses nothing; a replay before the next save may stamp these
            // entries differently, or not know a copy of the file, and so store them twice.
            tracing::warn!(source = %self.spec.name, error = %format!("{e:#}"), "cannot save new files' checkpoints before shipping");
        }
    }

    /// Reads every file with new data, a turn each, until none has more. The files among
    /// them not claimed yet are claimed first, so one checkpoint save covers them all.
    fn drain_ready(&mut self) {
        let unclaimed: Vec<Key> = self
            .ready
            .iter()
            .filter(|k| self.readers.get(k).is_some_and(|r| !r.claimed))
            .copied()
            .collect();
        if unclaimed.len() > 1 {
            for key in unclaimed {
                self.prepare(key);
            }
            if self.shared.tracker.any_unsaved() {
                self.save_claims();
            }
        }
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
                Err(SendAborted) => {
                    self.stopping = true;
                    return;
                }
            }
        }
    }

    /// Turns entries into records, registers them as in flight, and queues them.
    ///
    /// An entry without a time of its own takes the file's carried time: the timestamp of
    /// the entry before it, or for the first entries of a file the time it was claimed,
    /// which is saved to the checkpoint file before such an entry leaves. A replay from a
    /// checkpoint therefore stamps every entry as its first read did (docs/schema.md).
    fn deliver(
        &mut self,
        key: Key,
        id: FileId,
        path: &Arc<str>,
        size: u64,
        batch: &Batch,
        read: &[u8],
    ) -> Result<(), SendAborted> {
        let c = &self.counters;
        c.lines.fetch_add(batch.lines, Ordering::Relaxed);
        c.bytes.fetch_add(batch.bytes, Ordering::Relaxed);
        if batch.entries.is_empty() && batch.settled.is_none() {
            return Ok(());
        }
        let now = jiff::Timestamp::now();
        let mut time = self.readers.get(&key).and_then(|r| r.time).unwrap_or(now);
        if !batch.entries.is_empty() && self.shared.tracker.unsaved(id) {
            self.save_claims();
        }
        if batch.entries.is_empty() {
            if let Some(s) = batch.settled {
                self.shared.tracker.update(id, size, |a| a.skip(s));
            }
        }
        let runs = batch.entries.len().div_ceil(RUN_RECORDS);
        let mut result = Ok(());
        for (n, entries) in batch.entries.chunks(RUN_RECORDS).enumerate() {
            // The queue takes the vector whole and leaves an emptied one in its place.
            let mut records = std::mem::take(&mut self.records);
            records.clear();
            records.extend(entries.iter().map(|e| {
                let rec = self.record(batch.text(read, e), e, id, path, time, now);
                time = rec.record.timestamp;
                rec
            }));
            let errors = records
                .iter()
                .filter(|r| r.record.parse_error.is_some())
                .count();
            self.counters
                .parse_errors
                .fetch_add(errors as u64, Ordering::Relaxed);
            // Registered in file order, each run before it leaves; the batch's settled
            // span after its last record.
            self.shared.tracker.update(id, size, |a| {
                for r in &records {
                    a.register(r.origin.start, r.origin.end, r.record.timestamp);
                }
                if n + 1 == runs {
                    if let Some(s) = batch.settled {
                        a.skip(s);
                    }
                }
            });
            let count = records.len();
            result = self.send(&mut records);
            if let Some(first) = records.first() {
                let start = first.origin.start;
                self.shared
                    .tracker
                    .update(id, size, |a| a.unregister_from(start));
            }
            let sent = count - records.len();
            self.counters
                .records
                .fetch_add(sent as u64, Ordering::Relaxed);
            records.clear();
            self.records = records;
            if result.is_err() {
                break;
            }
        }
        if let Some(r) = self.readers.get_mut(&key) {
            r.time = Some(time);
        }
        result
    }

    /// The record of one entry; `carried` is its timestamp if it has none of its own.
    fn record(
        &self,
        text: &[u8],
        e: &EntryAt,
        id: FileId,
        path: &Arc<str>,
        carried: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> FileRecord {
        let mut record = self.parser.record(text, &self.spec.context, carried);
        record.read_at = now;
        if e.truncated {
            record.set_field(super::TRUNCATED_FIELD, "true");
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

    /// Queues `records` as one run (several when the queue has room for only part of it),
    /// waiting while the queue is full; gives up on a stop request, leaving the records not
    /// queued in `records`.
    fn send(&mut self, records: &mut Vec<FileRecord>) -> Result<(), SendAborted> {
        loop {
            match self.queue.send_all_timeout(records, SEND_POLL) {
                Ok(()) => return Ok(()),
                Err(SendError::Closed(())) => return Err(SendAborted),
                Err(SendError::Full(())) => {
                    // Waiting for room is alive: the sink's thread answers for the wait.
                    heartbeat::beat();
                    if let Ok(Control::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) =
                        self.control.try_recv()
                    {
                        return Err(SendAborted);
                    }
                }
            }
        }
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

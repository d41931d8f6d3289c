//! Which bytes of each file the sink has acknowledged.
//!
//! A file's checkpoint may only pass bytes whose records the sink has written. Records of
//! one file are read in order, but flush units are acknowledged in any order, so each file
//! keeps the spans it has sent and not yet seen acknowledged; its acknowledged offset is the
//! end of the longest fully acknowledged prefix.
//!
//! [`AckTracker`] is the shared table of every known file: files being read, files
//! recently let go, and offsets loaded from the checkpoint file. The checkpoint writer
//! snapshots it; the sink acknowledges through an [`AckHandle`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::pipeline::{FileId, FileRecord, Origin};

use super::checkpoint::Checkpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u64,
    end: u64,
    acked: bool,
}

/// The sent-but-unacknowledged spans of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAcks {
    acked: u64,
    read: u64,
    in_flight: VecDeque<Span>,
}

impl FileAcks {
    /// Nothing in flight; reading resumes at `offset`.
    pub fn new(offset: u64) -> Self {
        FileAcks {
            acked: offset,
            read: offset,
            in_flight: VecDeque::new(),
        }
    }

    /// Records that the entry `start..end` was handed downstream. Spans come in file order.
    pub fn register(&mut self, start: u64, end: u64) {
        self.in_flight.push_back(Span {
            start,
            end,
            acked: false,
        });
        self.read = self.read.max(end);
    }

    /// Bytes up to `end` that produce no record (empty lines, NUL runs): they count as
    /// acknowledged as soon as everything before them is.
    pub fn skip(&mut self, end: u64) {
        if self.in_flight.is_empty() {
            self.acked = self.acked.max(end);
        } else {
            let start = self.read;
            self.in_flight.push_back(Span {
                start,
                end,
                acked: true,
            });
        }
        self.read = self.read.max(end);
    }

    /// Marks the entry `start..end` acknowledged. Returns false for a span this file does
    /// not have in flight (a duplicate ack, or one from before a truncation).
    pub fn ack(&mut self, start: u64, end: u64) -> bool {
        let Ok(i) = self.in_flight.binary_search_by(|s| s.start.cmp(&start)) else {
            return false;
        };
        match self.in_flight.get_mut(i) {
            Some(span) if span.end == end && !span.acked => span.acked = true,
            _ => return false,
        }
        while let Some(front) = self.in_flight.front() {
            if !front.acked {
                break;
            }
            self.acked = front.end;
            self.in_flight.pop_front();
        }
        true
    }

    /// Forgets spans from `offset` on: they were registered but never reached the queue
    /// (a shutdown interrupted the send), so they will be read again.
    pub fn unregister_from(&mut self, offset: u64) {
        while self.in_flight.back().is_some_and(|s| s.start >= offset) {
            self.in_flight.pop_back();
        }
        self.read = self.in_flight.back().map_or(self.acked, |s| s.end);
    }

    /// The file was truncated: start over at `offset`; acks of older spans are ignored.
    pub fn reset(&mut self, offset: u64) {
        *self = FileAcks::new(offset);
    }

    /// End of the longest acknowledged prefix: where a restart resumes.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// End of what was handed downstream: where another reader of this file in the same
    /// process continues without repeating a line.
    pub fn read(&self) -> u64 {
        self.read
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// What the table knows of one file.
#[derive(Debug)]
struct Known {
    acks: FileAcks,
    path: Arc<str>,
    /// Size at the last read, for the lag metric.
    size: u64,
    /// The source reading the file now, if any.
    owner: Option<Arc<str>>,
    /// Unix seconds when the file was last read or acknowledged; drives pruning.
    touched: u64,
    /// The file was deleted: its inode may be reused by a new file, whose head may even
    /// be the same, so its progress is forgotten once acknowledged.
    deleted: bool,
}

/// One file's progress, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    pub file: FileId,
    pub path: Arc<str>,
    pub source: Option<Arc<str>>,
    pub size: u64,
    pub acked: u64,
    pub read: u64,
    /// Bytes written to the file that the sink has not acknowledged yet.
    pub lag: u64,
    pub in_flight: usize,
}

/// Another source already reads this file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub by: Arc<str>,
}

/// The shared table of every known file's progress.
#[derive(Debug, Default)]
pub struct AckTracker {
    files: Mutex<HashMap<FileId, Known>>,
    /// Bumped on every change, so an idle agent does not rebuild its checkpoints.
    changes: std::sync::atomic::AtomicU64,
}

impl AckTracker {
    /// A table seeded with the offsets of a checkpoint file.
    pub fn from_checkpoints(checkpoints: Vec<Checkpoint>) -> Self {
        let files = checkpoints
            .into_iter()
            .map(|c| {
                let known = Known {
                    acks: FileAcks::new(c.offset),
                    path: c.path.into(),
                    size: c.offset,
                    owner: None,
                    touched: c.updated,
                    deleted: false,
                };
                (c.file, known)
            })
            .collect();
        AckTracker {
            files: Mutex::new(files),
            changes: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// A number that changes whenever any file's progress may have changed.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<FileId, Known>> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: still usable.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock, for a change that may move a checkpoint.
    fn lock_mut(&self) -> MutexGuard<'_, HashMap<FileId, Known>> {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.lock()
    }

    /// Makes `source` the reader of `file` and returns where to read from: the end of what
    /// was already sent if the file was being read in this process (a reload), else its
    /// checkpoint, else `fallback()` (a file never seen).
    pub fn claim(
        &self,
        file: FileId,
        path: &Arc<str>,
        source: &Arc<str>,
        fallback: impl FnOnce() -> u64,
    ) -> Result<u64, Claimed> {
        let mut files = self.lock_mut();
        let now = unix_now();
        match files.get_mut(&file) {
            Some(known) if !known.deleted => {
                if let Some(by) = &known.owner {
                    if by != source {
                        return Err(Claimed { by: Arc::clone(by) });
                    }
                }
                known.owner = Some(Arc::clone(source));
                known.path = Arc::clone(path);
                known.touched = now;
                Ok(known.acks.read())
            }
            _ => {
                let offset = fallback();
                files.insert(
                    file,
                    Known {
                        acks: FileAcks::new(offset),
                        path: Arc::clone(path),
                        size: offset,
                        owner: Some(Arc::clone(source)),
                        touched: now,
                        deleted: false,
                    },
                );
                Ok(offset)
            }
        }
    }

    /// The reader lets go of `file` (rotated away, deleted, source removed). Its progress is
    /// kept until acknowledged and for the checkpoint retention.
    pub fn release(&self, file: FileId) {
        if let Some(known) = self.lock_mut().get_mut(&file) {
            known.owner = None;
            known.touched = unix_now();
        }
    }

    /// The file was deleted (no links left): forget it once nothing is in flight.
    pub fn mark_deleted(&self, file: FileId) {
        if let Some(known) = self.lock_mut().get_mut(&file) {
            known.deleted = true;
        }
    }

    /// Runs `f` on the file's spans (register, skip, reset) under the lock, and notes its size.
    pub fn update<R>(&self, file: FileId, size: u64, f: impl FnOnce(&mut FileAcks) -> R) -> R {
        let mut files = self.lock_mut();
        let known = files.entry(file).or_insert_with(|| Known {
            acks: FileAcks::new(0),
            path: Arc::from(""),
            size,
            owner: None,
            touched: 0,
            deleted: false,
        });
        known.size = size;
        known.touched = unix_now();
        f(&mut known.acks)
    }

    /// Acknowledges entries the sink has written. Unknown spans are ignored.
    pub fn ack<'a>(&self, origins: impl IntoIterator<Item = &'a Origin>) {
        let mut files = self.lock_mut();
        for o in origins {
            if let Some(known) = files.get_mut(&o.file) {
                known.acks.ack(o.start, o.end);
            }
        }
    }

    /// Progress of every file being read or with entries in flight, for metrics.
    pub fn progress(&self) -> Vec<FileProgress> {
        let files = self.lock();
        let mut out: Vec<FileProgress> = files
            .iter()
            .filter(|(_, k)| k.owner.is_some() || k.acks.in_flight() > 0)
            .map(|(id, k)| FileProgress {
                file: *id,
                path: Arc::clone(&k.path),
                source: k.owner.clone(),
                size: k.size,
                acked: k.acks.acked(),
                read: k.acks.read(),
                lag: k.size.saturating_sub(k.acks.acked()),
                in_flight: k.acks.in_flight(),
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Files nobody reads now, by device and inode, with their acknowledged offset: the
    /// candidates for a file rotated away while the agent was down.
    pub fn unowned_inodes(&self) -> HashMap<(u64, u64), (FileId, u64)> {
        self.lock()
            .iter()
            .filter(|(_, k)| k.owner.is_none() && !k.deleted)
            .map(|(id, k)| ((id.dev, id.inode), (*id, k.acks.acked())))
            .collect()
    }

    /// Whether the table knows `file` (a checkpoint or a file read in this process).
    pub fn knows(&self, file: &FileId) -> bool {
        self.lock().get(file).is_some_and(|k| !k.deleted)
    }

    /// What the checkpoint file should hold now. Files nobody reads, with nothing in
    /// flight and untouched for longer than `retention`, are forgotten.
    pub fn checkpoints(&self, retention: Duration) -> Vec<Checkpoint> {
        let mut files = self.lock();
        let now = unix_now();
        files.retain(|_, k| {
            k.owner.is_some()
                || k.acks.in_flight() > 0
                || (!k.deleted && now.saturating_sub(k.touched) <= retention.as_secs())
        });
        let mut out: Vec<Checkpoint> = files
            .iter()
            .map(|(id, k)| Checkpoint {
                file: *id,
                path: k.path.to_string(),
                offset: k.acks.acked(),
                updated: k.touched,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path).then(a.file.cmp(&b.file)));
        out
    }
}

/// The sink's side of the tracker: acknowledges what it has written. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AckHandle {
    tracker: Arc<AckTracker>,
}

impl AckHandle {
    pub(crate) fn new(tracker: Arc<AckTracker>) -> Self {
        AckHandle { tracker }
    }

    /// Acknowledges records the sink has durably written (any order, duplicates ignored).
    pub fn ack_records<'a>(&self, records: impl IntoIterator<Item = &'a FileRecord>) {
        self.tracker.ack(records.into_iter().map(|r| &r.origin));
    }

    /// Acknowledges by origin, for a sink that kept only the origins of a flush unit.
    pub fn ack_origins<'a>(&self, origins: impl IntoIterator<Item = &'a Origin>) {
        self.tracker.ack(origins);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_only_over_the_acknowledged_prefix() {
        let mut f = FileAcks::new(0);
        f.register(0, 10);
        f.register(10, 20);
        f.register(20, 30);
        assert!(f.ack(10, 20));
        assert_eq!(
            f.acked(),
            0,
            "a gap before the acked span holds the checkpoint"
        );
        assert!(f.ack(20, 30));
        assert_eq!(f.acked(), 0);
        assert!(f.ack(0, 10));
        assert_eq!(f.acked(), 30);
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn ignores_unknown_and_duplicate_acks() {
        let mut f = FileAcks::new(100);
        f.register(100, 110);
        assert!(!f.ack(0, 10));
        assert!(!f.ack(100, 109));
        assert!(f.ack(100, 110));
        assert!(!f.ack(100, 110));
        assert_eq!(f.acked(), 110);
    }

    #[test]
    fn skipped_bytes_wait_for_what_comes_before() {
        let mut f = FileAcks::new(0);
        f.skip(5);
        assert_eq!(f.acked(), 5);
        f.register(5, 10);
        f.skip(50);
        assert_eq!(f.acked(), 5);
        assert!(f.ack(5, 10));
        assert_eq!(f.acked(), 50);
        assert_eq!(f.read(), 50);
    }

    #[test]
    fn unregistered_tail_is_read_again() {
        let mut f = FileAcks::new(0);
        f.register(0, 10);
        f.register(10, 20);
        f.register(20, 30);
        f.unregister_from(10);
        assert_eq!(f.read(), 10);
        assert!(!f.ack(10, 20));
        assert!(f.ack(0, 10));
        assert_eq!(f.acked(), 10);
    }

    #[test]
    fn reload_handoff_resumes_after_what_was_sent() {
        let t = AckTracker::default();
        let id = FileId {
            dev: 1,
            inode: 2,
            fingerprint: 3,
        };
        let path: Arc<str> = "/x.log".into();
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        assert_eq!(t.claim(id, &path, &a, || 0), Ok(0));
        t.update(id, 100, |f| f.register(0, 40));
        assert_eq!(t.claim(id, &path, &b, || 0), Err(Claimed { by: a.clone() }));
        t.release(id);
        assert_eq!(t.claim(id, &path, &b, || 0), Ok(40));
        let cps = t.checkpoints(Duration::from_secs(60));
        assert_eq!(cps.len(), 1);
        assert_eq!(cps[0].offset, 0);
        let p = t.progress();
        assert_eq!(p[0].lag, 100);
    }
}

//! Which bytes of each file the sink has acknowledged.
//!
//! A file's checkpoint may only pass bytes whose records the sink has written. Records of
//! one file are read in order, but flush units are acknowledged in any order, so each file
//! keeps the spans it has sent and not yet seen acknowledged; its acknowledged offset is the
//! end of the longest fully acknowledged prefix.
//!
//! Each span also carries the file's *carried time* after it: the timestamp an entry without
//! one of its own takes (the last timestamp of the file before it). The checkpoint holds the
//! carried time at the acknowledged offset, so a replay from there stamps every entry as the
//! first read did (docs/schema.md, "Entries without a time").
//!
//! [`AckTracker`] is the shared table of every known file: files being read, files
//! recently let go, and offsets loaded from the checkpoint file. The checkpoint writer
//! snapshots it; the sink acknowledges through an [`AckHandle`]. It also tells a copy of a
//! known file (`copytruncate` with the copies inside the pattern) from a new file: see
//! [`AckTracker::claim`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

use crate::pipeline::{FileId, FileRecord, Origin};

use super::checkpoint::Checkpoint;
use super::reader::Key;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u64,
    end: u64,
    acked: bool,
    /// The file's carried time after this span.
    time: Option<Timestamp>,
}

/// The sent-but-unacknowledged spans of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAcks {
    acked: u64,
    read: u64,
    /// The carried time at `acked` and at `read`.
    acked_time: Option<Timestamp>,
    read_time: Option<Timestamp>,
    in_flight: VecDeque<Span>,
}

impl FileAcks {
    /// Nothing in flight; reading resumes at `offset` with the carried time `time`.
    pub fn new(offset: u64, time: Option<Timestamp>) -> Self {
        FileAcks {
            acked: offset,
            read: offset,
            acked_time: time,
            read_time: time,
            in_flight: VecDeque::new(),
        }
    }

    /// Records that the entry `start..end` was handed downstream, stamped `time` (its own
    /// timestamp or the one it carried). Spans come in file order.
    pub fn register(&mut self, start: u64, end: u64, time: Timestamp) {
        self.in_flight.push_back(Span {
            start,
            end,
            acked: false,
            time: Some(time),
        });
        self.read = self.read.max(end);
        self.read_time = Some(time);
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
                time: self.read_time,
            });
        }
        self.read = self.read.max(end);
    }

    /// Marks the entry `start..end` acknowledged. Returns false for a span this file does
    /// not have in flight (a duplicate ack, or one from before a truncation).
    pub fn ack(&mut self, start: u64, end: u64) -> bool {
        let mut next = 0;
        let marked = self.mark(start, end, &mut next);
        self.settle();
        marked
    }

    /// Marks the entries `spans` acknowledged, as [`ack`](Self::ack) on each, and returns
    /// how many it knew. A flush unit acknowledges its records of one file together: they
    /// are mostly consecutive spans, so each is found where the one before ended, and the
    /// acknowledged prefix is advanced once for all of them (not once per record).
    pub fn ack_all(&mut self, spans: impl IntoIterator<Item = (u64, u64)>) -> usize {
        let mut next = 0;
        let marked = spans
            .into_iter()
            .filter(|&(start, end)| self.mark(start, end, &mut next))
            .count();
        self.settle();
        marked
    }

    /// Flags the span `start..end` acknowledged without advancing the prefix. `next` is
    /// where to look first (just after the span marked before), else the span is searched
    /// for; spans are in file order, so by their start.
    fn mark(&mut self, start: u64, end: u64, next: &mut usize) -> bool {
        // Skipped bytes between two records are an acknowledged span, possibly empty (its
        // start is then the next record's): step over them to the record.
        let mut hint = *next;
        while self
            .in_flight
            .get(hint)
            .is_some_and(|s| s.acked && s.end <= start)
        {
            hint += 1;
        }
        let i = if self
            .in_flight
            .get(hint)
            .is_some_and(|s| s.start == start && !s.acked)
        {
            hint
        } else if self.in_flight.front().is_some_and(|s| s.start == start) {
            0
        } else {
            let Ok(i) = self.in_flight.binary_search_by(|s| s.start.cmp(&start)) else {
                return false;
            };
            i
        };
        match self.in_flight.get_mut(i) {
            Some(span) if span.end == end && !span.acked => span.acked = true,
            _ => return false,
        }
        *next = i + 1;
        true
    }

    /// Advances the acknowledged offset over the fully acknowledged prefix.
    fn settle(&mut self) {
        let mut last = None;
        let mut n = 0;
        for span in self.in_flight.iter() {
            if !span.acked {
                break;
            }
            last = Some(span);
            n += 1;
        }
        if let Some(span) = last {
            self.acked = span.end;
            self.acked_time = span.time;
            self.in_flight.drain(..n);
        }
    }

    /// Forgets spans from `offset` on: they were registered but never reached the queue
    /// (a shutdown interrupted the send), so they will be read again.
    pub fn unregister_from(&mut self, offset: u64) {
        while self.in_flight.back().is_some_and(|s| s.start >= offset) {
            self.in_flight.pop_back();
        }
        self.read = self.in_flight.back().map_or(self.acked, |s| s.end);
        self.read_time = self.in_flight.back().map_or(self.acked_time, |s| s.time);
    }

    /// The file was truncated: start over at `offset` with the carried time `time`; acks of
    /// older spans are ignored.
    pub fn reset(&mut self, offset: u64, time: Option<Timestamp>) {
        *self = FileAcks::new(offset, time);
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

    /// The carried time at [`acked`](Self::acked): what the checkpoint stores.
    pub fn acked_time(&self) -> Option<Timestamp> {
        self.acked_time
    }

    /// The carried time at [`read`](Self::read): where another reader continues.
    pub fn read_time(&self) -> Option<Timestamp> {
        self.read_time
    }

    /// Entries handed downstream and not acknowledged yet.
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
    /// The device and inode being read as this file now: its own, or a copy's.
    holder: Option<Key>,
    /// Its bytes no longer live in its own inode, which was truncated in place
    /// (`copytruncate`): only a copy can continue it. Saved in the checkpoint.
    moved: bool,
    /// Claimed but not in the checkpoint file yet (a new file, or a carried time taken at
    /// claim): nothing of it may be shipped before it is. Else a restart after `kill -9`
    /// would not know the file, so could neither stamp its entries as before nor tell a
    /// `copytruncate` copy of it from a new file (see `CheckpointStore::save`).
    unsaved: bool,
}

/// One file's progress, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    /// The file's identity (device, inode, head fingerprint).
    pub file: FileId,
    /// The path it was last read under.
    pub path: Arc<str>,
    /// The source reading it now; `None` once let go.
    pub source: Option<Arc<str>>,
    /// Its size when last read.
    pub size: u64,
    /// Offset up to which every entry is acknowledged (the checkpoint).
    pub acked: u64,
    /// Offset up to which it has been read.
    pub read: u64,
    /// Bytes written to the file that the sink has not acknowledged yet.
    pub lag: u64,
    /// Entries read and not acknowledged yet.
    pub in_flight: usize,
}

/// Why a file cannot be read now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// Another source already reads this file.
    Claimed {
        /// The source that reads it.
        by: Arc<str>,
    },
    /// Its head matches a file that is being read from another inode: a copy of it
    /// (`copytruncate`'s copy before the truncation, or the original while a copy is read).
    CopyOfLiveFile {
        /// The path of the file it is a copy of.
        of: Arc<str>,
    },
}

/// Where a claimed file is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The identity its records carry: the file's own, or that of the file it is a copy of.
    pub id: FileId,
    /// Where reading starts: the acknowledged offset.
    pub offset: u64,
    /// The carried time at `offset`.
    pub time: Timestamp,
    /// The path of the file this one continues, when it is a copy of it.
    pub copy_of: Option<Arc<str>>,
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
                    acks: FileAcks::new(c.offset, c.time),
                    path: c.path.into(),
                    size: c.offset,
                    owner: None,
                    touched: c.updated,
                    deleted: false,
                    holder: None,
                    moved: c.moved,
                    unsaved: false,
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

    /// Makes `source` the reader of the file `real` (as found on disk, held open as `key`)
    /// and returns where to read from: the end of what was already sent if the file was
    /// being read in this process (a reload), else its checkpoint, else `fallback()` (a
    /// file never seen) with the carried time `now`.
    ///
    /// A file not known by its own identity whose head fingerprint matches a known file on
    /// another inode is a copy of it (`copytruncate` copies `syslog` to `syslog.1`, then
    /// truncates `syslog`): with `follow_copies`, it continues that file's progress under
    /// that file's identity, so bytes already shipped are not shipped again and a replay
    /// writes the same rows; the bytes the original lost to the truncation before they were
    /// read come from the copy. While the original is still being read the copy waits
    /// ([`Refused::CopyOfLiveFile`]).
    pub fn claim(
        &self,
        real: FileId,
        key: Key,
        path: &Arc<str>,
        source: &Arc<str>,
        follow_copies: bool,
        fallback: impl FnOnce() -> u64,
    ) -> Result<Claim, Refused> {
        let mut files = self.lock_mut();
        let now = unix_now();
        let exact = files.get(&real).is_some_and(|k| !k.deleted);
        let (id, copy_of) = if exact {
            (real, None)
        } else if let Some((id, of)) = follow_copies
            .then(|| copy_source(&files, real, source))
            .flatten()
        {
            (id, Some(of))
        } else {
            let offset = fallback();
            files.insert(
                real,
                Known {
                    acks: FileAcks::new(offset, None),
                    path: Arc::clone(path),
                    size: offset,
                    owner: None,
                    touched: now,
                    deleted: false,
                    holder: None,
                    moved: false,
                    unsaved: true,
                },
            );
            (real, None)
        };
        let Some(known) = files.get_mut(&id) else {
            return Err(Refused::Claimed {
                by: Arc::clone(source),
            });
        };
        if let Some(by) = &known.owner {
            if by != source {
                return Err(Refused::Claimed { by: Arc::clone(by) });
            }
            if known.holder.is_some_and(|h| h != key) {
                return Err(Refused::CopyOfLiveFile {
                    of: Arc::clone(&known.path),
                });
            }
        }
        known.owner = Some(Arc::clone(source));
        known.holder = Some(key);
        known.path = Arc::clone(path);
        known.touched = now;
        // Read from its own inode again (a new generation with the same head), or still
        // moved when a copy continues it.
        known.moved = copy_of.is_some();
        let time = match known.acks.read_time() {
            Some(t) => t,
            None => {
                // The first entries of a file, before any timestamp in it: the moment the
                // agent first claimed it, saved before any entry carrying it is shipped.
                let t = Timestamp::now();
                let offset = known.acks.read();
                if known.acks.in_flight() == 0 {
                    known.acks.reset(offset, Some(t));
                }
                known.unsaved = true;
                t
            }
        };
        Ok(Claim {
            id,
            offset: known.acks.read(),
            time,
            copy_of,
        })
    }

    /// The reader lets go of `file` (rotated away, deleted, source removed). Its progress is
    /// kept until acknowledged and for the checkpoint retention.
    pub fn release(&self, file: FileId) {
        if let Some(known) = self.lock_mut().get_mut(&file) {
            known.owner = None;
            known.holder = None;
            known.touched = unix_now();
        }
    }

    /// The file's inode was truncated (`copytruncate`): the reader lets go of it, and its
    /// progress stays as it is, in flight included, for a copy of it to continue.
    pub fn truncated(&self, file: FileId) {
        if let Some(known) = self.lock_mut().get_mut(&file) {
            known.owner = None;
            known.holder = None;
            known.moved = true;
            known.size = known.acks.read();
            known.touched = unix_now();
        }
    }

    /// Whether `file` was claimed and is not in the checkpoint file yet.
    pub fn unsaved(&self, file: FileId) -> bool {
        self.lock().get(&file).is_some_and(|k| k.unsaved)
    }

    /// Whether any file is claimed and not in the checkpoint file yet.
    pub fn any_unsaved(&self) -> bool {
        self.lock().values().any(|k| k.unsaved)
    }

    /// `saved` is in the checkpoint file now: the carried times it holds are durable.
    pub fn saved(&self, saved: &[Checkpoint]) {
        let mut files = self.lock();
        for c in saved {
            if let Some(k) = files.get_mut(&c.file) {
                k.unsaved = false;
            }
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
            acks: FileAcks::new(0, None),
            path: Arc::from(""),
            size,
            owner: None,
            touched: 0,
            deleted: false,
            holder: None,
            moved: false,
            unsaved: false,
        });
        known.size = size;
        known.touched = unix_now();
        f(&mut known.acks)
    }

    /// Acknowledges entries the sink has written. Unknown spans are ignored.
    ///
    /// A unit holds runs of records of the same file (one tailer reads a file in order):
    /// each run costs one table lookup and one advance of the file's acknowledged prefix
    /// ([`FileAcks::ack_all`]), not one per record; per record only its span is flagged.
    pub fn ack<'a>(&self, origins: impl IntoIterator<Item = &'a Origin>) {
        let mut files = self.lock_mut();
        let mut origins = origins.into_iter().peekable();
        while let Some(first) = origins.next() {
            let file = first.file;
            let run = std::iter::once(first)
                .chain(std::iter::from_fn(|| origins.next_if(|o| o.file == file)))
                .map(|o| (o.start, o.end));
            // Network streams have no checkpoint: nothing to look up.
            if file.is_stream() {
                run.for_each(drop);
                continue;
            }
            match files.get_mut(&file) {
                Some(known) => {
                    known.acks.ack_all(run);
                }
                None => run.for_each(drop),
            }
        }
    }

    /// Progress of every file being read or with entries in flight, for metrics: one
    /// entry per path. A generation of a path that is gone (truncated, rotated away,
    /// replaced) but still has entries in flight adds its lag to the path's entry; once
    /// acknowledged it leaves the list.
    pub fn progress(&self) -> Vec<FileProgress> {
        let files = self.lock();
        let mut by_path: HashMap<Arc<str>, FileProgress> = HashMap::new();
        for (id, k) in files.iter() {
            if k.owner.is_none() && k.acks.in_flight() == 0 {
                continue;
            }
            let p = FileProgress {
                file: *id,
                path: Arc::clone(&k.path),
                source: k.owner.clone(),
                size: k.size,
                acked: k.acks.acked(),
                read: k.acks.read(),
                lag: k.size.saturating_sub(k.acks.acked()),
                in_flight: k.acks.in_flight(),
            };
            match by_path.get_mut(&k.path) {
                None => {
                    by_path.insert(Arc::clone(&k.path), p);
                }
                Some(e) => {
                    let (lag, in_flight) = (e.lag + p.lag, e.in_flight + p.in_flight);
                    if e.source.is_none() && p.source.is_some() {
                        *e = p;
                    }
                    e.lag = lag;
                    e.in_flight = in_flight;
                }
            }
        }
        let mut out: Vec<FileProgress> = by_path.into_values().collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Files nobody reads now, by device and inode, with their acknowledged offset: the
    /// candidates for a file rotated away while the agent was down.
    ///
    /// Several generations of one inode (truncated in place, each with its own head) may
    /// be known: the smallest offset is kept, so no candidate is passed over; the head
    /// check at claim then tells which generation the file is.
    pub fn unowned_inodes(&self) -> HashMap<(u64, u64), (FileId, u64)> {
        let mut out: HashMap<(u64, u64), (FileId, u64)> = HashMap::new();
        let files = self.lock();
        let unowned = files
            .iter()
            .filter(|(_, k)| k.owner.is_none() && !k.deleted && !k.moved);
        for (id, k) in unowned {
            let acked = k.acks.acked();
            let entry = out.entry((id.dev, id.inode)).or_insert((*id, acked));
            if acked < entry.1 {
                *entry = (*id, acked);
            }
        }
        out
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
                time: k.acks.acked_time(),
                moved: k.moved,
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

/// The known file that `real` is a copy of: same head fingerprint, another inode, not
/// deleted, and either still being read (the copy then waits), or known to be truncated,
/// or found truncated on disk now (the agent was down when it happened). A file merely
/// renamed away or deleted is not: a new file that starts with the same line (a fixed
/// header) is a file of its own. The most recently touched wins.
fn copy_source(
    files: &HashMap<FileId, Known>,
    real: FileId,
    source: &Arc<str>,
) -> Option<(FileId, Arc<str>)> {
    files
        .iter()
        .filter(|(id, k)| {
            id.fingerprint == real.fingerprint
                && (id.dev, id.inode) != (real.dev, real.inode)
                && !k.deleted
                // A copy lies in its original's pattern: a file of another source that
                // merely starts with the same line is a file of its own.
                && k.owner.as_ref().is_none_or(|o| o == source)
                && (k.owner.is_some() || k.moved || truncated_on_disk(**id, &k.path))
        })
        .max_by_key(|(id, k)| (k.touched, **id))
        .map(|(id, k)| (*id, Arc::clone(&k.path)))
}

/// Whether `path` still leads to the inode of `id` and that inode now starts with another
/// head: truncated in place and written again. I/O, but only for a new file whose head
/// matches a known file.
fn truncated_on_disk(id: FileId, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if (meta.dev(), meta.ino()) != (id.dev, id.inode) {
        return false;
    }
    super::fingerprint::read_fingerprint(&file).is_ok_and(|fp| fp != Some(id.fingerprint))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A distinct instant per offset, so carried times can be told apart.
    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn id(inode: u64, fingerprint: u64) -> FileId {
        FileId {
            dev: 1,
            inode,
            fingerprint,
        }
    }

    #[test]
    fn advances_only_over_the_acknowledged_prefix() {
        let mut f = FileAcks::new(0, None);
        f.register(0, 10, ts(10));
        f.register(10, 20, ts(20));
        f.register(20, 30, ts(30));
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
        let mut f = FileAcks::new(100, None);
        f.register(100, 110, ts(110));
        assert!(!f.ack(0, 10));
        assert!(!f.ack(100, 109));
        assert!(f.ack(100, 110));
        assert!(!f.ack(100, 110));
        assert_eq!(f.acked(), 110);
    }

    #[test]
    fn a_unit_acknowledged_together_keeps_the_gap_and_duplicate_rules() {
        let mut f = FileAcks::new(0, None);
        for (i, start) in (0..50).step_by(10).enumerate() {
            f.register(start, start + 10, ts(i as i64));
        }
        f.skip(55);
        f.register(55, 60, ts(9));
        // A later run first: nothing before it is acknowledged, so the offset stays.
        assert_eq!(f.ack_all([(30, 40), (40, 50), (55, 60)]), 3);
        assert_eq!((f.acked(), f.in_flight()), (0, 7));
        // Unknown, misaligned and duplicate spans are ignored, the rest counts.
        assert_eq!(f.ack_all([(0, 10), (10, 19), (0, 10), (99, 100)]), 1);
        assert_eq!((f.acked(), f.acked_time()), (10, Some(ts(0))));
        // Closing the gap advances over everything acknowledged and skipped behind it.
        assert_eq!(f.ack_all([(10, 20), (20, 30)]), 2);
        assert_eq!(
            (f.acked(), f.acked_time(), f.in_flight()),
            (60, Some(ts(9)), 0)
        );
    }

    #[test]
    fn the_tracker_acknowledges_a_unit_of_interleaved_files() {
        let t = AckTracker::default();
        let (a, b) = (id(3, 1), id(4, 1));
        for f in [a, b] {
            t.update(f, 30, |acks| {
                acks.register(0, 10, ts(1));
                acks.register(10, 20, ts(2));
                acks.register(20, 30, ts(3));
            });
        }
        let o = |file, start| Origin {
            file,
            path: "/x".into(),
            start,
            end: start + 10,
        };
        t.ack(&[o(a, 0), o(a, 10), o(b, 0), o(a, 20), o(b, 10)]);
        let acked = |f| t.update(f, 30, |acks| acks.acked());
        assert_eq!((acked(a), acked(b)), (30, 20));
    }

    #[test]
    fn empty_skips_between_records_do_not_hide_the_next_record() {
        let mut f = FileAcks::new(0, None);
        f.register(0, 10, ts(1));
        f.skip(10);
        f.register(10, 20, ts(2));
        f.skip(25);
        f.register(25, 30, ts(3));
        assert_eq!(f.ack_all([(0, 10), (10, 20), (25, 30)]), 3);
        assert_eq!((f.acked(), f.in_flight()), (30, 0));
    }

    #[test]
    fn skipped_bytes_wait_for_what_comes_before() {
        let mut f = FileAcks::new(0, None);
        f.skip(5);
        assert_eq!(f.acked(), 5);
        f.register(5, 10, ts(10));
        f.skip(50);
        assert_eq!(f.acked(), 5);
        assert!(f.ack(5, 10));
        assert_eq!(f.acked(), 50);
        assert_eq!(f.read(), 50);
    }

    #[test]
    fn unregistered_tail_is_read_again() {
        let mut f = FileAcks::new(0, None);
        f.register(0, 10, ts(10));
        f.register(10, 20, ts(20));
        f.register(20, 30, ts(30));
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
        let offset = |c: Result<Claim, Refused>| c.map(|c| c.offset);
        assert_eq!(offset(t.claim(id, (1, 2), &path, &a, true, || 0)), Ok(0));
        t.update(id, 100, |f| f.register(0, 40, ts(40)));
        assert_eq!(
            offset(t.claim(id, (1, 2), &path, &b, true, || 0)),
            Err(Refused::Claimed { by: a.clone() })
        );
        t.release(id);
        let c = t.claim(id, (1, 2), &path, &b, true, || 0).unwrap();
        assert_eq!((c.offset, c.time), (40, ts(40)));
        let cps = t.checkpoints(Duration::from_secs(60));
        assert_eq!(cps.len(), 1);
        assert_eq!(cps[0].offset, 0);
        let p = t.progress();
        assert_eq!(p[0].lag, 100);
    }

    #[test]
    fn the_checkpoint_carries_the_time_at_the_acknowledged_offset() {
        let mut f = FileAcks::new(0, Some(ts(0)));
        f.register(0, 10, ts(10));
        f.skip(15);
        f.register(15, 20, ts(20));
        assert_eq!((f.acked_time(), f.read_time()), (Some(ts(0)), Some(ts(20))));
        assert!(f.ack(0, 10));
        assert_eq!((f.acked(), f.acked_time()), (15, Some(ts(10))));
        f.unregister_from(15);
        assert_eq!((f.read(), f.read_time()), (15, Some(ts(10))));
    }

    #[test]
    fn a_new_file_gets_a_claim_time_that_is_unsaved_until_a_checkpoint_holds_it() {
        let t = AckTracker::default();
        let (path, src): (Arc<str>, Arc<str>) = ("/x.log".into(), "s".into());
        let c = t.claim(id(2, 3), (1, 2), &path, &src, true, || 0).unwrap();
        assert!(t.unsaved(c.id));
        let cps = t.checkpoints(Duration::from_secs(60));
        assert_eq!(cps[0].time, Some(c.time));
        t.saved(&cps);
        assert!(!t.unsaved(c.id));
        // Restored from that checkpoint, the same time comes back.
        let t = AckTracker::from_checkpoints(cps);
        let again = t.claim(id(2, 3), (1, 2), &path, &src, true, || 0).unwrap();
        assert_eq!(again.time, c.time);
        assert!(!t.unsaved(c.id));
    }

    #[test]
    fn a_copy_of_a_truncated_file_continues_its_progress_under_its_identity() {
        let t = AckTracker::default();
        let (orig, copy, src): (Arc<str>, Arc<str>, Arc<str>) =
            ("/syslog".into(), "/syslog.1".into(), "s".into());
        let o = t
            .claim(id(2, 7), (1, 2), &orig, &src, true, || 0)
            .unwrap()
            .id;
        t.update(o, 100, |f| f.register(0, 60, ts(60)));
        // The copy appears before the truncation: it waits.
        assert_eq!(
            t.claim(id(9, 7), (1, 9), &copy, &src, true, || 0),
            Err(Refused::CopyOfLiveFile { of: orig.clone() })
        );
        t.truncated(o);
        let c = t.claim(id(9, 7), (1, 9), &copy, &src, true, || 0).unwrap();
        assert_eq!((c.id, c.offset, c.time), (o, 60, ts(60)));
        assert_eq!(c.copy_of, Some(orig.clone()));
        // The original's inode, truncated and written again, is a new file.
        let n = t.claim(id(2, 8), (1, 2), &orig, &src, true, || 0).unwrap();
        assert_eq!((n.id, n.offset), (id(2, 8), 0));
        // An ack of what the original sent still moves the (shared) checkpoint.
        t.ack(&[Origin {
            file: o,
            path: orig.clone(),
            start: 0,
            end: 60,
        }]);
        let cps = t.checkpoints(Duration::from_secs(60));
        let of_copy = cps.iter().find(|c| c.file == o).unwrap();
        assert_eq!((of_copy.offset, &*of_copy.path), (60, "/syslog.1"));
        // Not following copies, the same head is a file of its own.
        let own = t
            .claim(id(11, 7), (1, 11), &copy, &src, false, || 0)
            .unwrap();
        assert_eq!((own.id, own.offset), (id(11, 7), 0));
    }

    #[test]
    fn progress_has_one_entry_per_path_and_a_gone_generation_leaves_it_once_acked() {
        let t = AckTracker::default();
        let (path, src): (Arc<str>, Arc<str>) = ("/app.log".into(), "s".into());
        let old = t
            .claim(id(2, 7), (1, 2), &path, &src, true, || 0)
            .unwrap()
            .id;
        t.update(old, 100, |f| f.register(0, 100, ts(1)));
        t.truncated(old);
        let new = t
            .claim(id(2, 8), (1, 2), &path, &src, true, || 0)
            .unwrap()
            .id;
        t.update(new, 30, |f| f.register(0, 30, ts(2)));
        let p = t.progress();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].file, p[0].lag), (new, 130));
        t.ack(&[
            Origin {
                file: old,
                path: path.clone(),
                start: 0,
                end: 100,
            },
            Origin {
                file: new,
                path: path.clone(),
                start: 0,
                end: 30,
            },
        ]);
        let p = t.progress();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].lag, 0);
    }

    #[test]
    fn a_new_file_with_the_head_of_a_file_rotated_away_is_not_its_copy() {
        // A fixed header line: app.log renamed away (not truncated), a new app.log
        // starting with the same line must be read from its beginning.
        let t = AckTracker::default();
        let (path, src): (Arc<str>, Arc<str>) = ("/nonexistent/app.log".into(), "s".into());
        let old = t
            .claim(id(2, 7), (1, 2), &path, &src, true, || 0)
            .unwrap()
            .id;
        t.update(old, 100, |f| f.register(0, 100, ts(1)));
        t.release(old);
        let new = t.claim(id(3, 7), (1, 3), &path, &src, true, || 0).unwrap();
        assert_eq!((new.id, new.offset, new.copy_of), (id(3, 7), 0, None));
    }
}

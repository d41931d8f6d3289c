//! One file's life in a source, in one place:
//!
//! - **found**: a scan of the source's patterns (at start, on an inotify wake-up, on the
//!   periodic rescan) meets a device and inode it does not follow yet ([`SourceWorker::rescan`]);
//! - **claimed**: once its head is complete, its identity (device, inode, head fingerprint)
//!   is claimed in the ack tracker, which says where to start: the checkpoint, the end of
//!   what another source sent, a copy's original, or the beginning ([`SourceWorker::prepare`]);
//! - **read** a turn at a time ([`SourceWorker::read_turn`]);
//! - **rotation detected**: renamed (same inode at a new path: followed), rotated away or
//!   deleted (the path leads elsewhere or nowhere: read to its end, let go `rotate_wait`
//!   after its last data), truncated in place (shorter than the read offset, or a new head:
//!   its progress is left for a copy, and the new content is a new file), a copy of a known
//!   file (`copytruncate` inside the pattern: continues the original);
//! - **finished**: let go with its last partial line shipped ([`SourceWorker::release`]);
//! - **idle close**: its descriptor closed after `idle_close_secs` without data, or when
//!   `max_open_files` needs room; it is reopened by path (and checked) when data comes.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::super::ack::Refused;
use super::super::reader::{Batch, FileReader, Key, OpenError, ReadStatus};
use super::{READ_BUDGET, SendAborted, SourceWorker};
use crate::pipeline::heartbeat;

impl SourceWorker {
    /// At start-up, finds files that were rotated out of the patterns while the agent was
    /// down (`access.log` renamed to `access.log.1`): same device, inode and head as a
    /// checkpoint, with bytes past it. They are read to their end and let go, so lines
    /// written before the rotation are not lost.
    pub(super) fn adopt_rotated(&mut self) {
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

    /// Finds the source's files (all, or those in `scope`), notices new, renamed, rotated
    /// and deleted ones. `from_end`: position new files at their end (first start).
    pub(super) fn rescan(&mut self, scope: Option<&[PathBuf]>, from_end: bool) {
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

    /// Opens the file if needed and claims it; false if it cannot be read now.
    pub(super) fn prepare(&mut self, key: Key) -> bool {
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
        let claim = self.shared.tracker.claim(
            id,
            key,
            &r.path_str,
            &self.spec.name,
            r.follow_copies,
            || start_if_new,
        );
        match claim {
            Ok(claim) => {
                if let Some(of) = &claim.copy_of {
                    tracing::info!(
                        source = %self.spec.name,
                        file = %r.path.display(),
                        copy_of = %of,
                        offset = claim.offset,
                        "file is a copy of a file already read (copytruncate); continuing after what was shipped"
                    );
                }
                let offset = if claim.offset > size {
                    tracing::info!(
                        source = %self.spec.name,
                        file = %r.path.display(),
                        checkpoint = claim.offset,
                        size,
                        "file is shorter than its checkpoint (truncated while stopped); reading it from the start"
                    );
                    self.shared
                        .tracker
                        .update(claim.id, size, |a| a.reset(0, Some(claim.time)));
                    0
                } else {
                    claim.offset
                };
                if let Err(e) = r.start_at(offset) {
                    let path = r.path.clone();
                    self.report_error(&path, &e);
                    self.shared.tracker.release(claim.id);
                    self.forget(key);
                    return false;
                }
                r.id = Some(claim.id);
                r.time = Some(claim.time);
                r.claimed = true;
                r.copy_wait = None;
                self.claim_warned.remove(&key);
                tracing::debug!(source = %self.spec.name, file = %r.path.display(), offset, "reading file");
                true
            }
            Err(Refused::CopyOfLiveFile { of }) => {
                // copytruncate copies, then truncates: wait for the truncation (which lets
                // go of the original) while the copy is still being written and for
                // rotate_wait after, then take it as a file of its own.
                let now = Instant::now();
                let wait = self.shared.config.rotate_wait();
                let since = match r.copy_wait {
                    Some((since, seen)) if seen == size => since,
                    _ => {
                        r.copy_wait = Some((now, size));
                        now
                    }
                };
                if now.saturating_duration_since(since) < wait {
                    tracing::debug!(source = %self.spec.name, file = %r.path.display(), copy_of = %of, "copy of a file being read; waiting for it to be let go");
                    self.timed.insert(key);
                    return false;
                }
                tracing::info!(
                    source = %self.spec.name,
                    file = %r.path.display(),
                    same_head_as = %of,
                    "file starts like another file being read but is not its copy; reading it as a file of its own"
                );
                r.follow_copies = false;
                r.copy_wait = None;
                self.prepare(key)
            }
            Err(Refused::Claimed { by }) => {
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

    /// One turn of reading `key`, up to [`READ_BUDGET`] bytes. Ok(true) if it has more to
    /// read.
    pub(super) fn read_turn(&mut self, key: Key) -> Result<bool, SendAborted> {
        // Taken for the turn: the batch's entries point into the buffer until delivered.
        let mut buf = std::mem::take(&mut self.buf);
        let mut batch = std::mem::take(&mut self.batch);
        let result = self.read_turn_into(key, &mut buf, &mut batch);
        self.buf = buf;
        self.batch = batch;
        result
    }

    fn read_turn_into(
        &mut self,
        key: Key,
        buf: &mut [u8],
        batch: &mut Batch,
    ) -> Result<bool, SendAborted> {
        if !self.prepare(key) {
            return Ok(false);
        }
        let parser = Arc::clone(&self.parser);
        let mut done = 0u64;
        let mut first = true;
        loop {
            heartbeat::beat();
            let Some(r) = self.readers.get_mut(&key) else {
                return Ok(false);
            };
            batch.clear();
            // Taken before the read: a read that finds the file truncated forgets it.
            let id = r.id;
            let status = r.read(buf, first, parser.as_ref(), batch);
            first = false;
            done += batch.bytes;
            let (path, pending) = (Arc::clone(&r.path_str), r.has_pending_entry());
            // Mid-file the offset is a fine lower bound of the size; at the end, ask.
            let size = match status {
                Ok(ReadStatus::More) => r.offset(),
                _ => r.size().ok().flatten().unwrap_or_else(|| r.offset()),
            };
            if pending {
                self.timed.insert(key);
            }
            if let Some(id) = id {
                self.deliver(key, id, &path, size, batch, buf)?;
            }
            match status {
                Ok(ReadStatus::Eof) => return Ok(false),
                Ok(ReadStatus::More) if done >= READ_BUDGET => return Ok(true),
                Ok(ReadStatus::More) => {}
                Ok(ReadStatus::Truncated) => {
                    tracing::info!(source = %self.spec.name, file = %path, "file truncated (copytruncate); reading it again from the start");
                    if let Some(old) = id {
                        // Its progress stays for a copy to continue (see AckTracker::claim).
                        self.shared.tracker.truncated(old);
                    }
                    if let Some(r) = self.readers.get_mut(&key) {
                        r.claimed = false;
                        r.start_if_new = 0;
                        r.follow_copies = true;
                    }
                    // A copy waiting for this file to be let go can go on now.
                    let waiting: Vec<Key> = self
                        .readers
                        .iter()
                        .filter(|(k, r)| **k != key && r.copy_wait.is_some())
                        .map(|(k, _)| *k)
                        .collect();
                    for k in waiting {
                        self.mark_ready(k);
                    }
                    if !self.prepare(key) {
                        return Ok(false);
                    }
                    first = true;
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

    /// Closes the least recently opened idle file while too many are open.
    pub(super) fn make_room(&mut self, opening: Key) -> bool {
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

    pub(super) fn close_idle(&mut self, now: Instant) {
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

    pub(super) fn next_timer(&self) -> Option<Instant> {
        let cfg = &self.shared.config;
        self.timed
            .iter()
            .filter_map(|k| self.readers.get(k))
            .filter_map(|r| {
                let flush = r
                    .has_pending_entry()
                    .then(|| r.last_data + self.spec.multiline_timeout);
                let release = r.gone_since.map(|g| g.max(r.last_data) + cfg.rotate_wait());
                let copy = r.copy_wait.map(|(since, _)| since + cfg.rotate_wait());
                [flush, release, copy].into_iter().flatten().min()
            })
            .min()
    }

    pub(super) fn run_timers(&mut self, now: Instant) {
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
                    if self.deliver(key, id, &path, size, &batch, &[]).is_err() {
                        self.stopping = true;
                        return;
                    }
                }
            }
            let Some(r) = self.readers.get(&key) else {
                continue;
            };
            if let Some((since, _)) = r.copy_wait {
                if now >= since + rotate_wait {
                    self.mark_ready(key);
                }
                continue;
            }
            match r.gone_since {
                Some(g) if now >= g.max(r.last_data) + rotate_wait => {
                    // A last look: the writer may have added lines since the last event.
                    loop {
                        match self.read_turn(key) {
                            Ok(true) => continue,
                            Ok(false) => break,
                            Err(SendAborted) => {
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
    pub(super) fn release(&mut self, key: Key, finish: bool) {
        let Some(mut r) = self.readers.remove(&key) else {
            return;
        };
        if finish && r.claimed {
            if let Some(id) = r.id {
                let mut batch = Batch::default();
                r.finish(self.parser.as_ref(), &mut batch);
                let path = Arc::clone(&r.path_str);
                let offset = r.offset();
                // deliver finds the reader (and its carried time) by key: put it back.
                self.readers.insert(key, r);
                if self.deliver(key, id, &path, offset, &batch, &[]).is_err() {
                    self.stopping = true;
                }
                let Some(back) = self.readers.remove(&key) else {
                    return;
                };
                r = back;
            }
        }
        self.drop_reader(r);
        tracing::debug!(source = %self.spec.name, "released file");
    }

    /// Drops a reader that could not be read; the file is tried again at the next scan.
    pub(super) fn forget(&mut self, key: Key) {
        if let Some(r) = self.readers.remove(&key) {
            self.drop_reader(r);
        }
    }

    pub(super) fn drop_reader(&mut self, r: FileReader) {
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
}

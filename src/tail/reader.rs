//! One file being read: where it is, the partial line at its end, and the framing of its
//! bytes into entries.
//!
//! Framing rules:
//! - Lines end with `\n`; a last line without one waits for it (or for the file to be let
//!   go after rotation, when it is shipped as it is).
//! - A line longer than the source's maximum keeps its first `max_line_bytes` bytes and is
//!   flagged; the rest is skipped without being held in memory.
//! - NUL bytes at the start of a line are skipped: they are holes left by `copytruncate`
//!   with a writer that does not append, or by preallocation, never log content. A long
//!   run is jumped over with `SEEK_DATA`, so a sparse multi-GiB hole costs one syscall.
//!   NUL bytes inside a line are kept.
//! - Empty lines produce no record.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logship_parsers::{Assembler, Entry, Parser};

use crate::pipeline::FileId;

use super::fingerprint;

/// A file's device and inode: how the tailer tells open files apart.
pub type Key = (u64, u64);

/// A run of NULs at least this long is worth asking the kernel for the next data.
const HOLE_PROBE: u64 = 64 * 1024;

/// What one read produced: entries in file order, each a slice of the read buffer (a line
/// that arrived whole in this read: no copy, no allocation) or of the batch's own text (a
/// line that spanned reads, a multi-line entry, a last line shipped without its newline).
/// A source keeps one batch and clears it per read, so its buffers are reused.
#[derive(Debug, Default)]
pub struct Batch {
    /// Complete entries in file order; their text is [`Batch::text`].
    pub entries: Vec<EntryAt>,
    /// Text of the entries that are not in the read buffer, back to back.
    owned: Vec<u8>,
    /// Every byte before this offset is in `entries` or produces no record: the checkpoint
    /// may move here once the entries are acknowledged.
    pub settled: Option<u64>,
    /// Newline-terminated lines framed, empty ones included.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// One complete entry of a [`Batch`]: where its text is and which file bytes it spans.
#[derive(Debug, Clone, Copy)]
pub struct EntryAt {
    text: TextAt,
    /// Byte offset of the entry's first line.
    pub start: u64,
    /// Byte offset just past the newline of its last line: where reading resumes.
    pub end: u64,
    /// The entry was cut at the size cap.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy)]
enum TextAt {
    /// `from..to` of the read buffer passed to [`FileReader::read`].
    Read(usize, usize),
    /// `from..to` of the batch's own text.
    Owned(usize, usize),
}

impl Batch {
    /// The text of `entry`; `read` is the buffer the batch was read into (empty for a
    /// batch from [`FileReader::finish`] or [`FileReader::flush_stale`]).
    pub fn text<'a>(&'a self, read: &'a [u8], entry: &EntryAt) -> &'a [u8] {
        match entry.text {
            TextAt::Read(from, to) => read.get(from..to).unwrap_or(&[]),
            TextAt::Owned(from, to) => self.owned.get(from..to).unwrap_or(&[]),
        }
    }

    /// Empties the batch for the next read, keeping its buffers.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.owned.clear();
        self.settled = None;
        self.lines = 0;
        self.bytes = 0;
    }

    fn push_owned(&mut self, bytes: &[u8], start: u64, end: u64, truncated: bool) {
        if bytes.is_empty() {
            return;
        }
        let from = self.owned.len();
        self.owned.extend_from_slice(bytes);
        self.entries.push(EntryAt {
            text: TextAt::Owned(from, self.owned.len()),
            start,
            end,
            truncated,
        });
    }
}

/// Whether a read reached the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// At the end of what the file holds now.
    Eof,
    /// Bytes were read: there may be more.
    More,
    /// The file shrank below the read offset (`copytruncate`): reading restarted at 0.
    Truncated,
}

/// The path no longer leads to the file we were reading.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Opening or positioning failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The path leads to another inode now.
    #[error("the path now names another file")]
    Replaced,
}

/// One followed file: its descriptor (when open), position and partial line.
#[derive(Debug)]
pub struct FileReader {
    /// Device and inode.
    pub key: Key,
    /// Known once the file has a complete head (see [`fingerprint`]).
    pub id: Option<FileId>,
    /// The path it was found under (updated on rename).
    pub path: PathBuf,
    /// `path` as text, shared by its records' origins.
    pub path_str: Arc<str>,
    file: Option<File>,
    /// Bytes consumed from the file, including the partial line.
    offset: u64,
    line: Vec<u8>,
    line_start: u64,
    nul_run: u64,
    assembler: Assembler,
    max_line: usize,
    /// When bytes last arrived (drives the multi-line flush, idle close and rotate wait).
    pub last_data: Instant,
    /// When the path stopped leading to this file (rotated away or deleted).
    pub gone_since: Option<Instant>,
    /// Where to start if the file turns out to have no checkpoint (`read_from = "end"`).
    pub start_if_new: u64,
    /// The file was claimed in the ack tracker and reading has started.
    pub claimed: bool,
    /// Found outside the patterns (rotated away while the agent was down): read only if
    /// it is a file with a checkpoint, to its end, then let go.
    pub adopt_only: bool,
    /// The carried time after the last entry read: the timestamp of the next entry if it
    /// has none of its own. Set at claim.
    pub time: Option<jiff::Timestamp>,
    /// Its head matches a file being read elsewhere: since when it waits for that file to
    /// be let go, and its size then (a copy still being written keeps waiting).
    pub copy_wait: Option<(Instant, u64)>,
    /// Whether a matching head makes it a copy of a known file (see `AckTracker::claim`);
    /// false once it waited in vain.
    pub follow_copies: bool,
}

impl FileReader {
    /// A reader of `path`, not opened yet; `max_line` caps an entry's bytes.
    pub fn new(key: Key, path: PathBuf, max_line: usize, start_if_new: u64) -> Self {
        let path_str: Arc<str> = path.to_string_lossy().into();
        FileReader {
            key,
            id: None,
            path,
            path_str,
            file: None,
            offset: 0,
            line: Vec::new(),
            line_start: 0,
            nul_run: 0,
            assembler: Assembler::new(max_line),
            max_line,
            last_data: Instant::now(),
            gone_since: None,
            start_if_new,
            claimed: false,
            adopt_only: false,
            time: None,
            copy_wait: None,
            follow_copies: true,
        }
    }

    /// The file was renamed: its records name the new path.
    pub fn set_path(&mut self, path: PathBuf) {
        self.path_str = path.to_string_lossy().into();
        self.path = path;
    }

    /// Whether it holds a descriptor now.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Bytes consumed from the file, including the partial line.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Opens the file by path and checks it is still the same file.
    pub fn open(&mut self) -> Result<(), OpenError> {
        let mut file = File::open(&self.path)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.key {
            return Err(OpenError::Replaced);
        }
        file.seek(SeekFrom::Start(self.offset))?;
        self.file = Some(file);
        Ok(())
    }

    /// Closes the descriptor; the position and partial line are kept for a reopen.
    pub fn close(&mut self) {
        self.file = None;
    }

    /// Computes the file's identity if its head is complete. Needs the file open.
    pub fn identify(&mut self) -> io::Result<Option<FileId>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        Ok(fingerprint::read_fingerprint(file)?.map(|fp| fingerprint::file_id(&meta, fp)))
    }

    /// Whether the open file has no name left (deleted).
    pub fn is_deleted(&self) -> bool {
        self.file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.nlink() == 0)
    }

    /// Current size of the open file.
    pub fn size(&self) -> io::Result<Option<u64>> {
        self.file
            .as_ref()
            .map(|f| f.metadata().map(|m| m.len()))
            .transpose()
    }

    /// Moves the read position to `offset` (a checkpoint, or the end for `read_from`).
    pub fn start_at(&mut self, offset: u64) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.seek(SeekFrom::Start(offset))?;
        }
        self.offset = offset;
        self.line_start = offset;
        self.line.clear();
        self.nul_run = 0;
        self.assembler = Assembler::new(self.max_line);
        Ok(())
    }

    /// Reads once into `buf` (one `read` syscall), framing the bytes into `out`, whose
    /// entries then point into `buf`. `check_truncation`: first look whether the file
    /// shrank or got a new head (once per turn is enough: a truncation between two reads of
    /// one turn is seen at the next turn, as it would be had it happened a moment later).
    pub fn read(
        &mut self,
        buf: &mut [u8],
        check_truncation: bool,
        parser: &dyn Parser,
        out: &mut Batch,
    ) -> io::Result<ReadStatus> {
        let Some(file) = &mut self.file else {
            return Ok(ReadStatus::Eof);
        };
        if check_truncation {
            let shrunk = file.metadata()?.len() < self.offset;
            // A file truncated and written again past our offset before we looked is still
            // recognised by its new head (unless the new head is identical).
            let new_head = match self.id {
                Some(id) if !shrunk && self.offset > 0 => {
                    fingerprint::read_fingerprint(file)? != Some(id.fingerprint)
                }
                _ => false,
            };
            if shrunk || new_head {
                self.start_at(0)?;
                self.id = None;
                return Ok(ReadStatus::Truncated);
            }
        }
        let n = loop {
            let Some(file) = &mut self.file else {
                return Ok(ReadStatus::Eof);
            };
            match file.read(buf) {
                Ok(0) => return Ok(ReadStatus::Eof),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        let base = self.offset;
        self.offset += n as u64;
        out.bytes += n as u64;
        self.last_data = Instant::now();
        self.frame(chunk, base, parser, out);
        if self.nul_run >= HOLE_PROBE {
            self.skip_hole()?;
        }
        if self.line.is_empty() && self.assembler.pending_start().is_none() {
            out.settled = Some(self.line_start);
        }
        Ok(ReadStatus::More)
    }

    /// Splits `chunk` (the start of the read buffer) into lines with a SIMD newline search.
    /// A line that arrives whole becomes an entry pointing into the chunk; only a line
    /// that spans reads is gathered in `self.line`.
    fn frame(&mut self, chunk: &[u8], base: u64, parser: &dyn Parser, out: &mut Batch) {
        let multiline = parser.is_multiline();
        let mut i = 0;
        while i < chunk.len() {
            let rest = &chunk[i..];
            if self.line.is_empty() {
                let nuls = rest.iter().position(|&b| b != 0).unwrap_or(rest.len());
                if nuls > 0 {
                    i += nuls;
                    self.nul_run += nuls as u64;
                    self.line_start = base + i as u64;
                    continue;
                }
            }
            self.nul_run = 0;
            match memchr::memchr(b'\n', rest) {
                Some(k) => {
                    let end = base + (i + k + 1) as u64;
                    out.lines += 1;
                    if self.line.is_empty() {
                        self.emit(parser, multiline, &rest[..k], Some(i), end, out);
                    } else {
                        self.append(&rest[..k]);
                        let line = std::mem::take(&mut self.line);
                        self.emit(parser, multiline, &line, None, end, out);
                        self.line = line;
                        self.line.clear();
                    }
                    self.line_start = end;
                    i += k + 1;
                }
                None => {
                    self.append(rest);
                    break;
                }
            }
        }
    }

    /// Turns one line (without its newline) spanning `line_start..end` into an entry.
    /// `at`: where the line starts in the read buffer, if it is there whole. The rules are
    /// the [`Assembler`]'s: a trailing `\r` is not part of it, it is cut at the cap and
    /// flagged, an empty line is no entry. Multi-line sources go through the assembler.
    fn emit(
        &mut self,
        parser: &dyn Parser,
        multiline: bool,
        line: &[u8],
        at: Option<usize>,
        end: u64,
        out: &mut Batch,
    ) {
        if multiline {
            let entry = self.assembler.push(parser, line, self.line_start, end);
            push_entry(entry, out);
            return;
        }
        let line = strip_cr(&line[..line.len().min(self.max_line + 1)]);
        let truncated = line.len() > self.max_line;
        let text = &line[..line.len().min(self.max_line)];
        if text.is_empty() {
            return;
        }
        match at {
            Some(from) => out.entries.push(EntryAt {
                text: TextAt::Read(from, from + text.len()),
                start: self.line_start,
                end,
                truncated,
            }),
            None => out.push_owned(text, self.line_start, end, truncated),
        }
    }

    /// Keeps at most one byte over the cap, so the assembler sees the line is too long.
    fn append(&mut self, bytes: &[u8]) {
        let room = (self.max_line + 1).saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Jumps over a sparse hole to the next data the kernel knows of. If the filesystem
    /// cannot say, reading simply goes on through the NULs.
    fn skip_hole(&mut self) -> io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let Ok(from) = i64::try_from(self.offset) else {
            return Ok(());
        };
        // SAFETY: lseek on a descriptor we own; it only moves the file position.
        let pos = unsafe { libc::lseek(file.as_raw_fd(), from, libc::SEEK_DATA) };
        match u64::try_from(pos) {
            Ok(pos) if pos > self.offset => {
                // Still in the NUL run: nothing pending, the jump is safe.
                self.offset = pos;
                self.line_start = pos;
            }
            Ok(_) => {}
            // ENXIO (no data after here, yet) or unsupported: keep the position. Jumping to
            // the end instead could skip a line appended meanwhile.
            Err(_) => {
                file.seek(SeekFrom::Start(self.offset))?;
            }
        }
        self.nul_run = 0;
        Ok(())
    }

    /// Ships a multi-line entry that waited longer than `timeout` for a continuation.
    pub fn flush_stale(&mut self, now: Instant, timeout: Duration, out: &mut Batch) {
        if self.assembler.pending_start().is_some()
            && now.saturating_duration_since(self.last_data) >= timeout
        {
            push_entry(self.assembler.flush(), out);
            if self.line.is_empty() {
                out.settled = Some(self.line_start);
            }
        }
    }

    /// Whether an entry is held back waiting for a continuation line.
    pub fn has_pending_entry(&self) -> bool {
        self.assembler.pending_start().is_some()
    }

    /// The file is let go: ships the pending entry and the last line even without its
    /// newline, since nothing more will be written to it.
    pub fn finish(&mut self, parser: &dyn Parser, out: &mut Batch) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            out.lines += 1;
            let end = self.offset;
            self.emit(parser, parser.is_multiline(), &line, None, end, out);
            self.line_start = self.offset;
        }
        push_entry(self.assembler.flush(), out);
        out.settled = Some(self.offset);
    }
}

fn push_entry(entry: Option<Entry>, out: &mut Batch) {
    if let Some(e) = entry {
        out.push_owned(&e.bytes, e.start, e.end, e.truncated);
    }
}

/// Removes one trailing `\r` (CRLF files): it is never part of a record.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_parsers::raw::Raw;
    use std::io::Write;

    fn reader_over(bytes: &[u8], max: usize) -> (tempfile::NamedTempFile, FileReader) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let meta = f.as_file().metadata().unwrap();
        let mut r = FileReader::new((meta.dev(), meta.ino()), f.path().to_owned(), max, 0);
        r.open().unwrap();
        (f, r)
    }

    /// Entries copied out of each read (the batch points into the read buffer), and the
    /// last settled offset.
    #[derive(Default)]
    struct Read {
        entries: Vec<(Vec<u8>, u64, u64, bool)>,
        settled: Option<u64>,
    }

    fn collect(batch: &Batch, buf: &[u8], into: &mut Read) {
        for e in &batch.entries {
            into.entries
                .push((batch.text(buf, e).to_vec(), e.start, e.end, e.truncated));
        }
        if batch.settled.is_some() {
            into.settled = batch.settled;
        }
    }

    fn read_all(r: &mut FileReader) -> Read {
        let mut got = Read::default();
        let mut batch = Batch::default();
        let mut buf = vec![0u8; 7];
        let mut first = true;
        loop {
            batch.clear();
            let status = r.read(&mut buf, first, &Raw, &mut batch).unwrap();
            first = false;
            collect(&batch, &buf, &mut got);
            match status {
                ReadStatus::More => {}
                ReadStatus::Eof => return got,
                ReadStatus::Truncated => panic!("unexpected truncation"),
            }
        }
    }

    fn texts(b: &Read) -> Vec<(&[u8], u64, u64, bool)> {
        b.entries
            .iter()
            .map(|(t, s, e, tr)| (t.as_slice(), *s, *e, *tr))
            .collect()
    }

    #[test]
    fn frames_lines_across_small_reads_and_holds_the_partial_line() {
        let (mut f, mut r) = reader_over(b"alpha\r\nbeta\n\ngam", 100);
        let out = read_all(&mut r);
        assert_eq!(
            texts(&out),
            vec![(&b"alpha"[..], 0, 7, false), (&b"beta"[..], 7, 12, false)]
        );
        // Only whole lines are settled: the partial "gam" (from byte 13) holds the checkpoint.
        assert!(out.settled.is_some_and(|s| s <= 13), "{:?}", out.settled);
        f.write_all(b"ma\n").unwrap();
        let out = read_all(&mut r);
        assert_eq!(texts(&out), vec![(&b"gamma"[..], 13, 19, false)]);
        assert_eq!(out.settled, Some(19));
    }

    #[test]
    fn long_lines_are_cut_and_flagged_without_holding_them() {
        let mut bytes = vec![b'x'; 1000];
        bytes.extend_from_slice(b"\nok\n");
        let (_f, mut r) = reader_over(&bytes, 10);
        let out = read_all(&mut r);
        assert_eq!(
            texts(&out),
            vec![
                (&b"xxxxxxxxxx"[..], 0, 1001, true),
                (&b"ok"[..], 1001, 1004, false)
            ]
        );
        assert!(r.line.capacity() < 100);
    }

    #[test]
    fn lines_whole_in_one_read_point_into_the_buffer_with_the_same_rules() {
        let mut bytes = b"first\r\n\nsecond\n".to_vec();
        bytes.extend_from_slice(&[b'y'; 30]);
        bytes.extend_from_slice(b"\r\npart");
        let (_f, mut r) = reader_over(&bytes, 10);
        let mut batch = Batch::default();
        let mut buf = vec![0u8; 4096];
        assert_eq!(
            r.read(&mut buf, true, &Raw, &mut batch).unwrap(),
            ReadStatus::More
        );
        let mut got = Read::default();
        collect(&batch, &buf, &mut got);
        assert_eq!(
            texts(&got),
            vec![
                (&b"first"[..], 0, 7, false),
                (&b"second"[..], 8, 15, false),
                (&b"yyyyyyyyyy"[..], 15, 47, true),
            ]
        );
        assert!(
            batch.owned.is_empty(),
            "whole lines are not copied out of the read buffer"
        );
        assert_eq!(batch.lines, 4);
        // Registered entries move the checkpoint; with a partial line pending nothing
        // more is settled.
        assert_eq!(batch.settled, None);
    }

    #[test]
    fn leading_nuls_are_skipped_and_settled() {
        let mut bytes = vec![0u8; 100];
        bytes.extend_from_slice(b"after\0hole\n");
        bytes.extend_from_slice(&[0u8; 50]);
        let (_f, mut r) = reader_over(&bytes, 100);
        let out = read_all(&mut r);
        assert_eq!(texts(&out), vec![(&b"after\0hole"[..], 100, 111, false)]);
        assert_eq!(out.settled, Some(161));
    }

    #[test]
    fn truncation_restarts_at_zero() {
        let (f, mut r) = reader_over(b"one\ntwo\n", 100);
        read_all(&mut r);
        f.as_file().set_len(0).unwrap();
        let mut out = Batch::default();
        let mut buf = vec![0u8; 64];
        assert_eq!(
            r.read(&mut buf, true, &Raw, &mut out).unwrap(),
            ReadStatus::Truncated
        );
        assert_eq!(r.offset(), 0);
    }

    #[test]
    fn finish_ships_the_last_line_without_newline() {
        let (_f, mut r) = reader_over(b"a\nlast", 100);
        let mut out = read_all(&mut r);
        let mut batch = Batch::default();
        r.finish(&Raw, &mut batch);
        collect(&batch, &[], &mut out);
        assert_eq!(
            texts(&out),
            vec![(&b"a"[..], 0, 2, false), (&b"last"[..], 2, 6, false)]
        );
        assert_eq!(out.settled, Some(6));
    }
}

//! The file sink: each record as one JSON line (`JsonLine`), appended to a file that is
//! rotated by size with a bounded number of old files, and synced before the unit is
//! acknowledged.
//!
//! Exactly once across crashes: acknowledgement (and so the checkpoint) follows the sync,
//! so after a kill -9 the tailer reads again at most what was synced but not yet
//! checkpointed. Each line names its entry's file identity and end offset; at start the
//! sink reads them back from the files it keeps and skips entries it already holds. A
//! line cut by the crash (never synced, never acknowledged) is cut off at start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::deadletter::DeadLetterEntry;
use super::error::SinkError;
use super::output::{JsonLine, SinkConfig, file_key, is_stream_key};
use super::retry::{Failure, RowFailure};
use crate::pipeline::FileRecord;
use crate::pipeline::drain::{self, Stop};

/// JSON lines in a size-rotated file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    file: File,
    size: u64,
    /// Per file identity, the end offset of the last entry held in the output.
    held: HashMap<String, u64>,
    /// Network streams' identities put in `held` by the unit being written: needed while
    /// the unit is retried, dropped once it is written (a stream is never read again, and
    /// a syslog sender opens a new one per connection, so keeping them would grow `held`
    /// without bound).
    unit_streams: Vec<String>,
    buf: Vec<u8>,
}

fn io_error(what: &str, path: &Path, source: std::io::Error) -> SinkError {
    SinkError::Output {
        what: what.to_owned(),
        path: path.to_owned(),
        source,
    }
}

impl FileSink {
    /// Opens (or creates) `[sink] path`, cutting a line a crash left unfinished, and learns
    /// which entries the kept files already hold.
    pub fn open(config: &SinkConfig) -> Result<FileSink, SinkError> {
        let path = config.path.clone();
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| io_error("cannot create the directory of", &path, e))?;
        let mut held = HashMap::new();
        for k in (1..=config.max_files).rev() {
            read_held(&rotated(&path, k), &mut held)
                .map_err(|e| io_error("cannot read", &rotated(&path, k), e))?;
        }
        let size = cut_unfinished_line(&path).map_err(|e| io_error("cannot repair", &path, e))?;
        read_held(&path, &mut held).map_err(|e| io_error("cannot read", &path, e))?;
        let file = open_append(&path).map_err(|e| io_error("cannot open", &path, e))?;
        sync_dir(dir).map_err(|e| io_error("cannot sync the directory of", &path, e))?;
        Ok(FileSink {
            path,
            max_bytes: config.max_file_bytes.max(1),
            max_files: config.max_files,
            file,
            size,
            held,
            unit_streams: Vec::new(),
            buf: Vec::with_capacity(1 << 20),
        })
    }

    /// `path` → `path.1` → `path.2`...; the oldest beyond `max_files` is deleted. The
    /// current file is synced already (every chunk is).
    fn rotate(&mut self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if self.max_files == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, self.max_files));
            for k in (1..self.max_files).rev() {
                let from = rotated(&self.path, k);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, k + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        sync_dir(dir)
    }

    /// Appends `buf` (whole lines; `ends[k]` is the entry of line `k`), rotating before a
    /// line that would grow the file beyond `max_bytes`, and syncing each file before it is
    /// rotated and at the end. Lines already synced are remembered in `held` as they go,
    /// so a unit retried after a failure part-way does not write them twice.
    fn append(&mut self, ends: &[(String, u64)]) -> std::io::Result<()> {
        let mut start = 0;
        let mut line = 0;
        while start < self.buf.len() {
            if self.size >= self.max_bytes {
                self.rotate()?;
            }
            // Whole lines that fit; at least one in an empty file.
            let room = self.max_bytes - self.size;
            let (mut end, first_line) = (start, line);
            for nl in memchr::memchr_iter(b'\n', &self.buf[start..]) {
                let next = start + nl + 1;
                if (next - start) as u64 > room && !(end == start && self.size == 0) {
                    break;
                }
                end = next;
                line += 1;
            }
            if end == start {
                self.rotate()?;
                continue;
            }
            let written = self
                .file
                .write_all(&self.buf[start..end])
                .and_then(|()| self.file.sync_data());
            if let Err(e) = written {
                // Leave no part of a chunk that will be written again.
                let _ = self.file.set_len(self.size);
                let _ = self.file.seek(SeekFrom::End(0));
                return Err(e);
            }
            self.size += (end - start) as u64;
            for (key, e) in &ends[first_line..line] {
                let held = self.held.entry(key.clone()).or_insert_with(|| {
                    if is_stream_key(key) {
                        self.unit_streams.push(key.clone());
                    }
                    0
                });
                *held = (*held).max(*e);
            }
            start = end;
        }
        Ok(())
    }
}

impl drain::Sink for FileSink {
    type Item = FileRecord;

    fn write(&mut self, unit: &[FileRecord], pending: &[usize], _stop: &Stop) -> Vec<RowFailure> {
        self.buf.clear();
        let mut ends: Vec<(String, u64)> = Vec::new();
        for &i in pending {
            let r = &unit[i];
            let key = file_key(r);
            if self.held.get(&key).is_some_and(|&end| end >= r.origin.end) {
                continue;
            }
            if serde_json::to_writer(&mut self.buf, &JsonLine::of(r)).is_err() {
                continue;
            }
            self.buf.push(b'\n');
            ends.push((key, r.origin.end));
        }
        if !self.buf.is_empty() {
            if let Err(e) = self.append(&ends) {
                let reason = format!("cannot write {}: {e}", self.path.display());
                return RowFailure::all(pending.iter().copied(), &Failure::Retry(reason));
            }
        }
        // Every pending row is written: the unit is done, its streams are not needed.
        for key in self.unit_streams.drain(..) {
            self.held.remove(&key);
        }
        Vec::new()
    }

    fn dead_letter(&self, item: &FileRecord, reason: &str) -> DeadLetterEntry {
        dead_letter_entry(item, reason)
    }
}

/// A record the output refused, for the dead-letter file.
pub(crate) fn dead_letter_entry(item: &FileRecord, reason: &str) -> DeadLetterEntry {
    DeadLetterEntry {
        refused_at: jiff::Timestamp::now().to_string(),
        table: "infrastructure_logs",
        id: format!("{}@{}", file_key(item), item.origin.start),
        reason: reason.to_owned(),
        record: serde_json::to_value(JsonLine::of(item)).unwrap_or_default(),
    }
}

fn rotated(path: &Path, k: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Truncates `path` after its last newline (a line a crash cut); returns the new size.
fn cut_unfinished_line(path: &Path) -> std::io::Result<u64> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if keep < bytes.len() {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
        tracing::warn!(path = %path.display(), bytes = bytes.len() - keep,
            "cut an unfinished last line (never acknowledged; it is read again)");
    }
    Ok(keep as u64)
}

/// Adds the (file identity, end offset) of every line of `path` to `held`.
fn read_held(path: &Path, held: &mut HashMap<String, u64>) -> std::io::Result<()> {
    #[derive(serde::Deserialize)]
    struct Origin {
        file_id: String,
        file_end: u64,
    }
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for line in BufReader::new(f).split(b'\n') {
        let line = line?;
        if let Ok(o) = serde_json::from_slice::<Origin>(&line) {
            if is_stream_key(&o.file_id) {
                continue;
            }
            let e = held.entry(o.file_id).or_insert(0);
            *e = (*e).max(o.file_end);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use logship_parsers::{Level, Record};

    use super::*;
    use crate::pipeline::drain::Sink as _;
    use crate::pipeline::{FileId, Origin, Route, Table};

    fn record(n: u64) -> FileRecord {
        FileRecord {
            record: Record::new(
                jiff::Timestamp::UNIX_EPOCH,
                Level::Info,
                Arc::from("web"),
                Arc::from("h"),
                &format!("line {n}"),
                std::iter::empty::<(&str, &str)>(),
            ),
            origin: Origin {
                file: FileId {
                    dev: 1,
                    inode: 2,
                    fingerprint: 3,
                },
                path: Arc::from("/var/log/a.log"),
                start: n * 10,
                end: n * 10 + 10,
            },
            route: Arc::new(Route {
                source: Arc::from("web"),
                table: Table::InfrastructureLogs,
                ttl: None,
                bucket: Duration::from_secs(300),
            }),
        }
    }

    fn config(dir: &Path, max_file_bytes: u64, max_files: usize) -> SinkConfig {
        SinkConfig {
            kind: super::super::output::SinkKind::File,
            path: dir.join("out.jsonl"),
            max_file_bytes,
            max_files,
            ..SinkConfig::default()
        }
    }

    fn messages(dir: &Path) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // Oldest first: out.jsonl.2, out.jsonl.1, out.jsonl.
        files.sort_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for f in files {
            for l in std::fs::read_to_string(f).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                out.push(v["message"].as_str().unwrap().to_owned());
            }
        }
        out
    }

    #[test]
    fn entries_already_held_are_skipped_after_a_restart_and_a_cut_line_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 1 << 20, 3);
        let unit: Vec<FileRecord> = (0..5).map(record).collect();
        let mut sink = FileSink::open(&cfg).unwrap();
        assert!(sink.write(&unit, &[0, 1, 2], &Stop::new()).is_empty());
        drop(sink);
        // A crash mid-line: bytes of a line that was never synced nor acknowledged.
        let mut f = open_append(&cfg.path).unwrap();
        f.write_all(b"{\"message\":\"line 3\",\"fi").unwrap();
        drop(f);
        let mut sink = FileSink::open(&cfg).unwrap();
        // The tailer reads again from its last checkpoint: 1..5.
        assert!(sink.write(&unit, &[1, 2, 3, 4], &Stop::new()).is_empty());
        assert_eq!(
            messages(dir.path()),
            vec!["line 0", "line 1", "line 2", "line 3", "line 4"]
        );
    }

    #[test]
    fn network_streams_are_not_remembered_once_their_unit_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 1 << 20, 3);
        let mut sink = FileSink::open(&cfg).unwrap();
        // A syslog sender per connection: a new stream each time.
        for stream in 0..100 {
            let mut unit: Vec<FileRecord> = (0..3).map(record).collect();
            for r in &mut unit {
                r.origin.file = FileId {
                    dev: FileId::STREAM_DEV,
                    inode: stream,
                    fingerprint: 0,
                };
            }
            unit.push(record(3));
            assert!(sink.write(&unit, &[0, 1, 2, 3], &Stop::new()).is_empty());
        }
        assert_eq!(sink.held.len(), 1, "only the file's identity is kept");
        assert_eq!(
            messages(dir.path()).len(),
            100 * 3 + 1,
            "the file's line once"
        );
        drop(sink);
        let sink = FileSink::open(&cfg).unwrap();
        assert_eq!(
            sink.held.len(),
            1,
            "streams are not read back after a restart"
        );
    }

    #[test]
    fn rotation_keeps_max_files_and_no_file_grows_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 600, 2);
        let mut sink = FileSink::open(&cfg).unwrap();
        let unit: Vec<FileRecord> = (0..40).map(record).collect();
        let all: Vec<usize> = (0..40).collect();
        assert!(sink.write(&unit, &all, &Stop::new()).is_empty());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["out.jsonl", "out.jsonl.1", "out.jsonl.2"]);
        for n in &names {
            let len = std::fs::metadata(dir.path().join(n)).unwrap().len();
            assert!(len <= 600, "{n}: {len}");
        }
        // The newest lines are kept, in order, each once.
        let kept = messages(dir.path());
        let last: Vec<String> = (40 - kept.len() as u64..40)
            .map(|n| format!("line {n}"))
            .collect();
        assert_eq!(kept, last);
    }
}

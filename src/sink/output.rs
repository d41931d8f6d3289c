//! The `[sink]` section: which output the drain loop writes to, and the JSON line the
//! local outputs (file, stdout) write for each record.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::pipeline::FileRecord;

/// `[sink]`: where the agent writes its flush units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// `"cassandra"` (the `[cassandra]` cluster), `"file"` (JSON lines in `path`),
    /// `"stdout"` (for trying a config) or `"null"` (acknowledged at once, for benchmarks).
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// file: the file written, one JSON object per record; rotated to `path.1`, `path.2`...
    pub path: PathBuf,
    /// file: the size at which the file is rotated (bytes).
    pub max_file_bytes: u64,
    /// file: rotated files kept besides the current one; older ones are deleted.
    pub max_files: usize,
    /// stdout: `"json"` (one object per line, as `logship parse` prints) or `"text"`
    /// (one readable line per record).
    pub format: LineFormat,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            kind: SinkKind::Cassandra,
            path: PathBuf::from("/var/lib/logship/out/records.jsonl"),
            max_file_bytes: 100 << 20,
            max_files: 5,
            format: LineFormat::Json,
        }
    }
}

/// Which output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SinkKind {
    /// Apache Cassandra, the `[cassandra]` section.
    Cassandra,
    /// JSON lines in a size-rotated file, synced before acknowledging.
    File,
    /// Standard output.
    Stdout,
    /// Nowhere: every unit is acknowledged at once.
    Null,
}

impl SinkKind {
    /// The name used in logs, `/health` and the config.
    pub const fn name(self) -> &'static str {
        match self {
            SinkKind::Cassandra => "cassandra",
            SinkKind::File => "file",
            SinkKind::Stdout => "stdout",
            SinkKind::Null => "null",
        }
    }

    /// Whether acknowledged records are durable in this output (checkpoints then promise
    /// exactly once across crashes).
    pub const fn persists(self) -> bool {
        matches!(self, SinkKind::Cassandra | SinkKind::File)
    }
}

/// How the stdout sink prints a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LineFormat {
    /// One JSON object per line.
    Json,
    /// `timestamp level source message key=value...`
    Text,
}

/// One record as a JSON line: the object `logship parse` prints, plus where the entry came
/// from (`file_id` and `file_end` let the file sink skip entries it already holds when
/// they are read again after a crash).
#[derive(Debug, Serialize)]
pub(crate) struct JsonLine<'a> {
    #[serde(flatten)]
    pub record: &'a logship_parsers::Record,
    pub file_path: &'a str,
    pub file_offset: u64,
    pub file_end: u64,
    pub file_id: String,
}

impl<'a> JsonLine<'a> {
    pub(crate) fn of(r: &'a FileRecord) -> JsonLine<'a> {
        JsonLine {
            record: &r.record,
            file_path: &r.origin.path,
            file_offset: r.origin.start,
            file_end: r.origin.end,
            file_id: file_key(r),
        }
    }
}

/// A file's identity as written in `file_id`.
pub(crate) fn file_key(r: &FileRecord) -> String {
    let f = r.origin.file;
    format!("{}:{}:{:016x}", f.dev, f.inode, f.fingerprint)
}

/// Whether a `file_id` is a network stream's (see [`crate::pipeline::FileId::is_stream`]).
pub(crate) fn is_stream_key(key: &str) -> bool {
    key.split(':')
        .next()
        .is_some_and(|dev| dev.parse() == Ok(crate::pipeline::FileId::STREAM_DEV))
}

/// `timestamp level source message key=value...` on one line.
pub(crate) fn text_line(r: &FileRecord, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let rec = &r.record;
    let _ = write!(
        out,
        "{} {:5} {} {}",
        rec.timestamp,
        rec.level.as_str(),
        rec.source,
        rec.message().replace('\n', "\\n")
    );
    for (k, v) in rec.fields() {
        let _ = write!(out, " {k}={v:?}");
    }
    if let Some(e) = &rec.parse_error {
        let _ = write!(out, " parse_error={e:?}");
    }
    out.push(b'\n');
}

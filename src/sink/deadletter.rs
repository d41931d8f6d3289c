//! Records Cassandra refused for good: appended as JSON lines, with the reason, to
//! `<data_dir>/dead-letter.jsonl`, so they are never silently lost and never block the
//! pipeline. Without a data directory they are logged at ERROR, whole.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::error::SinkError;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "dead-letter.jsonl";

/// One refused record, as written to the file.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterEntry {
    /// When it was refused (RFC 3339, UTC).
    pub refused_at: String,
    /// The table it was meant for (`infrastructure_logs`, `application_logs`).
    pub table: &'static str,
    /// Its row id, so a replay writes the same row once.
    pub id: String,
    /// Why it was refused (Cassandra's answer, or the size limit).
    pub reason: String,
    /// The record itself (its `Record` or `AppEvent` fields).
    pub record: serde_json::Value,
}

/// Where refused records go: the file in the data directory, or the log without one.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: Option<PathBuf>,
    lock: Arc<Mutex<()>>,
}

impl DeadLetter {
    /// Dead letters in `dir`/dead-letter.jsonl, or logged whole at ERROR without a `dir`.
    pub fn new(dir: Option<PathBuf>) -> DeadLetter {
        DeadLetter {
            path: dir.map(|d| d.join(FILE_NAME)),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Appends and syncs the entries before the unit is acknowledged (blocking: for the
    /// drain loop's thread).
    pub fn append(&self, entries: &[DeadLetterEntry]) -> Result<(), SinkError> {
        if entries.is_empty() {
            return Ok(());
        }
        let Some(path) = self.path.as_deref() else {
            for e in entries {
                let record = e.record.to_string();
                tracing::error!(
                    table = e.table,
                    id = %e.id,
                    reason = %e.reason,
                    "a record was refused for good and no data directory is set for the dead-letter file: {record}"
                );
            }
            return Ok(());
        };
        for e in entries {
            tracing::warn!(table = e.table, id = %e.id, reason = %e.reason, path = %path.display(),
                "a record was refused for good; written to the dead-letter file");
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        append(path, entries).map_err(|source| SinkError::DeadLetter {
            path: path.to_owned(),
            source,
        })
    }
}

fn append(path: &std::path::Path, entries: &[DeadLetterEntry]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut buf = Vec::new();
    for e in entries {
        serde_json::to_writer(&mut buf, e).map_err(std::io::Error::other)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&buf)?;
    f.sync_data()
}

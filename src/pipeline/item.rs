//! A file record on its way from a tailer to Cassandra, and where it came from.

use std::sync::Arc;
use std::time::Duration;

use logship_parsers::Record;
use serde::{Deserialize, Serialize};

/// Identity of a file that survives renames: device and inode, plus a fingerprint of the
/// file's first bytes so a reused inode is told apart from the file that had it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    /// The file system's device number.
    pub dev: u64,
    /// The inode number.
    pub inode: u64,
    /// A hash of the file's first bytes.
    pub fingerprint: u64,
}

impl FileId {
    /// The `dev` of a network stream's identity (syslog over UDP, TCP, a Unix socket):
    /// no file has it (Linux device numbers fit in 32 bits), so the acknowledgement path
    /// tells stream records apart and skips them. `inode` is then the stream's id, random
    /// per agent run, and an [`Origin`]'s `start` the record's sequence number in it.
    pub const STREAM_DEV: u64 = u64::MAX;

    /// Whether this identifies a network stream rather than a file (see [`Self::STREAM_DEV`]).
    pub const fn is_stream(&self) -> bool {
        self.dev == Self::STREAM_DEV
    }
}

/// Where an entry lies: the file and its byte range. `end` is just past the entry's last
/// newline: once the sink acknowledges the entry, reading may resume there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: FileId,
    /// The path the file had when the entry was read (it may have been renamed since).
    pub path: Arc<str>,
    /// Offset of the entry's first byte.
    pub start: u64,
    /// Offset just past the entry's last newline.
    pub end: u64,
}

/// The Cassandra table a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// `infrastructure_logs`: records of file sources.
    InfrastructureLogs,
    /// `application_logs`: events of applications.
    ApplicationLogs,
}

impl Table {
    /// The table's name in CQL.
    pub const fn name(self) -> &'static str {
        match self {
            Table::InfrastructureLogs => "infrastructure_logs",
            Table::ApplicationLogs => "application_logs",
        }
    }
}

/// How one source's records are stored: shared by every record of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The source's name (`[[source]] name`), the partition's first key part.
    pub source: Arc<str>,
    /// The table the records go to.
    pub table: Table,
    /// Written with `USING TTL`; `None` keeps the table's default.
    pub ttl: Option<Duration>,
    /// Width of the partition's time bucket: bounds partition size at the source's line rate.
    pub bucket: Duration,
}

/// A parsed record of a file source, with what the sink and the checkpoints need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The parsed entry.
    pub record: Record,
    /// Where the entry lies.
    pub origin: Origin,
    /// How the source's records are stored.
    pub route: Arc<Route>,
}

//! Parsers for the log formats logship ships, and the record model.
//!
//! Each format implements [`Parser`]: it turns one complete entry (its lines joined with
//! `\n`, trailing CR removed) into a [`Parsed`] that borrows from the entry. Entries that
//! span lines are put together first by [`multiline::Assembler`], which asks the parser
//! whether a line continues the pending entry.
//!
//! This crate knows nothing of files, queues or Cassandra: only bytes in, records out.

pub mod format;
pub mod multiline;
pub mod nginx;
pub mod nginx_error;
pub mod postgres;
pub mod raw;
pub mod record;
pub mod syslog;
pub mod time;

pub use format::{Format, FormatSpec, SpecError};
pub use multiline::{Assembler, Entry, EntryRef};
pub use record::{FieldIter, Level, Parsed, Record, RecordContext};

use jiff::Timestamp;

/// Why an entry did not parse. Short: it becomes the record's `parse_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// Why, in a few words.
    pub reason: String,
}

impl ParseError {
    /// An error with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        ParseError {
            reason: reason.into(),
        }
    }
}

/// A compiled parser for one log format. Cheap to share between threads.
pub trait Parser: Send + Sync {
    /// Parses one complete entry. Must never panic, whatever the bytes.
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError>;

    /// Whether `line` belongs to the entry assembled so far (`pending`, lines joined by `\n`).
    /// Formats whose entries are always one line keep the default.
    fn continues(&self, pending: &[u8], line: &[u8]) -> bool {
        let _ = (pending, line);
        false
    }

    /// Whether entries of this format may span lines. When false, every line is an entry
    /// of its own and is handed on at once, never held back waiting for a continuation.
    fn is_multiline(&self) -> bool {
        false
    }

    /// The format's name (`nginx`, `syslog`, ...), used as the default source name.
    fn name(&self) -> &'static str;

    /// Parses an entry into an owned record; an entry that does not parse becomes a record
    /// with the raw entry as message and `parse_error` set. Never fails.
    fn record(&self, entry: &[u8], ctx: &RecordContext, read_time: Timestamp) -> Record {
        let entry = record::strip_cr(entry);
        match self.parse(entry) {
            Ok(parsed) => parsed.to_record(ctx, read_time),
            Err(e) => ctx.unparsed(entry, e.reason, read_time),
        }
    }
}

//! The record every part of logship exchanges: one log entry, parsed or not.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

/// Severity of a record, ordered from least to most severe.
///
/// Syslog severities map one-to-one; other formats map onto this scale (see each parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warn,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warn,
        Level::Error,
        Level::Critical,
        Level::Alert,
        Level::Emergency,
    ];

    /// The upper-case name stored in Cassandra and printed by `logship parse`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
            Level::Alert => "ALERT",
            Level::Emergency => "EMERGENCY",
        }
    }

    /// Maps a syslog severity (0 = emerg .. 7 = debug); values above 7 clamp to DEBUG.
    pub const fn from_syslog_severity(severity: u8) -> Level {
        match severity {
            0 => Level::Emergency,
            1 => Level::Alert,
            2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warn,
            5 => Level::Notice,
            6 => Level::Info,
            _ => Level::Debug,
        }
    }

    /// Parses a level name as written by `as_str` (case-insensitive; also WARNING, ERR, CRIT, EMERG).
    pub fn from_name(name: &str) -> Option<Level> {
        let level = match name.to_ascii_uppercase().as_str() {
            "DEBUG" | "TRACE" => Level::Debug,
            "INFO" => Level::Info,
            "NOTICE" => Level::Notice,
            "WARN" | "WARNING" => Level::Warn,
            "ERROR" | "ERR" => Level::Error,
            "CRITICAL" | "CRIT" => Level::Critical,
            "ALERT" => Level::Alert,
            "EMERGENCY" | "EMERG" => Level::Emergency,
            _ => return None,
        };
        Some(level)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One log entry, owned, ready to queue and ship.
///
/// The message and the parsed fields are read through [`Record::message`],
/// [`Record::field`] and [`Record::fields`] (key order, one value per key), so how they
/// are held can change without touching the readers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The instant the entry was logged (UTC). An entry that carries no time of its own
    /// (it did not parse, or its format has no time) takes the time its caller gives for
    /// that: `logship parse` gives the read time, the daemon's tailer the last timestamp of
    /// the same file, so a replay of the entry lands on the same row (docs/schema.md).
    #[serde(serialize_with = "serialize_timestamp")]
    pub timestamp: Timestamp,
    /// How severe the entry is.
    pub level: Level,
    /// Name of the source (the format name for `logship parse`, the `[[source]]` name in the daemon).
    pub source: Arc<str>,
    /// The host the entry was read on.
    pub host: Arc<str>,
    message: String,
    fields: BTreeMap<String, String>,
    /// Why the entry did not parse; the raw entry is then the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// The moment the entry was read. Informational (stored as `read_at`): it differs
    /// between a first read and a replay, so it is never part of a row's key, and it is
    /// left out of the JSON output, which stays the same however often an entry is read.
    #[serde(skip)]
    pub read_at: Timestamp,
}

impl Record {
    /// A parsed record from its parts (`read_at` is `timestamp`, no parse error); a later
    /// value for the same key replaces an earlier one. Parsers build records through
    /// [`Parsed::into_record`]; this is for other producers and tests.
    pub fn new<K, V>(
        timestamp: Timestamp,
        level: Level,
        source: Arc<str>,
        host: Arc<str>,
        message: &str,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Record
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Record {
            timestamp,
            level,
            source,
            host,
            message: message.to_owned(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
            parse_error: None,
            read_at: timestamp,
        }
    }

    /// The entry's message (the raw entry when it did not parse).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Replaces the message.
    pub fn set_message(&mut self, message: &str) {
        message.clone_into(&mut self.message);
    }

    /// The value of the field `key`, if the record has one.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The fields as (key, value) pairs in key order, one per key.
    pub fn fields(&self) -> FieldIter<'_> {
        FieldIter {
            inner: self.fields.iter(),
        }
    }

    /// Sets the field `key` to `value`, replacing any value it had.
    pub fn set_field(&mut self, key: &str, value: &str) {
        self.fields.insert(key.to_owned(), value.to_owned());
    }

    /// Bytes the record holds on the heap (its text and field table), for sizing queues.
    /// Shared parts (`source`, `host`) are not counted: every record of a source shares them.
    pub fn heap_bytes(&self) -> usize {
        // A B-tree node holds up to 11 entries; count each entry's share of a node.
        const ENTRY: usize = 2 * std::mem::size_of::<String>() + 8;
        self.message.capacity()
            + self
                .fields
                .iter()
                .map(|(k, v)| k.capacity() + v.capacity() + ENTRY)
                .sum::<usize>()
            + self.parse_error.as_ref().map_or(0, String::capacity)
    }
}

/// The fields of a [`Record`], in key order: see [`Record::fields`].
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    inner: std::collections::btree_map::Iter<'a, String, String>,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

fn serialize_timestamp<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

/// What a parser extracts from one entry, borrowing from the entry and the parser where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// `None` when the format carries no time; the record then takes the caller's fallback.
    pub timestamp: Option<Timestamp>,
    pub level: Level,
    pub message: Cow<'a, str>,
    pub fields: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Parsed<'a> {
    pub fn new(timestamp: Option<Timestamp>, level: Level, message: Cow<'a, str>) -> Self {
        Parsed {
            timestamp,
            level,
            message,
            fields: Vec::new(),
        }
    }

    /// Adds a field; a later value for the same key replaces an earlier one in the record.
    pub fn push(&mut self, key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.fields.push((key.into(), value.into()));
    }

    /// The value of the last field named `key`, if any.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Owns everything into a [`Record`]. `fallback_time` is the timestamp when the entry
    /// has none, and the record's `read_at` until the caller sets the real read time.
    pub fn into_record(self, ctx: &RecordContext, fallback_time: Timestamp) -> Record {
        Record {
            timestamp: self.timestamp.unwrap_or(fallback_time),
            level: self.level,
            source: Arc::clone(&ctx.source),
            host: Arc::clone(&ctx.host),
            message: self.message.into_owned(),
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            parse_error: None,
            read_at: fallback_time,
        }
    }
}

/// What every record of one source shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordContext {
    pub source: Arc<str>,
    pub host: Arc<str>,
}

impl RecordContext {
    pub fn new(source: impl Into<Arc<str>>, host: impl Into<Arc<str>>) -> Self {
        RecordContext {
            source: source.into(),
            host: host.into(),
        }
    }

    /// The record for an entry that did not parse: the raw entry (lossy UTF-8) is the
    /// message, `fallback_time` its timestamp (see [`Record::timestamp`]).
    pub fn unparsed(
        &self,
        entry: &[u8],
        reason: impl Into<String>,
        fallback_time: Timestamp,
    ) -> Record {
        Record {
            timestamp: fallback_time,
            level: Level::Info,
            source: Arc::clone(&self.source),
            host: Arc::clone(&self.host),
            message: String::from_utf8_lossy(strip_cr(entry)).into_owned(),
            fields: BTreeMap::new(),
            parse_error: Some(reason.into()),
            read_at: fallback_time,
        }
    }
}

/// Removes one trailing `\r` (CRLF files): it is never part of a record.
pub fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Text from bytes, borrowed when valid UTF-8, with U+FFFD replacements otherwise.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

//! The record every part of logship exchanges: one log entry, parsed or not.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

/// Severity of a record, ordered from least to most severe.
///
/// Syslog severities map one-to-one; other formats map onto this scale (see each parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Debugging detail (syslog debug, PostgreSQL DEBUG1-5).
    Debug,
    /// Normal operation.
    Info,
    /// Normal but significant.
    Notice,
    /// Something unexpected that did not fail.
    Warn,
    /// A failure of one operation.
    Error,
    /// A failure of a component (PostgreSQL FATAL, syslog crit).
    Critical,
    /// Action needed at once.
    Alert,
    /// The system is unusable (PostgreSQL PANIC, syslog emerg).
    Emergency,
}

impl Level {
    /// Every level, least severe first.
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
/// [`Record::field`] and [`Record::fields`] (key order, one value per key). They share one
/// text buffer: the message, then each field's key and value, in key order, with a small
/// table of where each field lies. A parsed nginx line thus costs two allocations however
/// many fields it has, and the sink binds the fields straight from the buffer.
#[derive(Clone)]
pub struct Record {
    /// The instant the entry was logged (UTC). An entry that carries no time of its own
    /// (it did not parse, or its format has no time) takes the time its caller gives for
    /// that: `logship parse` gives the read time, the daemon's tailer the last timestamp of
    /// the same file, so a replay of the entry lands on the same row (docs/schema.md).
    pub timestamp: Timestamp,
    /// How severe the entry is.
    pub level: Level,
    /// Name of the source (the format name for `logship parse`, the `[[source]]` name in the daemon).
    pub source: Arc<str>,
    /// The host the entry was read on.
    pub host: Arc<str>,
    /// The message, then the fields' keys and values (see `spans`).
    text: String,
    /// Length of the message at the start of `text`.
    message_len: u32,
    /// Where each field lies in `text`, sorted by key, one per key. Held inline up to
    /// [`INLINE_SPANS`] fields (nginx's `combined` yields 11), so a parsed line needs no
    /// allocation besides its text.
    spans: Spans,
    /// Why the entry did not parse; the raw entry is then the message.
    pub parse_error: Option<String>,
    /// The moment the entry was read. Informational (stored as `read_at`): it differs
    /// between a first read and a replay, so it is never part of a row's key, and it is
    /// left out of the JSON output, which stays the same however often an entry is read.
    pub read_at: Timestamp,
}

/// One field in a record's text: its key at `start..key_end`, its value at `key_end..end`.
/// `u32` offsets keep the table small; [`Text::finish`] guarantees they fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    key_end: u32,
    end: u32,
}

/// Fields kept inline while a record is put together; more spill to the heap.
const INLINE_FIELDS: usize = 16;

/// Fields a record holds without a heap allocation for its field table.
pub const INLINE_SPANS: usize = 12;

type Spans = smallvec::SmallVec<[Span; INLINE_SPANS]>;

/// Why a record's text holds only its message: a text this large cannot be indexed with
/// `u32` offsets (entries are cut far below this by `max_line_bytes`).
const TOO_LARGE: &str = "entry too large: over 4 GiB of text, fields dropped";

/// A record's text and field table, put together from a message and (key, value) pairs:
/// the pairs are ordered by key (the last value of a key wins), and the text is allocated
/// once, at its final size.
struct Text {
    text: String,
    message_len: u32,
    spans: Spans,
    /// Set when the fields did not fit (see [`TOO_LARGE`]).
    error: Option<&'static str>,
}

impl Text {
    fn finish<K: AsRef<str>, V: AsRef<str>>(message: &str, fields: &[(K, V)]) -> Text {
        let key = |i: u32| fields[i as usize].0.as_ref();
        let total = fields.iter().fold(message.len(), |n, (k, v)| {
            n.saturating_add(k.as_ref().len() + v.as_ref().len())
        });
        if u32::try_from(total).is_err() {
            return Text::message_only(message, Some(TOO_LARGE));
        }
        // Fields already in strictly ascending key order (syslog pushes its fields so) are
        // copied as they come; any others through an index sorted by key.
        let mut previous = None;
        let in_order = fields.iter().all(|(k, _)| {
            let prefix = key_prefix(k.as_ref());
            let ascending = previous.is_none_or(|p| p < prefix);
            previous = Some(prefix);
            ascending
        });
        // Indices sorted by key, then by position so the last of equal keys sorts last.
        // The first 8 key bytes as a big-endian number, above the index, make one integer
        // to sort by; only keys sharing those 8 bytes need a second, full comparison.
        // Extended in place: collecting would build the inline array and then move it.
        let mut order = smallvec::SmallVec::<[(u64, u32); INLINE_FIELDS]>::new();
        if !in_order {
            order.extend(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (key_prefix(k.as_ref()), i as u32)),
            );
            order.sort_unstable_by_key(|&(prefix, i)| (u128::from(prefix) << 32) | u128::from(i));
            if !order.is_sorted_by(|a, b| a.0 < b.0) {
                order.sort_by(|a, b| {
                    a.0.cmp(&b.0)
                        .then_with(|| key(a.1).cmp(key(b.1)))
                        .then(a.1.cmp(&b.1))
                });
                // Of equal keys, keep the last.
                order.dedup_by(|later, earlier| {
                    let same = later.0 == earlier.0 && key(later.1) == key(earlier.1);
                    if same {
                        *earlier = *later;
                    }
                    same
                });
            }
        }
        let mut text = String::with_capacity(total);
        text.push_str(message);
        let mut spans;
        if in_order {
            spans = Spans::with_capacity(fields.len());
            for (k, v) in fields {
                spans.push(push_field(&mut text, k.as_ref(), v.as_ref()));
            }
        } else {
            spans = Spans::with_capacity(order.len());
            for &(_, i) in &order {
                let (k, v) = &fields[i as usize];
                spans.push(push_field(&mut text, k.as_ref(), v.as_ref()));
            }
        }
        Text {
            text,
            message_len: message.len() as u32,
            spans,
            error: None,
        }
    }

    /// The message alone, cut to what `u32` offsets reach if it is larger.
    fn message_only(message: &str, error: Option<&'static str>) -> Text {
        let mut end = message.len().min(u32::MAX as usize);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        Text {
            text: message.to_owned(),
            message_len: message.len() as u32,
            spans: Spans::new(),
            error: if end < message.len() {
                Some(TOO_LARGE)
            } else {
                error
            },
        }
    }
}

/// Appends a field's key and value to a record's text; the caller has checked that the
/// whole text stays below `u32::MAX`, so the offsets fit.
fn push_field(text: &mut String, key: &str, value: &str) -> Span {
    let start = text.len() as u32;
    text.push_str(key);
    let key_end = text.len() as u32;
    text.push_str(value);
    Span {
        start,
        key_end,
        end: text.len() as u32,
    }
}

/// A key's first 8 bytes as a big-endian number (zero-padded): ordering these orders the
/// keys, except that equal prefixes need the whole keys compared.
fn key_prefix(key: &str) -> u64 {
    let bytes = key.as_bytes();
    if let Some(head) = bytes.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    // Shorter keys byte by byte: a variable-length copy would call memcpy per key.
    bytes
        .iter()
        .enumerate()
        .fold(0, |n, (i, &b)| n | u64::from(b) << (56 - 8 * i))
}

impl Record {
    /// A parsed record from its parts (`read_at` is `timestamp`, no parse error); a later
    /// value for the same key replaces an earlier one. Parsers build records through
    /// [`Parsed::to_record`]; this is for other producers and tests.
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
        let fields: Vec<(K, V)> = fields.into_iter().collect();
        Record::from_text(
            timestamp,
            level,
            source,
            host,
            Text::finish(message, &fields),
            timestamp,
        )
    }

    fn from_text(
        timestamp: Timestamp,
        level: Level,
        source: Arc<str>,
        host: Arc<str>,
        text: Text,
        read_at: Timestamp,
    ) -> Record {
        Record {
            timestamp,
            level,
            source,
            host,
            text: text.text,
            message_len: text.message_len,
            spans: text.spans,
            parse_error: text.error.map(str::to_owned),
            read_at,
        }
    }

    /// The entry's message (the raw entry when it did not parse).
    pub fn message(&self) -> &str {
        &self.text[..self.message_len as usize]
    }

    /// Replaces the message; the fields stay.
    pub fn set_message(&mut self, message: &str) {
        let fields: Vec<(&str, &str)> = self.fields().collect();
        let text = Text::finish(message, &fields);
        if let Some(e) = text.error {
            self.parse_error = Some(e.to_owned());
        }
        self.text = text.text;
        self.message_len = text.message_len;
        self.spans = text.spans;
    }

    /// The value of the field `key`, if the record has one.
    pub fn field(&self, key: &str) -> Option<&str> {
        // Most lookups on the write path are for keys a record lacks (request ids on an
        // nginx line), on records another thread wrote, so their text is not in this
        // core's cache. While the field table is inline it is part of the record, and
        // comparing key lengths there first reads the text only for a key of the right
        // length; a binary search reads a key of the text at every step.
        if !self.spans.spilled() {
            let span = self
                .spans
                .iter()
                .find(|s| (s.key_end - s.start) as usize == key.len() && self.key(**s) == key)?;
            return Some(self.value(*span));
        }
        let i = self.find(key).ok()?;
        Some(self.value(self.spans[i]))
    }

    /// The bytes of the fields' keys and values together, from the field table alone
    /// (the text is not read).
    pub fn field_bytes(&self) -> usize {
        self.spans.iter().map(|s| (s.end - s.start) as usize).sum()
    }

    /// The fields as (key, value) pairs in key order, one per key.
    pub fn fields(&self) -> FieldIter<'_> {
        FieldIter {
            text: &self.text,
            spans: self.spans.iter(),
        }
    }

    /// Sets the field `key` to `value`, replacing any value it had.
    pub fn set_field(&mut self, key: &str, value: &str) {
        let Some(end) = self
            .text
            .len()
            .checked_add(key.len() + value.len())
            .filter(|&end| u32::try_from(end).is_ok())
        else {
            self.parse_error = Some(TOO_LARGE.to_owned());
            return;
        };
        // The replaced value's bytes stay in the text, unreferenced: replacing is rare
        // (the tailer's `truncated` mark), and the record is short-lived.
        let start = self.text.len() as u32;
        self.text.push_str(key);
        self.text.push_str(value);
        let span = Span {
            start,
            key_end: start + key.len() as u32,
            end: end as u32,
        };
        match self.find(key) {
            Ok(i) => self.spans[i] = span,
            Err(i) => self.spans.insert(i, span),
        }
    }

    /// Bytes the record holds on the heap (its text, a field table too large to be held
    /// inline, and its parse error), for sizing queues. Shared parts (`source`, `host`) are
    /// not counted, as every record of a source shares them, nor is the record itself
    /// (`size_of::<Record>()`).
    pub fn heap_bytes(&self) -> usize {
        let spans = if self.spans.spilled() {
            self.spans.capacity() * std::mem::size_of::<Span>()
        } else {
            0
        };
        self.text.capacity() + spans + self.parse_error.as_ref().map_or(0, String::capacity)
    }

    fn key(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.key_end as usize]
    }

    fn value(&self, span: Span) -> &str {
        &self.text[span.key_end as usize..span.end as usize]
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.spans.binary_search_by(|s| self.key(*s).cmp(key))
    }
}

/// Equal when everything a reader sees is equal (how the text is laid out is not).
impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.timestamp == other.timestamp
            && self.level == other.level
            && self.source == other.source
            && self.host == other.host
            && self.message() == other.message()
            && self.fields().eq(other.fields())
            && self.parse_error == other.parse_error
            && self.read_at == other.read_at
    }
}

impl Eq for Record {}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("timestamp", &self.timestamp)
            .field("level", &self.level)
            .field("source", &self.source)
            .field("host", &self.host)
            .field("message", &self.message())
            .field("fields", &FieldsJson(self))
            .field("parse_error", &self.parse_error)
            .field("read_at", &self.read_at)
            .finish()
    }
}

/// The JSON object `logship parse` prints: timestamp, level, source, host, message,
/// fields (an object in key order) and, for an entry that did not parse, parse_error.
/// `read_at` is left out (see [`Record::read_at`]).
impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let len = 6 + usize::from(self.parse_error.is_some());
        let mut st = s.serialize_struct("Record", len)?;
        st.serialize_field("timestamp", &Display(&self.timestamp))?;
        st.serialize_field("level", &self.level)?;
        st.serialize_field("source", &*self.source)?;
        st.serialize_field("host", &*self.host)?;
        st.serialize_field("message", self.message())?;
        st.serialize_field("fields", &FieldsJson(self))?;
        if let Some(e) = &self.parse_error {
            st.serialize_field("parse_error", e)?;
        }
        st.end()
    }
}

/// A value serialized as its `Display` text.
struct Display<'a, T>(&'a T);

impl<T: fmt::Display> Serialize for Display<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// A record's fields as a map in key order.
struct FieldsJson<'a>(&'a Record);

impl Serialize for FieldsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.fields())
    }
}

impl fmt::Debug for FieldsJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.fields()).finish()
    }
}

/// The fields of a [`Record`], in key order: see [`Record::fields`].
#[derive(Debug, Clone)]
pub struct FieldIter<'a> {
    text: &'a str,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let s = self.spans.next()?;
        Some((
            &self.text[s.start as usize..s.key_end as usize],
            &self.text[s.key_end as usize..s.end as usize],
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for FieldIter<'_> {}

/// How many of a [`Parsed`]'s fields are held without an allocation: an RFC 3164 line with
/// a PRI has five (`facility`, `severity`, `hostname`, `appname`, `procid`).
pub const INLINE_PARSED_FIELDS: usize = 6;

/// A [`Parsed`]'s (key, value) pairs.
pub type ParsedFields<'a> =
    smallvec::SmallVec<[(Cow<'a, str>, Cow<'a, str>); INLINE_PARSED_FIELDS]>;

/// What a parser extracts from one entry, borrowing from the entry and the parser where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// `None` when the format carries no time; the record then takes the caller's fallback.
    pub timestamp: Option<Timestamp>,
    /// How severe the entry is.
    pub level: Level,
    /// The entry's message.
    pub message: Cow<'a, str>,
    /// (key, value) pairs; a later value for a key replaces an earlier one in the record.
    /// The first [`INLINE_PARSED_FIELDS`] live in the value itself, so a syslog line's
    /// fields cost no allocation; more (nginx, RFC 5424 structured data) spill to the heap.
    pub fields: ParsedFields<'a>,
}

impl<'a> Parsed<'a> {
    /// An entry with a message and no fields yet.
    pub fn new(timestamp: Option<Timestamp>, level: Level, message: Cow<'a, str>) -> Self {
        Parsed {
            timestamp,
            level,
            message,
            fields: ParsedFields::new(),
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

    /// Copies the message and fields into a [`Record`]'s one text buffer. `fallback_time`
    /// is the timestamp when the entry has none, and the record's `read_at` until the
    /// caller sets the real read time.
    #[inline]
    pub fn to_record(&self, ctx: &RecordContext, fallback_time: Timestamp) -> Record {
        Record::from_text(
            self.timestamp.unwrap_or(fallback_time),
            self.level,
            Arc::clone(&ctx.source),
            Arc::clone(&ctx.host),
            Text::finish(&self.message, &self.fields),
            fallback_time,
        )
    }
}

/// What every record of one source shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordContext {
    /// The source's name (see [`Record::source`]).
    pub source: Arc<str>,
    /// The host's name (see [`Record::host`]).
    pub host: Arc<str>,
}

impl RecordContext {
    /// The context of records of `source` read on `host`.
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
        let mut record = Record::from_text(
            fallback_time,
            Level::Info,
            Arc::clone(&self.source),
            Arc::clone(&self.host),
            Text::message_only(&String::from_utf8_lossy(strip_cr(entry)), None),
            fallback_time,
        );
        record.parse_error = Some(reason.into());
        record
    }
}

/// Removes one trailing `\r` (CRLF files): it is never part of a record.
pub fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Text from bytes, borrowed when valid UTF-8, with U+FFFD replacements otherwise.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` checks ASCII a word at a time; the lossy path walks chunk by chunk.
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// An entry whose parts become text: the entry is checked for UTF-8 once, and each part
/// (a slice of the entry) is then cut from that `&str` without checking it again. An
/// entry that is not valid UTF-8 has its parts converted one by one, lossily.
#[derive(Debug, Clone, Copy)]
pub struct EntryText<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> EntryText<'a> {
    /// Checks `entry` once.
    pub fn new(entry: &'a [u8]) -> Self {
        EntryText {
            bytes: entry,
            text: std::str::from_utf8(entry).ok(),
        }
    }

    /// `part` as text: borrowed from the checked entry when `part` lies inside it (parts
    /// split at ASCII bytes start and end on character boundaries), else as [`text`] does.
    #[inline]
    pub fn of(&self, part: &'a [u8]) -> Cow<'a, str> {
        if let Some(text) = self.text {
            let start = (part.as_ptr() as usize).wrapping_sub(self.bytes.as_ptr() as usize);
            if let Some(s) = start
                .checked_add(part.len())
                .and_then(|end| text.get(start..end))
            {
                return Cow::Borrowed(s);
            }
        }
        text(part)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn record(message: &str, fields: &[(&str, &str)]) -> Record {
        let t = ts("2024-03-09T22:00:00Z");
        Record::new(
            t,
            Level::Info,
            "src".into(),
            "h".into(),
            message,
            fields.iter().copied(),
        )
    }

    /// The map a `BTreeMap` insert of `fields`, in order, would hold.
    fn model(fields: &[(&str, &str)]) -> BTreeMap<String, String> {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn as_map(r: &Record) -> BTreeMap<String, String> {
        r.fields()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn fields_come_in_key_order_and_the_last_value_of_a_key_wins() {
        let fields = [
            ("remote_addr", "10.0.0.1"),
            ("remote_user", "bob"),
            ("request", "GET / HTTP/1.1"),
            ("request_time", "0.1"),
            ("request", "GET /again HTTP/1.1"),
            ("", "empty key"),
            ("ß", "non-ASCII key"),
            ("remote", "shorter"),
            ("remote_addr", "10.0.0.2"),
        ];
        let r = record("the line", &fields);
        assert_eq!(r.message(), "the line");
        let got: Vec<(&str, &str)> = r.fields().collect();
        let want = model(&fields);
        let want: Vec<(&str, &str)> = want.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(got, want);
        assert_eq!(r.fields().len(), 7);
        assert_eq!(r.field("remote_addr"), Some("10.0.0.2"));
        assert_eq!(r.field("request"), Some("GET /again HTTP/1.1"));
        assert_eq!(r.field(""), Some("empty key"));
        assert_eq!(r.field("remote_"), None);
    }

    #[test]
    fn fields_pushed_in_key_order_read_back_as_the_model_whatever_the_shortcut() {
        // Distinct keys in order take the shortcut; equal keys, keys equal in their first
        // 8 bytes and zero-padded prefixes ("a" and "a\0") must not.
        for fields in [
            &[("appname", "sshd"), ("facility", "auth"), ("hostname", "h")][..],
            &[("", "e"), ("a", "1"), ("ab", "2"), ("b", "3")][..],
            &[("a", "1"), ("a", "2"), ("b", "3")][..],
            &[("request_a", "1"), ("request_b", "2"), ("request_b", "3")][..],
            &[("a", "1"), ("a\0", "2")][..],
            &[("b", "1"), ("a", "2")][..],
        ] {
            let r = record("m", fields);
            assert_eq!(as_map(&r), model(fields), "{fields:?}");
            assert_eq!(r.fields().len(), model(fields).len(), "{fields:?}");
            assert_eq!(r.message(), "m");
        }
    }

    #[test]
    fn more_fields_than_held_inline_spill_and_still_read_back() {
        let keys: Vec<String> = (0..40).rev().map(|i| format!("key{i:02}")).collect();
        let fields: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
        let r = record("m", &fields);
        assert_eq!(as_map(&r), model(&fields));
        assert!(r.heap_bytes() >= r.message().len() + 40 * (5 + 1));
    }

    #[test]
    fn field_finds_every_key_and_no_other_with_few_or_many_fields() {
        // An inline field table is searched by key length first, a spilled one by binary
        // search: both must agree with the map, for keys of equal length and for absent
        // ones.
        for n in [0, 1, 5, INLINE_SPANS, INLINE_SPANS + 1, 40] {
            let keys: Vec<String> = (0..n).map(|i| format!("k{:02}", (i * 7) % 97)).collect();
            let values: Vec<String> = (0..n).map(|i| "v".repeat(i + 1)).collect();
            let fields: Vec<(&str, &str)> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let r = record("m", &fields);
            assert_eq!(r.spans.spilled(), n > INLINE_SPANS, "{n} fields");
            let want = model(&fields);
            for (k, v) in &want {
                assert_eq!(r.field(k), Some(v.as_str()), "{n} fields, key {k}");
            }
            for absent in ["k99", "k9", "k000", "", "request_id"] {
                assert_eq!(r.field(absent), None, "{n} fields, key {absent}");
            }
            let bytes: usize = want.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert_eq!(r.field_bytes(), bytes, "{n} fields");
        }
    }

    #[test]
    fn set_field_and_set_message_keep_the_rest() {
        let mut r = record("first", &[("b", "2"), ("d", "4")]);
        r.set_field("c", "3");
        r.set_field("b", "two");
        r.set_field("a", "1");
        assert_eq!(
            as_map(&r),
            model(&[("a", "1"), ("b", "two"), ("c", "3"), ("d", "4")])
        );
        r.set_message(&"é".repeat(100));
        assert_eq!(r.message(), "é".repeat(100));
        assert_eq!(r.field("b"), Some("two"));
        assert_eq!(r.fields().len(), 4);
        // The replaced value's bytes stay in the text but are not the record's.
        assert_eq!(r.field_bytes(), "a1btwoc3d4".len());
        assert_eq!(r, {
            let mut again = record(&"é".repeat(100), &[("a", "1"), ("b", "two")]);
            again.set_field("c", "3");
            again.set_field("d", "4");
            again
        });
    }

    /// The JSON a record prints is the object the derived `Serialize` of a record with a
    /// `BTreeMap` of fields printed (`logship parse` output stays byte-identical).
    #[test]
    fn json_is_the_map_shaped_object() {
        #[derive(Serialize)]
        struct Old<'a> {
            timestamp: String,
            level: Level,
            source: &'a str,
            host: &'a str,
            message: &'a str,
            fields: BTreeMap<String, String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            parse_error: Option<&'a str>,
        }
        let fields = [("z", "\"quoted\"\n"), ("a", "é"), ("m", "")];
        let mut r = record("line with \\ and \u{1}", &fields);
        for error in [None, Some("bad")] {
            r.parse_error = error.map(str::to_owned);
            let old = Old {
                timestamp: r.timestamp.to_string(),
                level: r.level,
                source: "src",
                host: "h",
                message: r.message(),
                fields: model(&fields),
                parse_error: error,
            };
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                serde_json::to_string(&old).unwrap()
            );
        }
    }

    #[test]
    fn parsed_entries_copy_into_one_buffer() {
        let line = "GET /a b";
        let mut parsed = Parsed::new(None, Level::Warn, Cow::Borrowed(line));
        parsed.push("path", &line[4..6]);
        parsed.push("method", &line[..3]);
        parsed.push("owned", String::from("x"));
        let ctx = RecordContext::new("nginx", "web-1");
        let t = ts("2024-03-09T22:00:00Z");
        let r = parsed.to_record(&ctx, t);
        assert_eq!((r.timestamp, r.read_at, r.level), (t, t, Level::Warn));
        assert_eq!(r.message(), line);
        assert_eq!(
            as_map(&r),
            model(&[("method", "GET"), ("owned", "x"), ("path", "/a")])
        );
        assert_eq!(
            r.heap_bytes(),
            line.len() + "method".len() + 3 + 5 + 1 + 4 + 2
        );
        let bad = ctx.unparsed(b"\xffraw\r", "no", t);
        assert_eq!(bad.message(), "\u{fffd}raw");
        assert_eq!(bad.parse_error.as_deref(), Some("no"));
        assert_eq!(bad.fields().len(), 0);
    }
}

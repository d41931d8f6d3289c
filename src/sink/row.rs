//! Turning records into rows: deterministic ids, partition keys, bound values.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use logship_parsers::{Level, Record};
use scylla::SerializeRow;
use scylla::frame::response::result::{CollectionType, ColumnType};
use scylla::serialize::SerializationError;
use scylla::serialize::value::SerializeValue;
use scylla::serialize::writers::{CellWriter, WrittenCellProof};
use scylla::value::{CqlDate, CqlTimestamp, MaybeUnset};
use uuid::Uuid;

use crate::pipeline::FileRecord;

/// Namespace of logship's UUID v5 row ids (a fixed random UUID: changing it would make
/// re-sent records land as new rows).
const ROW_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6773_6869_5004_a1b2_9c3d_5e7f_0815);

const MS_PER_DAY: i64 = 86_400_000;

/// The id of a file record's row: the same host, file and byte offset always give the same
/// id, so a record re-sent after a crash overwrites its own row instead of adding one.
pub fn file_row_id(host: &str, file: crate::pipeline::FileId, offset: u64) -> Uuid {
    let mut name = Vec::with_capacity(host.len() + 1 + 32);
    name.extend_from_slice(host.as_bytes());
    name.push(0);
    name.extend_from_slice(&file.dev.to_be_bytes());
    name.extend_from_slice(&file.inode.to_be_bytes());
    name.extend_from_slice(&file.fingerprint.to_be_bytes());
    name.extend_from_slice(&offset.to_be_bytes());
    Uuid::new_v5(&ROW_ID_NAMESPACE, &name)
}

/// An event of an application, captured by the tracing Layer (issue 7), on its way to
/// `application_logs`. Its id is fixed at capture, so retries never duplicate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEvent {
    /// The row id, fixed at capture.
    pub id: Uuid,
    /// When the event happened.
    pub timestamp: Timestamp,
    /// The event's level.
    pub level: Level,
    /// The application's name, the partition's first key part.
    pub service: Arc<str>,
    /// The host the application runs on.
    pub host: Arc<str>,
    /// The event's `tracing` target.
    pub target: Cow<'static, str>,
    /// The Rust module the event came from, if known.
    pub module: Option<Cow<'static, str>>,
    /// The source file the event came from, if known.
    pub file: Option<Cow<'static, str>>,
    /// The line in that file, if known.
    pub line: Option<u32>,
    /// The event's message.
    pub message: String,
    /// The event's own fields, rendered to text.
    pub fields: BTreeMap<String, String>,
    /// Fields of every enclosing span, outermost first (inner spans win on a clash).
    pub span_fields: BTreeMap<String, String>,
    /// The request id the event (or a span around it) carries.
    pub request_id: Option<String>,
    /// The trace id the event (or a span around it) carries.
    pub trace_id: Option<String>,
}

impl AppEvent {
    /// A fresh random id for an event being captured.
    pub fn new_id() -> Uuid {
        Uuid::new_v4()
    }
}

/// Storage settings shared by every event of one application (the Layer's builder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoute {
    /// Written with `USING TTL`; `None` keeps the table's default.
    pub ttl: Option<Duration>,
    /// Width of the partition's time bucket.
    pub bucket: Duration,
}

impl Default for AppRoute {
    fn default() -> Self {
        AppRoute {
            ttl: None,
            bucket: Duration::from_secs(3600),
        }
    }
}

/// Where a row lands: its partition key and clustering position, computed from the
/// record's timestamp (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The UTC day, the partition's third key part.
    pub day: CqlDate,
    /// Start of the time bucket, in seconds since the day's UTC midnight.
    pub bucket: i32,
    /// The instant to the millisecond, the first clustering column.
    pub ts: CqlTimestamp,
    /// Nanoseconds below the millisecond, which a CQL `timestamp` cannot hold.
    pub ts_nanos: i32,
}

impl Placement {
    /// Where a row of instant `timestamp` lands in a source with buckets `bucket` wide.
    pub fn of(timestamp: Timestamp, bucket: Duration) -> Placement {
        let nanos = timestamp.as_nanosecond();
        let ms = nanos.div_euclid(1_000_000) as i64;
        let sub_ms = nanos.rem_euclid(1_000_000) as i32;
        let days = ms.div_euclid(MS_PER_DAY);
        let ms_of_day = ms.rem_euclid(MS_PER_DAY);
        let width = bucket_width_secs(bucket);
        let sec_of_day = ms_of_day / 1000;
        Placement {
            // CQL dates count days from 2^31 = 1970-01-01; jiff's range fits easily.
            day: CqlDate((days + (1_i64 << 31)) as u32),
            bucket: (sec_of_day - sec_of_day % width) as i32,
            ts: CqlTimestamp(ms),
            ts_nanos: sub_ms,
        }
    }

    /// The instant back from a stored `ts` and `ts_nanos`.
    pub fn timestamp(ts: CqlTimestamp, ts_nanos: i32) -> Option<Timestamp> {
        Timestamp::from_nanosecond(i128::from(ts.0) * 1_000_000 + i128::from(ts_nanos)).ok()
    }

    /// The bucket start a query for instant `t` must name, for a source with this width.
    pub fn bucket_of(t: Timestamp, bucket: Duration) -> i32 {
        Placement::of(t, bucket).bucket
    }
}

/// A bucket is between one second and one day wide; widths are counted from midnight, so
/// a width that does not divide a day gives a shorter last bucket.
pub fn bucket_width_secs(bucket: Duration) -> i64 {
    (bucket.as_secs() as i64).clamp(1, 86_400)
}

/// Converts a TTL for `USING TTL ?`: unset keeps the table default; at least 1 s, because
/// `TTL 0` would mean "never expire".
pub(crate) fn ttl_value(ttl: Option<Duration>) -> MaybeUnset<i32> {
    match ttl {
        Some(t) => MaybeUnset::Set(t.as_secs().clamp(1, i32::MAX as u64) as i32),
        None => MaybeUnset::Unset,
    }
}

/// A `map<text, text>` bound straight from where the fields are held: a file record's
/// fields are written from the record itself, with no map built for the row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldMap<'a> {
    /// A file record's parsed fields.
    Record(&'a Record),
    /// An application event's fields, or what was kept of oversized fields.
    Map(&'a BTreeMap<String, String>),
}

impl FieldMap<'_> {
    fn is_empty(&self) -> bool {
        match self {
            FieldMap::Record(r) => r.fields().len() == 0,
            FieldMap::Map(m) => m.is_empty(),
        }
    }
}

/// A `fields` column that is not a `map<text, text>` (a schema the agent did not create).
#[derive(Debug, thiserror::Error)]
#[error("a fields column must be map<text, text>, found {0}")]
struct NotATextMap(String);

impl SerializeValue for FieldMap<'_> {
    fn serialize<'b>(
        &self,
        typ: &ColumnType,
        writer: CellWriter<'b>,
    ) -> Result<WrittenCellProof<'b>, SerializationError> {
        match self {
            FieldMap::Record(r) => write_map(r.fields(), typ, writer),
            FieldMap::Map(m) => {
                write_map(m.iter().map(|(k, v)| (k.as_str(), v.as_str())), typ, writer)
            }
        }
    }
}

/// Writes (key, value) pairs as a CQL map: the element count, then each key and value.
fn write_map<'t, 'b>(
    pairs: impl ExactSizeIterator<Item = (&'t str, &'t str)>,
    typ: &ColumnType,
    writer: CellWriter<'b>,
) -> Result<WrittenCellProof<'b>, SerializationError> {
    let ColumnType::Collection {
        typ: CollectionType::Map(key_type, value_type),
        ..
    } = typ
    else {
        return Err(SerializationError::new(NotATextMap(format!("{typ:?}"))));
    };
    let mut builder = writer.into_value_builder();
    let count = i32::try_from(pairs.len()).map_err(SerializationError::new)?;
    builder.append_bytes(&count.to_be_bytes());
    for (key, value) in pairs {
        key.serialize(key_type, builder.make_sub_writer())?;
        value.serialize(value_type, builder.make_sub_writer())?;
    }
    builder.finish().map_err(SerializationError::new)
}

/// Binding an empty map or a missing value as unset writes no cell at all: a null would
/// write a tombstone per row.
fn unset_if_empty(map: FieldMap<'_>) -> MaybeUnset<FieldMap<'_>> {
    if map.is_empty() {
        MaybeUnset::Unset
    } else {
        MaybeUnset::Set(map)
    }
}

fn unset_if_none<T>(v: Option<T>) -> MaybeUnset<T> {
    v.map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// The bound values of one `infrastructure_logs` insert, in the statement's order: the
/// order of `schema::INFRA_COLUMNS`, then the TTL. Names are checked when a row is bound.
#[derive(Debug, Clone, SerializeRow)]
#[scylla(flavor = "enforce_order")]
pub(crate) struct InfraValues<'a> {
    pub source: &'a str,
    pub host: &'a str,
    pub day: CqlDate,
    pub bucket: i32,
    pub ts: CqlTimestamp,
    pub id: Uuid,
    pub ts_nanos: i32,
    pub level: &'a str,
    pub message: &'a str,
    pub fields: MaybeUnset<FieldMap<'a>>,
    pub parse_error: MaybeUnset<&'a str>,
    pub file_path: &'a str,
    pub file_offset: i64,
    pub truncated: MaybeUnset<bool>,
    pub request_id: MaybeUnset<&'a str>,
    pub trace_id: MaybeUnset<&'a str>,
    /// When the entry was read: differs between a first read and a replay, so never a key.
    pub read_at: CqlTimestamp,
    /// `USING TTL ?`, whose bind marker Cassandra names `[ttl]`.
    #[scylla(rename = "[ttl]")]
    pub ttl: MaybeUnset<i32>,
}

/// Which parsed fields of a file source's records fill `request_id` and `trace_id` in
/// `infrastructure_logs`: the first field present in each list wins. The default suits
/// nginx (`$request_id`, or `$http_x_request_id` when the `log_format` has it); a source
/// overrides it with `request_id_field` / `trace_id_field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFields {
    /// Fields tried for `request_id`, in order.
    pub request_id: Vec<String>,
    /// Fields tried for `trace_id`, in order.
    pub trace_id: Vec<String>,
}

impl Default for RequestFields {
    fn default() -> Self {
        RequestFields {
            request_id: vec!["request_id".to_owned(), "http_x_request_id".to_owned()],
            trace_id: vec!["trace_id".to_owned(), "http_x_trace_id".to_owned()],
        }
    }
}

impl RequestFields {
    /// The first present value among `names`, `field` giving a field's value by name.
    fn pick<'f>(names: &[String], field: impl Fn(&str) -> Option<&'f str>) -> Option<&'f str> {
        names
            .iter()
            .filter_map(|n| field(n))
            // nginx logs an absent header as "-".
            .find(|v| !v.is_empty() && *v != "-")
    }
}

/// The bound values of one `application_logs` insert, in the statement's order: the
/// order of `schema::APP_COLUMNS`, then the TTL. Names are checked when a row is bound.
#[derive(Debug, Clone, SerializeRow)]
#[scylla(flavor = "enforce_order")]
pub(crate) struct AppValues<'a> {
    pub service: &'a str,
    pub host: &'a str,
    pub day: CqlDate,
    pub bucket: i32,
    pub ts: CqlTimestamp,
    pub id: Uuid,
    pub ts_nanos: i32,
    pub level: &'a str,
    pub target: &'a str,
    pub module: MaybeUnset<&'a str>,
    pub file: MaybeUnset<&'a str>,
    pub line: MaybeUnset<i32>,
    pub message: &'a str,
    pub fields: MaybeUnset<FieldMap<'a>>,
    pub span_fields: MaybeUnset<FieldMap<'a>>,
    pub request_id: MaybeUnset<&'a str>,
    pub trace_id: MaybeUnset<&'a str>,
    pub truncated: MaybeUnset<bool>,
    /// `USING TTL ?`, whose bind marker Cassandra names `[ttl]`.
    #[scylla(rename = "[ttl]")]
    pub ttl: MaybeUnset<i32>,
}

/// A row ready to bind, owning whatever had to be cut down to fit. Not boxed: a unit's
/// rows are one vector, and a box would cost an allocation per record.
#[derive(Debug, Clone)]
pub(crate) enum Row<'a> {
    Infra(InfraRow<'a>),
    App(AppRow<'a>),
}

/// The partition a row belongs to, for grouping a unit into single-partition batches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PartitionKey<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub day: u32,
    pub bucket: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct InfraRow<'a> {
    pub record: &'a FileRecord,
    pub request_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub id: Uuid,
    pub place: Placement,
    pub cut: Option<Cut>,
}

#[derive(Debug, Clone)]
pub(crate) struct AppRow<'a> {
    pub event: &'a AppEvent,
    pub route: &'a AppRoute,
    pub place: Placement,
    pub cut: Option<Cut>,
}

/// The parts of an oversized record that were shortened to fit `max_record_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub extra: Option<String>,
}

impl<'a> Row<'a> {
    pub(crate) fn file(record: &'a FileRecord, max_bytes: usize, ids: &RequestFields) -> Row<'a> {
        let r = &record.record;
        let request_id = RequestFields::pick(&ids.request_id, |k| r.field(k));
        let trace_id = RequestFields::pick(&ids.trace_id, |k| r.field(k));
        let place = Placement::of(r.timestamp, record.route.bucket);
        let id = file_row_id(&r.host, record.origin.file, record.origin.start);
        let cut = cut_to_fit(
            r.message(),
            r.field_bytes(),
            r.fields(),
            r.parse_error.as_deref(),
            max_bytes,
        );
        Row::Infra(InfraRow {
            record,
            request_id,
            trace_id,
            id,
            place,
            cut,
        })
    }

    pub(crate) fn app(event: &'a AppEvent, route: &'a AppRoute, max_bytes: usize) -> Row<'a> {
        let place = Placement::of(event.timestamp, route.bucket);
        let mut fields_bytes = event
            .span_fields
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        fields_bytes += event.target.len();
        let pairs = || event.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let cut = cut_to_fit(
            &event.message,
            pairs().map(|(k, v)| k.len() + v.len()).sum(),
            pairs(),
            None,
            max_bytes.saturating_sub(fields_bytes),
        );
        Row::App(AppRow {
            event,
            route,
            place,
            cut,
        })
    }

    pub(crate) fn truncated(&self) -> bool {
        match self {
            Row::Infra(r) => r.cut.is_some(),
            Row::App(r) => r.cut.is_some(),
        }
    }

    pub(crate) fn partition(&self) -> PartitionKey<'_> {
        match self {
            Row::Infra(r) => PartitionKey {
                name: &r.record.route.source,
                host: &r.record.record.host,
                day: r.place.day.0,
                bucket: r.place.bucket,
            },
            Row::App(r) => PartitionKey {
                name: &r.event.service,
                host: &r.event.host,
                day: r.place.day.0,
                bucket: r.place.bucket,
            },
        }
    }

    /// Rough size on the wire, for splitting batches.
    pub(crate) fn approx_bytes(&self) -> usize {
        let map = |m: &BTreeMap<String, String>| {
            m.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
        };
        let fields = |r: &Record| {
            r.fields()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>()
        };
        match self {
            Row::Infra(r) => match &r.cut {
                Some(c) => 128 + c.message.len() + map(&c.fields),
                None => {
                    let rec = &r.record.record;
                    128 + rec.message().len()
                        + fields(rec)
                        + rec.parse_error.as_ref().map_or(0, String::len)
                }
            },
            Row::App(r) => {
                let e = r.event;
                let (message, fields) = match &r.cut {
                    Some(c) => (c.message.len(), map(&c.fields)),
                    None => (e.message.len(), map(&e.fields)),
                };
                160 + message + fields + map(&e.span_fields)
            }
        }
    }

    pub(crate) fn infra_values(r: &'a InfraRow<'a>) -> InfraValues<'a> {
        let rec = &r.record.record;
        let (message, fields, parse_error) = match &r.cut {
            Some(c) => (
                c.message.as_str(),
                FieldMap::Map(&c.fields),
                c.extra.as_deref(),
            ),
            None => (
                rec.message(),
                FieldMap::Record(rec),
                rec.parse_error.as_deref(),
            ),
        };
        InfraValues {
            source: &r.record.route.source,
            host: &rec.host,
            day: r.place.day,
            bucket: r.place.bucket,
            ts: r.place.ts,
            id: r.id,
            ts_nanos: r.place.ts_nanos,
            level: rec.level.as_str(),
            message,
            fields: unset_if_empty(fields),
            parse_error: unset_if_none(parse_error),
            file_path: &r.record.origin.path,
            file_offset: r.record.origin.start.min(i64::MAX as u64) as i64,
            truncated: if r.cut.is_some() {
                MaybeUnset::Set(true)
            } else {
                MaybeUnset::Unset
            },
            request_id: unset_if_none(r.request_id),
            trace_id: unset_if_none(r.trace_id),
            read_at: CqlTimestamp(rec.read_at.as_millisecond()),
            ttl: ttl_value(r.record.route.ttl),
        }
    }

    pub(crate) fn app_values(r: &'a AppRow<'a>) -> AppValues<'a> {
        let e = r.event;
        let (message, fields) = match &r.cut {
            Some(c) => (c.message.as_str(), FieldMap::Map(&c.fields)),
            None => (e.message.as_str(), FieldMap::Map(&e.fields)),
        };
        AppValues {
            service: &e.service,
            host: &e.host,
            day: r.place.day,
            bucket: r.place.bucket,
            ts: r.place.ts,
            id: e.id,
            ts_nanos: r.place.ts_nanos,
            level: e.level.as_str(),
            target: &e.target,
            module: unset_if_none(e.module.as_deref()),
            file: unset_if_none(e.file.as_deref()),
            line: unset_if_none(e.line.map(|l| l.min(i32::MAX as u32) as i32)),
            message,
            fields: unset_if_empty(fields),
            span_fields: unset_if_empty(FieldMap::Map(&e.span_fields)),
            request_id: unset_if_none(e.request_id.as_deref()),
            trace_id: unset_if_none(e.trace_id.as_deref()),
            truncated: if r.cut.is_some() {
                MaybeUnset::Set(true)
            } else {
                MaybeUnset::Unset
            },
            ttl: ttl_value(r.route.ttl),
        }
    }
}

/// Shortens a record whose text exceeds `max_bytes`: fields are kept in key order while
/// they fit in a quarter of the budget, the parse error is capped at 1 KiB, and the
/// message gets the rest. `None` when it already fits. `field_bytes` is the fields' keys
/// and values together, given by the caller: a record knows it from its field table
/// without reading its text, which the fields iterator would.
fn cut_to_fit<'f>(
    message: &str,
    field_bytes: usize,
    fields: impl Iterator<Item = (&'f str, &'f str)>,
    extra: Option<&str>,
    max_bytes: usize,
) -> Option<Cut> {
    let total = message.len() + field_bytes + extra.map_or(0, str::len);
    if total <= max_bytes {
        return None;
    }
    let mut kept = BTreeMap::new();
    let mut used = 0;
    for (k, v) in fields {
        let n = k.len() + v.len();
        if used + n > max_bytes / 4 {
            continue;
        }
        used += n;
        kept.insert(k.to_owned(), v.to_owned());
    }
    let extra = extra.map(|e| prefix_at_char(e, 1024).to_owned());
    used += extra.as_ref().map_or(0, String::len);
    let message = prefix_at_char(message, max_bytes.saturating_sub(used)).to_owned();
    Some(Cut {
        message,
        fields: kept,
        extra,
    })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::FileId;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn request_ids_come_from_the_first_present_field_and_skip_nginx_dashes() {
        let f = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let d = RequestFields::default();
        let pick = |fields: &BTreeMap<String, String>| {
            RequestFields::pick(&d.request_id, |k| fields.get(k).map(String::as_str))
                .map(str::to_owned)
        };
        assert_eq!(pick(&f(&[("request_id", "a1")])), Some("a1".into()));
        assert_eq!(pick(&f(&[("http_x_request_id", "b2")])), Some("b2".into()));
        assert_eq!(
            pick(&f(&[("http_x_request_id", "-"), ("request_id", "c3")])),
            Some("c3".into())
        );
        assert_eq!(pick(&f(&[("http_x_request_id", "-")])), None);
        assert_eq!(pick(&f(&[("status", "200")])), None);
        let custom = RequestFields {
            request_id: vec!["rid".into()],
            trace_id: vec![],
        };
        let fields = f(&[("rid", "x"), ("request_id", "y")]);
        let get = |k: &str| fields.get(k).map(String::as_str);
        assert_eq!(RequestFields::pick(&custom.request_id, get), Some("x"));
        assert_eq!(RequestFields::pick(&custom.trace_id, get), None);
    }

    #[test]
    fn file_row_ids_depend_on_host_file_and_offset_only() {
        let f = FileId {
            dev: 1,
            inode: 2,
            fingerprint: 3,
        };
        let a = file_row_id("web1", f, 100);
        assert_eq!(a, file_row_id("web1", f, 100));
        assert_ne!(a, file_row_id("web2", f, 100));
        assert_ne!(a, file_row_id("web1", f, 101));
        assert_ne!(
            a,
            file_row_id(
                "web1",
                FileId {
                    fingerprint: 4,
                    ..f
                },
                100
            )
        );
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn placement_splits_day_bucket_and_sub_millisecond() {
        let p = Placement::of(
            ts("2024-03-10T13:47:05.123456789Z"),
            Duration::from_secs(3600),
        );
        // 2024-03-10 is day 19792 after the epoch.
        assert_eq!(p.day, CqlDate((1 << 31) + 19792));
        assert_eq!(p.bucket, 13 * 3600);
        assert_eq!(p.ts_nanos, 456_789);
        assert_eq!(
            Placement::timestamp(p.ts, p.ts_nanos),
            Some(ts("2024-03-10T13:47:05.123456789Z"))
        );
        let q = Placement::of(ts("2024-03-10T13:47:05Z"), Duration::from_secs(600));
        assert_eq!(q.bucket, 13 * 3600 + 40 * 60);
    }

    #[test]
    fn placement_handles_instants_before_the_epoch() {
        let p = Placement::of(ts("1969-12-31T23:59:59.999500Z"), Duration::from_secs(60));
        assert_eq!(p.day, CqlDate((1 << 31) - 1));
        assert_eq!(p.bucket, 86_340);
        assert_eq!(p.ts, CqlTimestamp(-1));
        assert_eq!(p.ts_nanos, 500_000);
    }

    #[test]
    fn oversized_records_are_cut_on_char_boundaries() {
        let fields: BTreeMap<_, _> = [
            ("a".to_owned(), "x".repeat(10)),
            ("b".to_owned(), "y".repeat(500)),
        ]
        .into_iter()
        .collect();
        let msg = "é".repeat(1000);
        let pairs = || fields.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let bytes = pairs().map(|(k, v)| k.len() + v.len()).sum();
        assert!(cut_to_fit("short", bytes, pairs(), None, 4096).is_none());
        let cut = cut_to_fit(&msg, bytes, pairs(), Some("err"), 1001).unwrap();
        assert_eq!(
            cut.fields.len(),
            1,
            "the 501-byte field does not fit a quarter"
        );
        assert_eq!(cut.extra.as_deref(), Some("err"));
        let total = cut.message.len() + 11 + 3;
        assert!(total <= 1001, "{total}");
        assert!(cut.message.len() >= 986);
        assert!(cut.message.chars().all(|c| c == 'é'));
    }

    /// Column specs as a prepared insert of `columns` reports them, `[ttl]` last.
    fn specs(
        table: &'static str,
        columns: &[(&'static str, &'static str)],
    ) -> Vec<scylla::frame::response::result::ColumnSpec<'static>> {
        use scylla::frame::response::result::{ColumnSpec, NativeType, TableSpec};
        let native = |t| ColumnType::Native(t);
        let cql = |ty: &str| match ty {
            "text" => native(NativeType::Text),
            "date" => native(NativeType::Date),
            "int" => native(NativeType::Int),
            "bigint" => native(NativeType::BigInt),
            "timestamp" => native(NativeType::Timestamp),
            "uuid" => native(NativeType::Uuid),
            "boolean" => native(NativeType::Boolean),
            "frozen<map<text, text>>" => ColumnType::Collection {
                frozen: true,
                typ: CollectionType::Map(
                    Box::new(native(NativeType::Text)),
                    Box::new(native(NativeType::Text)),
                ),
            },
            other => panic!("no test type for {other}"),
        };
        let table_spec = TableSpec::borrowed("ks", table);
        columns
            .iter()
            .map(|(name, ty)| ColumnSpec::borrowed(name, cql(ty), table_spec.clone()))
            .chain([ColumnSpec::borrowed(
                "[ttl]",
                native(NativeType::Int),
                table_spec.clone(),
            )])
            .collect()
    }

    fn bind(
        values: &impl scylla::serialize::row::SerializeRow,
        specs: &[scylla::frame::response::result::ColumnSpec<'_>],
    ) -> Result<Vec<u8>, SerializationError> {
        use scylla::serialize::row::RowSerializationContext;
        use scylla::serialize::writers::RowWriter;
        let mut buf = Vec::new();
        let ctx = RowSerializationContext::from_specs(specs);
        values.serialize(&ctx, &mut RowWriter::new(&mut buf))?;
        Ok(buf)
    }

    fn file_record(fields: &[(&str, &str)]) -> FileRecord {
        use crate::pipeline::{Origin, Route, Table};
        let t = ts("2024-03-10T13:47:05.123456789Z");
        FileRecord {
            record: Record::new(
                t,
                Level::Warn,
                "web".into(),
                "h".into(),
                "GET /",
                fields.iter().copied(),
            ),
            origin: Origin {
                file: FileId {
                    dev: 1,
                    inode: 2,
                    fingerprint: 3,
                },
                path: "/var/log/a.log".into(),
                start: 0,
                end: 6,
            },
            route: Arc::new(Route {
                source: "web".into(),
                table: Table::InfrastructureLogs,
                ttl: Some(Duration::from_secs(60)),
                bucket: Duration::from_secs(3600),
            }),
        }
    }

    #[test]
    fn bound_values_follow_the_schema_column_lists() {
        use crate::sink::schema::{APP_COLUMNS, INFRA_COLUMNS};
        let infra = specs("infrastructure_logs", INFRA_COLUMNS);
        let record = file_record(&[("status", "404"), ("request_id", "r1")]);
        let row = Row::file(&record, 1 << 20, &RequestFields::default());
        let Row::Infra(r) = &row else {
            panic!("a file record makes an infrastructure row")
        };
        bind(&Row::infra_values(r), &infra).expect("binds in the schema's order");
        // Names are checked: the same values against a reordered list do not bind.
        let mut swapped = infra.clone();
        swapped.swap(8, 10);
        assert!(bind(&Row::infra_values(r), &swapped).is_err());

        let event = AppEvent {
            id: AppEvent::new_id(),
            timestamp: ts("2024-03-10T13:47:05Z"),
            level: Level::Info,
            service: "api".into(),
            host: "h".into(),
            target: "api::handler".into(),
            module: None,
            file: None,
            line: Some(7),
            message: "hi".into(),
            fields: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            span_fields: BTreeMap::new(),
            request_id: None,
            trace_id: None,
        };
        let route = AppRoute::default();
        let row = Row::app(&event, &route, 1 << 20);
        let Row::App(r) = &row else {
            panic!("an event makes an application row")
        };
        bind(&Row::app_values(r), &specs("application_logs", APP_COLUMNS))
            .expect("binds in the schema's order");
    }

    #[test]
    fn fields_bind_as_the_map_the_record_holds() {
        let record = file_record(&[("b", "2"), ("a", "1"), ("b", "3")]);
        let text = ColumnType::Native(scylla::frame::response::result::NativeType::Text);
        let map = ColumnType::Collection {
            frozen: true,
            typ: CollectionType::Map(Box::new(text.clone()), Box::new(text.clone())),
        };
        let mut from_record = Vec::new();
        FieldMap::Record(&record.record)
            .serialize(&map, CellWriter::new(&mut from_record))
            .unwrap();
        let expected = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "3".to_owned()),
        ]);
        let mut from_map = Vec::new();
        expected
            .serialize(&map, CellWriter::new(&mut from_map))
            .unwrap();
        assert_eq!(from_record, from_map);
        assert!(
            FieldMap::Record(&record.record)
                .serialize(&text, CellWriter::new(&mut Vec::new()))
                .is_err()
        );
    }

    #[test]
    fn ttl_never_becomes_zero() {
        assert!(matches!(ttl_value(None), MaybeUnset::Unset));
        assert!(matches!(
            ttl_value(Some(Duration::from_millis(10))),
            MaybeUnset::Set(1)
        ));
        assert!(matches!(
            ttl_value(Some(Duration::from_secs(86_400))),
            MaybeUnset::Set(86_400)
        ));
    }
}

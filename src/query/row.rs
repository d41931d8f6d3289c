//! A row read back from either log table, and the order rows are merged in.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::Timestamp;
use scylla::DeserializeRow;
use scylla::value::CqlTimestamp;
use serde::Serialize;
use uuid::Uuid;

/// One of the two log tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogTable {
    /// `infrastructure_logs`: records from the agent's file sources.
    Infrastructure,
    /// `application_logs`: events shipped by the tracing Layer.
    Application,
}

impl LogTable {
    /// The table's name in Cassandra (and in the catalog's `log_table` column).
    pub const fn name(self) -> &'static str {
        match self {
            LogTable::Infrastructure => "infrastructure_logs",
            LogTable::Application => "application_logs",
        }
    }

    /// Its partition key's first column: `source` or `service`.
    pub const fn name_column(self) -> &'static str {
        match self {
            LogTable::Infrastructure => "source",
            LogTable::Application => "service",
        }
    }

    /// The table of a Cassandra table name; `None` for any other name.
    pub fn from_name(name: &str) -> Option<LogTable> {
        match name {
            "infrastructure_logs" => Some(LogTable::Infrastructure),
            "application_logs" => Some(LogTable::Application),
            _ => None,
        }
    }

    /// The columns a query selects, in [`InfraColumns`]/[`AppColumns`] order.
    pub(crate) const fn select_list(self) -> &'static str {
        match self {
            LogTable::Infrastructure => {
                "source, host, ts, id, ts_nanos, level, message, fields, parse_error, \
                 file_path, file_offset, truncated, request_id, trace_id"
            }
            LogTable::Application => {
                "service, host, ts, id, ts_nanos, level, message, fields, target, module, \
                 file, line, span_fields, request_id, trace_id, truncated"
            }
        }
    }
}

/// A log row from either table. `name` is the source (infrastructure) or the service
/// (application). Serialized (`-o json`, the HTTP API) with every column that is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRow {
    /// The table the row was read from.
    pub table: LogTable,
    /// The source (infrastructure_logs) or service (application_logs).
    #[serde(rename = "source")]
    pub name: String,
    /// The host that wrote the row.
    pub host: String,
    /// The instant, to the nanosecond when the source gave it.
    #[serde(serialize_with = "serialize_ts")]
    pub timestamp: Timestamp,
    /// The stored `ts` (ms since the epoch): with `id`, the row's position.
    #[serde(skip)]
    pub ts_ms: i64,
    /// The row id (deterministic for file records, drawn at capture for events).
    #[serde(serialize_with = "serialize_id")]
    pub id: Uuid,
    /// The level as stored (`INFO`, `ERROR`, ...).
    pub level: String,
    /// The message (the whole line when it did not parse).
    pub message: String,
    /// The parsed fields (infrastructure_logs) or event fields (application_logs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The request id column; `None` when the entry carried none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The trace id column; `None` when the entry carried none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The entry was cut at the line or message size limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// infrastructure_logs: why the line did not parse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// infrastructure_logs: the file and byte offset the entry came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// infrastructure_logs: the entry's byte offset in `file_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_offset: Option<i64>,
    /// application_logs: the event's target; `None` in infrastructure_logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// application_logs: the module the event came from, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// application_logs: the event's source file, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// application_logs: the line in `file`, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<i32>,
    /// application_logs: fields of the enclosing spans.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub span_fields: BTreeMap<String, String>,
}

fn serialize_id<S: serde::Serializer>(id: &Uuid, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

fn serialize_ts<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

/// A row's position in the merged stream: `(ts, id)` as Cassandra orders the clustering
/// key within a partition, so merging partitions by it keeps each partition's own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The stored `ts`, in ms since the epoch.
    pub ts_ms: i64,
    /// The row id, which orders rows of the same millisecond.
    pub id: Uuid,
}

/// Cassandra's `UUIDType` order for non-time-based UUIDs.
pub fn uuid_order(a: &Uuid, b: &Uuid) -> Ordering {
    a.get_version_num()
        .cmp(&b.get_version_num())
        .then_with(|| a.as_u128().cmp(&b.as_u128()))
}

impl LogRow {
    /// The row's place in the merged order.
    pub fn position(&self) -> Position {
        Position {
            ts_ms: self.ts_ms,
            id: self.id,
        }
    }
}

/// The merge order for a direction, as Cassandra returns one partition: the tables store
/// `(ts DESC, id ASC)`, so descending is time newest first then ids ascending, and
/// ascending (`ORDER BY ts ASC`, the whole clustering order reversed) is time oldest first
/// then ids descending. Merging partitions by this key keeps each partition's own order.
pub(crate) fn cmp_in(order: super::filter::Order, a: &Position, b: &Position) -> Ordering {
    match order {
        super::filter::Order::Ascending => {
            a.ts_ms.cmp(&b.ts_ms).then_with(|| uuid_order(&b.id, &a.id))
        }
        super::filter::Order::Descending => {
            b.ts_ms.cmp(&a.ts_ms).then_with(|| uuid_order(&a.id, &b.id))
        }
    }
}

type Map = Option<BTreeMap<String, String>>;

#[derive(DeserializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub(crate) struct InfraColumns {
    source: String,
    host: String,
    ts: CqlTimestamp,
    id: Uuid,
    ts_nanos: Option<i32>,
    level: Option<String>,
    message: Option<String>,
    fields: Map,
    parse_error: Option<String>,
    file_path: Option<String>,
    file_offset: Option<i64>,
    truncated: Option<bool>,
    request_id: Option<String>,
    trace_id: Option<String>,
}

#[derive(DeserializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub(crate) struct AppColumns {
    service: String,
    host: String,
    ts: CqlTimestamp,
    id: Uuid,
    ts_nanos: Option<i32>,
    level: Option<String>,
    message: Option<String>,
    fields: Map,
    target: Option<String>,
    module: Option<String>,
    file: Option<String>,
    line: Option<i32>,
    span_fields: Map,
    request_id: Option<String>,
    trace_id: Option<String>,
    truncated: Option<bool>,
}

fn instant(ts: CqlTimestamp, nanos: Option<i32>) -> Timestamp {
    crate::sink::Placement::timestamp(ts, nanos.unwrap_or(0))
        .or_else(|| crate::sink::Placement::timestamp(ts, 0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

impl From<InfraColumns> for LogRow {
    fn from(c: InfraColumns) -> LogRow {
        LogRow {
            table: LogTable::Infrastructure,
            name: c.source,
            host: c.host,
            timestamp: instant(c.ts, c.ts_nanos),
            ts_ms: c.ts.0,
            id: c.id,
            level: c.level.unwrap_or_default(),
            message: c.message.unwrap_or_default(),
            fields: c.fields.unwrap_or_default(),
            request_id: c.request_id,
            trace_id: c.trace_id,
            truncated: c.truncated.unwrap_or(false),
            parse_error: c.parse_error,
            file_path: c.file_path,
            file_offset: c.file_offset,
            target: None,
            module: None,
            file: None,
            line: None,
            span_fields: BTreeMap::new(),
        }
    }
}

impl From<AppColumns> for LogRow {
    fn from(c: AppColumns) -> LogRow {
        LogRow {
            table: LogTable::Application,
            name: c.service,
            host: c.host,
            timestamp: instant(c.ts, c.ts_nanos),
            ts_ms: c.ts.0,
            id: c.id,
            level: c.level.unwrap_or_default(),
            message: c.message.unwrap_or_default(),
            fields: c.fields.unwrap_or_default(),
            request_id: c.request_id,
            trace_id: c.trace_id,
            truncated: c.truncated.unwrap_or(false),
            parse_error: None,
            file_path: None,
            file_offset: None,
            target: c.target,
            module: c.module,
            file: c.file,
            line: c.line,
            span_fields: c.span_fields.unwrap_or_default(),
        }
    }
}

//! Made-up records to write, and the rows read back from Cassandra to compare them with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt as _;
use jiff::Timestamp;
use logship::parsers::{Level, Record};
use logship::pipeline::{FileId, FileRecord, Origin, Route, Table};
use logship::sink::{AppEvent, Placement, file_row_id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scylla::DeserializeRow;
use scylla::client::session::Session;
use scylla::value::{CqlDate, CqlTimestamp};
use uuid::Uuid;

pub(crate) fn route(source: &str, ttl: Option<Duration>, bucket: Duration) -> Arc<Route> {
    Arc::new(Route {
        source: source.into(),
        table: Table::InfrastructureLogs,
        ttl,
        bucket,
    })
}

/// `n` records of one file, one per `step` from `start`, with varied levels, fields,
/// unicode and parse errors; byte offsets as a tailer would give them.
pub(crate) fn file_records(
    route: &Arc<Route>,
    host: &str,
    file: FileId,
    start: Timestamp,
    step: Duration,
    n: usize,
    seed: u64,
) -> Vec<FileRecord> {
    let mut rng = StdRng::seed_from_u64(seed);
    let host: Arc<str> = host.into();
    let path: Arc<str> = format!("/var/log/{}/{}.log", route.source, file.inode).into();
    let mut offset = 0_u64;
    (0..n)
        .map(|i| {
            let level = Level::ALL[rng.random_range(0..Level::ALL.len())];
            let nanos = rng.random_range(0..1_000_000_i64);
            let ts = start
                + jiff::SignedDuration::try_from(step * i as u32).unwrap_or_default()
                + jiff::SignedDuration::from_nanos(nanos);
            let mut fields = BTreeMap::new();
            for k in 0..rng.random_range(0..5) {
                fields.insert(format!("k{k}"), format!("v{}-ü{}", rng.random::<u32>(), i));
            }
            let message = format!(
                "GET /item/{i}?q={} HTTP/1.1 \"ßøµé ✓\" {}",
                rng.random::<u64>(),
                "x".repeat(rng.random_range(0..200))
            );
            let parse_error = (i % 97 == 0).then(|| format!("unexpected byte at {}", i % 13));
            let len = message.len() as u64 + 1;
            let origin = Origin {
                file,
                path: Arc::clone(&path),
                start: offset,
                end: offset + len,
            };
            offset += len;
            FileRecord {
                record: {
                    let source = Arc::clone(&route.source);
                    let mut r =
                        Record::new(ts, level, source, Arc::clone(&host), &message, &fields);
                    r.parse_error = parse_error;
                    r
                },
                origin,
                route: Arc::clone(route),
            }
        })
        .collect()
}

/// `n` application events of `service`, some inside a request span.
pub(crate) fn app_events(
    service: &str,
    host: &str,
    start: Timestamp,
    n: usize,
    seed: u64,
) -> Vec<AppEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let request = i / 10;
            let mut span_fields = BTreeMap::new();
            span_fields.insert("request_id".to_owned(), format!("req-{seed}-{request}"));
            span_fields.insert("user".to_owned(), format!("u{}", rng.random_range(0..100)));
            AppEvent {
                id: AppEvent::new_id(),
                timestamp: start + jiff::SignedDuration::from_micros(i as i64 * 1500),
                level: Level::ALL[i % Level::ALL.len()],
                service: service.into(),
                host: host.into(),
                target: "shop::checkout".into(),
                module: Some("shop::checkout".into()),
                file: Some("src/checkout.rs".into()),
                line: Some(40 + (i % 7) as u32),
                message: format!("charged card for order {i} ✓"),
                fields: BTreeMap::from([(
                    "amount".to_owned(),
                    format!("{}", rng.random_range(1..999)),
                )]),
                span_fields,
                request_id: Some(format!("req-{seed}-{request}")),
                trace_id: (i % 2 == 0).then(|| format!("trace-{seed}-{}", i / 20)),
            }
        })
        .collect()
}

/// One `infrastructure_logs` row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InfraRow {
    pub source: String,
    pub host: String,
    pub day: u32,
    pub bucket: i32,
    pub timestamp: Timestamp,
    pub id: Uuid,
    pub level: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub parse_error: Option<String>,
    pub file_path: String,
    pub file_offset: i64,
    pub truncated: bool,
}

/// The row a file record must become.
pub(crate) fn expected_infra(r: &FileRecord) -> InfraRow {
    let p = Placement::of(r.record.timestamp, r.route.bucket);
    InfraRow {
        source: r.route.source.to_string(),
        host: r.record.host.to_string(),
        day: p.day.0,
        bucket: p.bucket,
        timestamp: r.record.timestamp,
        id: file_row_id(&r.record.host, r.origin.file, r.origin.start),
        level: r.record.level.as_str().to_owned(),
        message: r.record.message().to_owned(),
        fields: r
            .record
            .fields()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        parse_error: r.record.parse_error.clone(),
        file_path: r.origin.path.to_string(),
        file_offset: r.origin.start as i64,
        truncated: false,
    }
}

type InfraTuple = (
    String,
    String,
    CqlDate,
    i32,
    CqlTimestamp,
    Uuid,
    i32,
    String,
    String,
    Option<BTreeMap<String, String>>,
    Option<String>,
    String,
    i64,
    Option<bool>,
);

pub(crate) const INFRA_COLUMNS: &str = "source, host, day, bucket, ts, id, ts_nanos, level, message, \
     fields, parse_error, file_path, file_offset, truncated";

fn infra_from(t: InfraTuple) -> InfraRow {
    let (
        source,
        host,
        day,
        bucket,
        ts,
        id,
        ts_nanos,
        level,
        message,
        fields,
        parse_error,
        file_path,
        file_offset,
        truncated,
    ) = t;
    InfraRow {
        source,
        host,
        day: day.0,
        bucket,
        timestamp: Placement::timestamp(ts, ts_nanos).expect("stored timestamp in range"),
        id,
        level,
        message,
        fields: fields.unwrap_or_default(),
        parse_error,
        file_path,
        file_offset,
        truncated: truncated.unwrap_or(false),
    }
}

/// Runs a query returning `INFRA_COLUMNS` and collects every page.
pub(crate) async fn query_infra(
    session: &Session,
    cql: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Vec<InfraRow> {
    let mut stmt = scylla::statement::Statement::new(cql);
    stmt.set_page_size(5000);
    stmt.set_request_timeout(Some(Duration::from_secs(60)));
    session
        .query_iter(stmt, values)
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .rows_stream::<InfraTuple>()
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .map_ok(infra_from)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
}

/// Every row of `keyspace.infrastructure_logs`.
pub(crate) async fn read_all_infra(session: &Session, keyspace: &str) -> Vec<InfraRow> {
    query_infra(
        session,
        &format!("SELECT {INFRA_COLUMNS} FROM {keyspace}.infrastructure_logs"),
        (),
    )
    .await
}

/// One `application_logs` row as read back.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub(crate) struct AppRow {
    pub service: String,
    pub host: String,
    pub ts: CqlTimestamp,
    pub ts_nanos: i32,
    pub id: Uuid,
    pub level: String,
    pub target: String,
    pub module: Option<String>,
    pub file: Option<String>,
    pub line: Option<i32>,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
    pub span_fields: Option<BTreeMap<String, String>>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub truncated: Option<bool>,
}

pub(crate) const APP_COLUMNS: &str = "service, host, ts, ts_nanos, id, level, target, module, file, \
     line, message, fields, span_fields, request_id, trace_id, truncated";

/// The row an event must become.
pub(crate) fn expected_app(e: &AppEvent) -> AppRow {
    let p = Placement::of(e.timestamp, Duration::from_secs(3600));
    let map = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    AppRow {
        service: e.service.to_string(),
        host: e.host.to_string(),
        ts: p.ts,
        ts_nanos: p.ts_nanos,
        id: e.id,
        level: e.level.as_str().to_owned(),
        target: e.target.to_string(),
        module: e.module.as_ref().map(|s| s.to_string()),
        file: e.file.as_ref().map(|s| s.to_string()),
        line: e.line.map(|l| l as i32),
        message: e.message.clone(),
        fields: map(&e.fields),
        span_fields: map(&e.span_fields),
        request_id: e.request_id.clone(),
        trace_id: e.trace_id.clone(),
        truncated: None,
    }
}

pub(crate) async fn query_app(
    session: &Session,
    cql: &str,
    values: impl scylla::serialize::row::SerializeRow,
) -> Vec<AppRow> {
    let mut stmt = scylla::statement::Statement::new(cql);
    stmt.set_page_size(5000);
    stmt.set_request_timeout(Some(Duration::from_secs(60)));
    session
        .query_iter(stmt, values)
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .rows_stream::<AppRow>()
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
}

//! A made-up fleet for the read path (serve tests and `benches/query.rs`): nginx-like
//! records of several sources on several hosts, evenly spread over a time range, written
//! through the real sink in flush units of 1000, as the agent writes them.
//!
//! Included with `#[path = "support/fleet.rs"] mod fleet;` beside `mod support;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use logship::parsers::{Level, Record};
use logship::pipeline::{FileId, FileRecord, Origin, Route, Table};
use logship::sink::CassandraSink;

/// The level of the `i`th record of a stream: mostly INFO, every 20th WARN, every 50th
/// ERROR, every 500th CRITICAL, every 7th DEBUG (a spread a test can compute back).
pub(crate) fn level_of(i: u64) -> Level {
    if i % 500 == 499 {
        Level::Critical
    } else if i % 50 == 49 {
        Level::Error
    } else if i % 20 == 19 {
        Level::Warn
    } else if i % 7 == 6 {
        Level::Debug
    } else {
        Level::Info
    }
}

/// HTTP status of the `i`th record: 500 for errors and worse, 404 for warnings, else 200.
pub(crate) fn status_of(i: u64) -> u16 {
    match level_of(i) {
        Level::Error | Level::Critical => 500,
        Level::Warn => 404,
        _ => 200,
    }
}

/// One stream: a source on a host, its bucket width.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub route: Arc<Route>,
    pub host: Arc<str>,
    /// Distinguishes the stream's file (and so its row ids) from every other stream's.
    pub file: FileId,
}

impl Stream {
    pub(crate) fn new(source: &str, host: &str, bucket: Duration, index: u64) -> Stream {
        Stream {
            route: Arc::new(Route {
                source: source.into(),
                table: Table::InfrastructureLogs,
                ttl: None,
                bucket,
            }),
            host: host.into(),
            file: FileId {
                dev: 1,
                inode: 1000 + index,
                fingerprint: 0x5eed_0000 + index,
            },
        }
    }

    /// Record `i` of `n` spread evenly over `[start, end)`.
    pub(crate) fn record(&self, i: u64, n: u64, start: Timestamp, end: Timestamp) -> FileRecord {
        let span = end.duration_since(start).as_nanos();
        let offset = (span * i128::from(i)) / i128::from(n.max(1));
        let ts = start + SignedDuration::from_nanos(offset as i64);
        let status = status_of(i);
        let message = format!(
            "10.0.{}.{} - - \"GET /api/item/{i} HTTP/1.1\" {status} {} \"-\" \"bench/1.0\"",
            i % 250,
            (i / 250) % 250,
            200 + i % 5000
        );
        let mut fields = BTreeMap::new();
        fields.insert("status".to_owned(), status.to_string());
        fields.insert("method".to_owned(), "GET".to_owned());
        fields.insert("path".to_owned(), format!("/api/item/{i}"));
        let len = message.len() as u64 + 1;
        FileRecord {
            record: Record::new(
                ts,
                level_of(i),
                Arc::clone(&self.route.source),
                Arc::clone(&self.host),
                &message,
                &fields,
            ),
            origin: Origin {
                file: self.file,
                path: format!("/var/log/{}/access.log", self.route.source).into(),
                // Offsets only need to be unique per record: they make the row id.
                start: i * 512,
                end: i * 512 + len,
            },
            route: Arc::clone(&self.route),
        }
    }
}

/// Writes records `from..to` of `n` of `stream` through the sink, a unit of 1000 at a time.
pub(crate) async fn write_stream(
    sink: &CassandraSink,
    stream: &Stream,
    range: std::ops::Range<u64>,
    n: u64,
    start: Timestamp,
    end: Timestamp,
) {
    let mut i = range.start;
    while i < range.end {
        let upto = (i + 1000).min(range.end);
        let unit: Vec<FileRecord> = (i..upto).map(|k| stream.record(k, n, start, end)).collect();
        sink.write_file_unit(&unit)
            .await
            .unwrap_or_else(|e| panic!("write unit of {}: {e:#}", stream.route.source));
        i = upto;
    }
}

//! The read core against the real Cassandra: rows written through the agent's sink over
//! several hosts, sources, a service, buckets of two widths and a UTC day boundary; random
//! filter combinations must return exactly what an in-memory model returns, in order.
//! `QUERY_MODEL_ROWS` sets the row count (default 300 000).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use logship::parsers::{Level, Record};
use logship::pipeline::{FileId, FileRecord, Origin, Route, Table};
use logship::query::{Filter, LogRow, LogTable, Order, ReadOptions, Reader, Tables, parse_regex};
use logship::sink::{AppEvent, AppRoute, CassandraSink, SinkOptions, file_row_id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::cassandra::{apply_schema, default_node, unique_keyspace};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct ModelRow {
    table: LogTable,
    name: String,
    host: String,
    ts_ms: i64,
    id: Uuid,
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
    request_id: Option<String>,
}

const SOURCES: [(&str, u64); 2] = [("nginx", 600), ("syslog", 3600)];
const HOSTS: [&str; 3] = ["web1", "web2", "db1"];
const SERVICE: &str = "shop";

fn model_matches(f: &Filter, r: &ModelRow) -> bool {
    f.tables.list().contains(&r.table)
        && (f.names.is_empty() || f.names.contains(&r.name))
        && (f.hosts.is_empty() || f.hosts.contains(&r.host))
        && f.min_level.is_none_or(|m| r.level >= m)
        && f.from.is_none_or(|t| r.ts_ms >= t.as_millisecond())
        && f.until.is_none_or(|t| r.ts_ms < t.as_millisecond())
        && f.request_id
            .as_ref()
            .is_none_or(|id| r.request_id.as_ref() == Some(id))
        && f.fields
            .iter()
            .all(|(k, v)| r.fields.get(k).is_some_and(|x| x == v))
        && f.message.as_ref().is_none_or(|re| re.is_match(&r.message))
}

/// Cassandra's order of the clustering key (ts DESC, id ASC), read either way.
fn model_order(order: Order, a: &ModelRow, b: &ModelRow) -> std::cmp::Ordering {
    let ids = |x: &Uuid, y: &Uuid| {
        x.get_version_num()
            .cmp(&y.get_version_num())
            .then(x.as_u128().cmp(&y.as_u128()))
    };
    match order {
        Order::Descending => b.ts_ms.cmp(&a.ts_ms).then(ids(&a.id, &b.id)),
        Order::Ascending => a.ts_ms.cmp(&b.ts_ms).then(ids(&b.id, &a.id)),
    }
}

fn ids(rows: &[LogRow]) -> Vec<Uuid> {
    rows.iter().map(|r| r.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_filters_return_exactly_the_model_rows_in_order() {
    let Some(node) = default_node() else { return };
    let ks = unique_keyspace("query_model");
    let config = node.config(&ks);
    let session = apply_schema(&config).await;
    let sink = CassandraSink::with_session(session, &config, SinkOptions::default())
        .await
        .unwrap();
    let n_rows: usize = std::env::var("QUERY_MODEL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);

    // Four hours around a UTC midnight two days ago.
    let midnight = Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_sub(jiff::Span::new().days(2))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let start = midnight - SignedDuration::from_hours(2);
    let span_ms: i64 = 4 * 3_600_000;

    let mut rng = StdRng::seed_from_u64(12);
    let mut model = Vec::with_capacity(n_rows);
    let mut files: BTreeMap<(usize, usize), Vec<FileRecord>> = BTreeMap::new();
    let mut events: Vec<AppEvent> = Vec::new();
    let routes: Vec<Arc<Route>> = SOURCES
        .iter()
        .map(|(s, w)| {
            Arc::new(Route {
                source: (*s).into(),
                table: Table::InfrastructureLogs,
                ttl: None,
                bucket: Duration::from_secs(*w),
            })
        })
        .collect();
    let mut offsets = [[0_u64; 3]; 2];
    for i in 0..n_rows {
        // Whole seconds plus a few ms: many rows share a millisecond across partitions.
        let ts_ms = start.as_millisecond()
            + rng.random_range(0..span_ms / 1000) * 1000
            + rng.random_range(0..3);
        let nanos = rng.random_range(0..1_000_000_i64);
        let ts = Timestamp::from_millisecond(ts_ms).unwrap() + SignedDuration::from_nanos(nanos);
        let level = Level::ALL[rng.random_range(0..Level::ALL.len())];
        let host = rng.random_range(0..HOSTS.len());
        let req = format!("req-{}", rng.random_range(0..3000));
        let status = ["200", "404", "500"][rng.random_range(0..3)];
        let message = format!(
            "GET /item/{} status {status} n{i}",
            rng.random_range(0..1000)
        );
        let mut fields = BTreeMap::from([("status".to_owned(), status.to_owned())]);
        if rng.random_range(0..5) == 0 {
            // A third of the traffic is the application's.
            let id = Uuid::new_v4();
            events.push(AppEvent {
                id,
                timestamp: ts,
                level,
                service: SERVICE.into(),
                host: HOSTS[host].into(),
                target: "shop::http".into(),
                module: None,
                file: None,
                line: None,
                message: message.clone(),
                fields: fields.clone(),
                span_fields: BTreeMap::new(),
                request_id: Some(req.clone()),
                trace_id: None,
            });
            model.push(ModelRow {
                table: LogTable::Application,
                name: SERVICE.into(),
                host: HOSTS[host].into(),
                ts_ms,
                id,
                level,
                message,
                fields,
                request_id: Some(req),
            });
            continue;
        }
        let source = rng.random_range(0..SOURCES.len());
        let request_id = (source == 0).then(|| {
            fields.insert("request_id".to_owned(), req.clone());
            req
        });
        let file = FileId {
            dev: 1,
            inode: (source * 10 + host) as u64 + 1,
            fingerprint: 7,
        };
        let len = message.len() as u64 + 1;
        let off = offsets[source][host];
        offsets[source][host] += len;
        let id = file_row_id(HOSTS[host], file, off);
        let record = FileRecord {
            record: Record::new(
                ts,
                level,
                Arc::clone(&routes[source].source),
                HOSTS[host].into(),
                &message,
                &fields,
            ),
            origin: Origin {
                file,
                path: format!("/var/log/{}.log", SOURCES[source].0).into(),
                start: off,
                end: off + len,
            },
            route: Arc::clone(&routes[source]),
        };
        files.entry((source, host)).or_default().push(record);
        model.push(ModelRow {
            table: LogTable::Infrastructure,
            name: SOURCES[source].0.into(),
            host: HOSTS[host].into(),
            ts_ms,
            id,
            level,
            message,
            fields,
            request_id,
        });
    }

    let t = Instant::now();
    let all_records: Vec<FileRecord> = files.into_values().flatten().collect();
    for unit in all_records.chunks(1000) {
        sink.write_file_unit(unit).await.unwrap();
    }
    let app_route = AppRoute {
        ttl: None,
        bucket: Duration::from_secs(3600),
    };
    for unit in events.chunks(1000) {
        sink.write_app_unit(unit, &app_route).await.unwrap();
    }
    eprintln!(
        "wrote {} rows ({} application) to keyspace {ks} through the sink in {:.1?}",
        model.len(),
        events.len(),
        t.elapsed()
    );

    let reader = Reader::new(
        Arc::new(logship::sink::session::connect(&config).await.unwrap()),
        &ks,
        ReadOptions {
            // Small pages: every partition read crosses page boundaries.
            page_size: 200,
            ..ReadOptions::default()
        },
    )
    .await
    .unwrap();
    let ts = |ms: i64| Timestamp::from_millisecond(ms).unwrap();
    let mut checked_rows = 0_usize;
    let t = Instant::now();
    for case in 0..40 {
        let mut f = Filter {
            tables: [Tables::All, Tables::Infrastructure, Tables::Application]
                [rng.random_range(0..3)],
            ..Filter::default()
        };
        if rng.random_bool(0.5) {
            let names = ["nginx", "syslog", SERVICE];
            f.names = names
                .iter()
                .filter(|_| rng.random_bool(0.5))
                .map(|s| (*s).to_owned())
                .collect();
        }
        if rng.random_bool(0.5) {
            f.hosts = HOSTS
                .iter()
                .filter(|_| rng.random_bool(0.5))
                .map(|s| (*s).to_owned())
                .collect();
        }
        if rng.random_bool(0.5) {
            f.min_level = Some(Level::ALL[rng.random_range(0..Level::ALL.len())]);
        }
        // Always a range here (an open start reads 91 days of catalog): a random window,
        // often across midnight.
        let a = start.as_millisecond() + rng.random_range(0..span_ms);
        let len = rng.random_range(1..span_ms / 2);
        f.from = Some(ts(a - len / 2));
        if rng.random_bool(0.8) {
            f.until = Some(ts(a + len / 2));
        } else {
            f.until = Some(ts(start.as_millisecond() + span_ms + 1000));
        }
        if rng.random_bool(0.2) {
            f.fields = vec![("status".to_owned(), "500".to_owned())];
        }
        if rng.random_bool(0.2) {
            f.message = Some(parse_regex(r"/item/1[0-9] ").unwrap());
        }
        if rng.random_bool(0.15) {
            f.request_id = Some(format!("req-{}", rng.random_range(0..3000)));
        }
        let order = if rng.random_bool(0.5) {
            Order::Ascending
        } else {
            Order::Descending
        };
        let mut want: Vec<&ModelRow> = model.iter().filter(|r| model_matches(&f, r)).collect();
        want.sort_by(|a, b| model_order(order, a, b));
        let want: Vec<Uuid> = want.iter().map(|r| r.id).collect();
        let mut got = Vec::new();
        let mut stream = reader.rows(&f, order);
        while let Some(row) = stream.next().await.unwrap() {
            got.push(row.id);
        }
        assert_eq!(got.len(), want.len(), "case {case}: {f:?} {order:?}");
        if got != want {
            let first = got.iter().zip(&want).position(|(g, w)| g != w);
            panic!("case {case}: order differs at {first:?}: {f:?} {order:?}");
        }
        checked_rows += got.len();

        // The same rows through pages and cursors.
        if case % 4 == 0 {
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let page = reader.page(&f, order, cursor, 997).await.unwrap();
                paged.extend(ids(&page.rows));
                match page.next {
                    Some(c) => {
                        let c = logship::query::Cursor::decode(&c.encode()).unwrap();
                        cursor = Some(c);
                    }
                    None => break,
                }
            }
            assert_eq!(paged, want, "case {case}: pages");
        }
        // The newest 50, oldest first.
        if case % 5 == 0 {
            let newest = reader.newest(&f, 50).await.unwrap();
            let n = want.len().min(50);
            let mut expect: Vec<Uuid> = match order {
                Order::Descending => want[..n].to_vec(),
                Order::Ascending => want[want.len() - n..].iter().rev().copied().collect(),
            };
            expect.reverse();
            assert_eq!(ids(&newest), expect, "case {case}: newest");
        }
    }
    eprintln!(
        "40 random filters, {checked_rows} rows compared, in {:.1?}",
        t.elapsed()
    );

    // Counts per level per source per 10 minutes, over everything.
    let f = Filter {
        from: Some(start),
        until: Some(ts(start.as_millisecond() + span_ms + 1000)),
        ..Filter::default()
    };
    let counts = reader.counts(&f, Duration::from_secs(600)).await.unwrap();
    let mut want: BTreeMap<(i64, String, String), u64> = BTreeMap::new();
    for r in &model {
        let s = r.ts_ms - r.ts_ms.rem_euclid(600_000);
        *want
            .entry((s, r.name.clone(), r.level.as_str().to_owned()))
            .or_default() += 1;
    }
    let got: BTreeMap<(i64, String, String), u64> = counts
        .iter()
        .map(|c| {
            (
                (c.start.as_millisecond(), c.name.clone(), c.level.clone()),
                c.count,
            )
        })
        .collect();
    assert_eq!(got, want, "counts");

    // The streams in the range: every (table, name, host) written.
    let streams = reader.streams(&f).await.unwrap();
    let got: BTreeSet<(LogTable, String, String)> = streams
        .iter()
        .map(|s| (s.table, s.name.clone(), s.host.clone()))
        .collect();
    let want: BTreeSet<(LogTable, String, String)> = model
        .iter()
        .map(|r| (r.table, r.name.clone(), r.host.clone()))
        .collect();
    assert_eq!(got, want, "streams");
    // First and last seen are exact to a minute (one writer, no restart).
    for s in &streams {
        let times = model
            .iter()
            .filter(|r| (r.table, &r.name, &r.host) == (s.table, &s.name, &s.host))
            .map(|r| r.ts_ms);
        let (first, last) = (times.clone().min().unwrap(), times.max().unwrap());
        let (f, l) = (s.first_seen.as_millisecond(), s.last_seen.as_millisecond());
        assert!(f <= first + 60_000 && f >= first, "{s:?}: first {first}");
        assert!(l >= last - 60_000 && l <= last, "{s:?}: last {last}");
    }
}

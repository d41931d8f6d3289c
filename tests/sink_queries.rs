//! The seed queries of docs/schema.md, each run against real rows written by the sink.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use logship::parsers::Level;
use logship::pipeline::{FileId, FileRecord};
use logship::sink::{AppRoute, CassandraSink, Placement, SinkOptions};
use scylla::value::CqlTimestamp;
use support::cassandra::{apply_schema, default_node, unique_keyspace};
use support::records::{
    APP_COLUMNS, INFRA_COLUMNS, app_events, file_records, query_app, query_infra, route,
};
use uuid::Uuid;

fn file(inode: u64) -> FileId {
    FileId {
        dev: 1,
        inode,
        fingerprint: inode * 31,
    }
}

/// Buckets (day, start) that the span [from, to] touches for a source with this width.
fn buckets(from: Timestamp, to: Timestamp, width: Duration) -> Vec<Placement> {
    let mut out: Vec<Placement> = Vec::new();
    let mut t = from;
    while t <= to {
        let p = Placement::of(t, width);
        if !out.iter().any(|q| q.day == p.day && q.bucket == p.bucket) {
            out.push(p);
        }
        t += SignedDuration::from_secs(60);
    }
    let p = Placement::of(to, width);
    if !out.iter().any(|q| q.day == p.day && q.bucket == p.bucket) {
        out.push(p);
    }
    out
}

fn ids(records: impl IntoIterator<Item = impl std::borrow::Borrow<FileRecord>>) -> BTreeSet<Uuid> {
    records
        .into_iter()
        .map(|r| {
            let r = r.borrow();
            logship::sink::file_row_id(&r.record.host, r.origin.file, r.origin.start)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_queries_answer_from_real_rows() {
    let Some(node) = default_node() else { return };
    let ks = unique_keyspace("queries");
    let config = node.config(&ks);
    apply_schema(&config).await;
    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap();

    let now = Timestamp::now();
    let hour = Duration::from_secs(3600);
    let two_hours_ago = now - SignedDuration::from_secs(7200);
    // web1: nginx and syslog over the last two hours; web2: nginx. Every 7th line an error.
    let mut all = Vec::new();
    for (i, (source, host)) in [("nginx", "web1"), ("syslog", "web1"), ("nginx", "web2")]
        .into_iter()
        .enumerate()
    {
        let r = route(source, None, hour);
        let mut recs = file_records(
            &r,
            host,
            file(i as u64 + 1),
            two_hours_ago,
            Duration::from_secs(36),
            199,
            i as u64,
        );
        for (n, rec) in recs.iter_mut().enumerate() {
            rec.record.level = if n % 7 == 0 {
                Level::Error
            } else {
                Level::Info
            };
        }
        all.extend(recs);
    }
    for unit in all.chunks(1000) {
        sink.write_file_unit(unit).await.unwrap();
    }
    let events = app_events(
        "shop",
        "web1",
        now - SignedDuration::from_secs(600),
        300,
        77,
    );
    sink.write_app_unit(&events, &AppRoute::default())
        .await
        .unwrap();
    let s = sink.session();
    let hour_ago = now - SignedDuration::from_secs(3600);
    let since = CqlTimestamp(hour_ago.as_millisecond());

    // 1. Errors for this host in the last hour, every source: one query (SAI on level).
    let q1 = format!(
        "SELECT {INFRA_COLUMNS} FROM {ks}.infrastructure_logs \
         WHERE level = 'ERROR' AND host = ? AND ts >= ? ALLOW FILTERING"
    );
    let got = query_infra(s, &q1, ("web1", since)).await;
    let want = ids(all.iter().filter(|r| {
        &*r.record.host == "web1"
            && r.record.level == Level::Error
            && r.record.timestamp.as_millisecond() >= hour_ago.as_millisecond()
    }));
    assert!(want.len() > 10, "the data must hold errors to find");
    assert_eq!(got.iter().map(|r| r.id).collect::<BTreeSet<_>>(), want);

    // 1b. The same for one source, partition by partition: one query per bucket the hour
    //     touches (SAI on level, inside the partition).
    let q1b = format!(
        "SELECT {INFRA_COLUMNS} FROM {ks}.infrastructure_logs \
         WHERE source = ? AND host = ? AND day = ? AND bucket = ? AND level = 'ERROR' AND ts >= ?"
    );
    let mut got = BTreeSet::new();
    for p in buckets(hour_ago, now, hour) {
        for row in query_infra(s, &q1b, ("nginx", "web1", p.day, p.bucket, since)).await {
            got.insert(row.id);
        }
    }
    let want = ids(all.iter().filter(|r| {
        &*r.route.source == "nginx"
            && &*r.record.host == "web1"
            && r.record.level == Level::Error
            && r.record.timestamp.as_millisecond() >= hour_ago.as_millisecond()
    }));
    assert_eq!(got, want);

    // 2. Every line of request X, across hosts and partitions (SAI on request_id).
    let q2 = format!("SELECT {APP_COLUMNS} FROM {ks}.application_logs WHERE request_id = ?");
    let got = query_app(s, &q2, ("req-77-4",)).await;
    let want: BTreeSet<_> = events
        .iter()
        .filter(|e| e.request_id.as_deref() == Some("req-77-4"))
        .map(|e| e.id)
        .collect();
    assert_eq!(want.len(), 10);
    assert_eq!(got.iter().map(|r| r.id).collect::<BTreeSet<_>>(), want);

    // 3. Every line of trace X (SAI on trace_id).
    let q3 = format!("SELECT {APP_COLUMNS} FROM {ks}.application_logs WHERE trace_id = ?");
    let got = query_app(s, &q3, ("trace-77-2",)).await;
    let want: BTreeSet<_> = events
        .iter()
        .filter(|e| e.trace_id.as_deref() == Some("trace-77-2"))
        .map(|e| e.id)
        .collect();
    assert_eq!(want.len(), 10);
    assert_eq!(got.iter().map(|r| r.id).collect::<BTreeSet<_>>(), want);

    // 4. The latest lines of a source on a host: the newest partition, newest first.
    let q4 = format!(
        "SELECT {INFRA_COLUMNS} FROM {ks}.infrastructure_logs \
         WHERE source = ? AND host = ? AND day = ? AND bucket = ? LIMIT 20"
    );
    let newest = all
        .iter()
        .filter(|r| &*r.route.source == "syslog")
        .map(|r| r.record.timestamp)
        .max()
        .unwrap();
    let p = Placement::of(newest, hour);
    let got = query_infra(s, &q4, ("syslog", "web1", p.day, p.bucket)).await;
    let mut want: Vec<_> = all
        .iter()
        .filter(|r| {
            &*r.route.source == "syslog"
                && Placement::of(r.record.timestamp, hour).bucket == p.bucket
                && Placement::of(r.record.timestamp, hour).day == p.day
        })
        .collect();
    want.sort_by_key(|r| std::cmp::Reverse(r.record.timestamp));
    want.truncate(20);
    assert!(!want.is_empty());
    assert_eq!(
        got.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
        want.iter().map(|r| r.record.timestamp).collect::<Vec<_>>()
    );

    // 5. A time range of a source on a host (within one bucket).
    let q5 = format!(
        "SELECT {INFRA_COLUMNS} FROM {ks}.infrastructure_logs \
         WHERE source = ? AND host = ? AND day = ? AND bucket = ? AND ts >= ? AND ts < ?"
    );
    let from = newest - SignedDuration::from_secs(600);
    let p = Placement::of(from, hour);
    let to = newest;
    let got = query_infra(
        s,
        &q5,
        (
            "nginx",
            "web2",
            p.day,
            p.bucket,
            CqlTimestamp(from.as_millisecond()),
            CqlTimestamp(to.as_millisecond()),
        ),
    )
    .await;
    let want = ids(all.iter().filter(|r| {
        let ms = r.record.timestamp.as_millisecond();
        let rp = Placement::of(r.record.timestamp, hour);
        &*r.route.source == "nginx"
            && &*r.record.host == "web2"
            && rp.day == p.day
            && rp.bucket == p.bucket
            && ms >= from.as_millisecond()
            && ms < to.as_millisecond()
    }));
    assert!(!want.is_empty());
    assert_eq!(got.iter().map(|r| r.id).collect::<BTreeSet<_>>(), want);

    // 6. Errors of a service in the last hour, every host (SAI on level).
    let q6 = format!(
        "SELECT {APP_COLUMNS} FROM {ks}.application_logs \
         WHERE level = 'ERROR' AND service = ? AND ts >= ? ALLOW FILTERING"
    );
    let got = query_app(s, &q6, ("shop", since)).await;
    let want: BTreeSet<_> = events
        .iter()
        .filter(|e| e.level == Level::Error)
        .map(|e| e.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got.iter().map(|r| r.id).collect::<BTreeSet<_>>(), want);
}

//! The sink against the real local node: what goes in comes back, field for field, once.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use logship::pipeline::FileId;
use logship::sink::{AppRoute, CassandraConfig, CassandraSink, SinkOptions, WriteMode};
use support::cassandra::{Node, apply_schema, default_node, unique_keyspace};
use support::records::{
    APP_COLUMNS, INFRA_COLUMNS, expected_app, expected_infra, file_records, query_app, query_infra,
    read_all_infra, route,
};
use tokio::sync::OnceCell;

/// One keyspace for this test binary: creating tables and indexes is the slow part.
async fn keyspace(node: &Node) -> &'static str {
    static KS: OnceCell<String> = OnceCell::const_new();
    KS.get_or_init(|| async {
        let ks = unique_keyspace("roundtrip");
        apply_schema(&node.config(&ks)).await;
        ks
    })
    .await
}

async fn sink(node: &Node, mode: WriteMode) -> (CassandraSink, CassandraConfig) {
    let ks = keyspace(node).await;
    let config = CassandraConfig {
        write_mode: mode,
        ..node.config(ks)
    };
    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (sink, config)
}

fn file(inode: u64) -> FileId {
    FileId {
        dev: 2049,
        inode,
        fingerprint: 0xfeed_0000 + inode,
    }
}

fn now_minus(secs: i64) -> Timestamp {
    Timestamp::now() - jiff::SignedDuration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_records_come_back_with_every_field_equal() {
    let Some(node) = default_node() else { return };
    let (sink, config) = sink(&node, WriteMode::default()).await;
    let start = now_minus(3 * 3600);
    // Ten files over three sources and hosts; 60 s buckets for nginx make many partitions.
    let mut records = Vec::new();
    for (i, (source, host, bucket)) in [
        ("rt-nginx", "web1", 60),
        ("rt-nginx", "web2", 60),
        ("rt-nginx", "web3", 60),
        ("rt-syslog", "web1", 3600),
        ("rt-syslog", "web2", 3600),
        ("rt-syslog", "db1", 3600),
        ("rt-postgres", "db1", 86_400),
        ("rt-postgres", "db2", 86_400),
        ("rt-postgres", "db3", 600),
        ("rt-postgres", "db4", 600),
    ]
    .into_iter()
    .enumerate()
    {
        let r = route(source, None, Duration::from_secs(bucket));
        records.extend(file_records(
            &r,
            host,
            file(100 + i as u64),
            start,
            Duration::from_millis(53),
            10_000,
            i as u64,
        ));
    }
    assert_eq!(records.len(), 100_000);
    let t0 = std::time::Instant::now();
    for unit in records.chunks(1000) {
        let report = sink
            .write_file_unit(unit)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(report.written, unit.len());
        assert_eq!(report.dead_lettered, 0);
    }
    assert_eq!(sink.metrics().rows_written_infrastructure, 100_000);
    assert_eq!(sink.metrics().units_written, 100);
    eprintln!("wrote 100000 rows in {:?}", t0.elapsed());
    let t0 = std::time::Instant::now();

    let mut stored: HashMap<_, _> = read_all_infra(sink.session(), &config.keyspace)
        .await
        .into_iter()
        .filter(|r| r.source.starts_with("rt-"))
        .map(|r| (r.id, r))
        .collect();
    assert_eq!(stored.len(), 100_000);
    eprintln!("read back in {:?}", t0.elapsed());
    for r in &records {
        let want = expected_infra(r);
        let got = stored
            .remove(&want.id)
            .unwrap_or_else(|| panic!("missing {want:?}"));
        assert_eq!(got, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sharing_a_timestamp_are_all_kept() {
    let Some(node) = default_node() else { return };
    for (mode, source) in [
        (WriteMode::Concurrent, "same-ts-c"),
        (WriteMode::UnloggedBatch, "same-ts-b"),
    ] {
        let (sink, config) = sink(&node, mode).await;
        let r = route(source, None, Duration::from_secs(3600));
        // step 0: every record has the same instant (plus sub-ms jitter, removed below).
        let mut records = file_records(&r, "web1", file(7), now_minus(60), Duration::ZERO, 500, 9);
        let ts = records[0].record.timestamp;
        for rec in &mut records {
            rec.record.timestamp = ts;
        }
        sink.write_file_unit(&records).await.unwrap();
        let p = logship::sink::Placement::of(ts, r.bucket);
        let rows = query_infra(
            sink.session(),
            &format!(
                "SELECT {INFRA_COLUMNS} FROM {}.infrastructure_logs \
                 WHERE source = ? AND host = ? AND day = ? AND bucket = ? AND ts = ?",
                config.keyspace
            ),
            (source, "web1", p.day, p.bucket, p.ts),
        )
        .await;
        assert_eq!(rows.len(), 500, "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_sent_twice_leaves_no_duplicate() {
    let Some(node) = default_node() else { return };
    for (mode, source) in [
        (WriteMode::Concurrent, "twice-c"),
        (WriteMode::UnloggedBatch, "twice-b"),
    ] {
        let (sink, config) = sink(&node, mode).await;
        let r = route(source, None, Duration::from_secs(3600));
        let records = file_records(
            &r,
            "web1",
            file(8),
            now_minus(600),
            Duration::from_millis(1),
            1000,
            3,
        );
        sink.write_file_unit(&records).await.unwrap();
        // A crash between the write and the checkpoint: the tailer sends it all again.
        sink.write_file_unit(&records).await.unwrap();
        sink.write_file_unit(&records[..10]).await.unwrap();
        let rows: Vec<_> = read_all_infra(sink.session(), &config.keyspace)
            .await
            .into_iter()
            .filter(|row| row.source == source)
            .collect();
        assert_eq!(rows.len(), 1000, "{mode:?}");
        let mut want: Vec<_> = records.iter().map(expected_infra).collect();
        let mut got = rows;
        want.sort_by_key(|r| r.id);
        got.sort_by_key(|r| r.id);
        assert_eq!(got, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_the_sources_or_the_tables_default() {
    let Some(node) = default_node() else { return };
    let (sink, config) = sink(&node, WriteMode::Concurrent).await;
    let ks = &config.keyspace;
    let hour = route(
        "ttl-hour",
        Some(Duration::from_secs(3600)),
        Duration::from_secs(3600),
    );
    let default = route("ttl-default", None, Duration::from_secs(3600));
    let t = now_minus(10);
    let a = file_records(&hour, "web1", file(9), t, Duration::from_millis(1), 10, 1);
    let b = file_records(
        &default,
        "web1",
        file(10),
        t,
        Duration::from_millis(1),
        10,
        2,
    );
    sink.write_file_unit(&[a.clone(), b.clone()].concat())
        .await
        .unwrap();
    for (records, lo, hi) in [(&a, 3500, 3600), (&b, 7_776_000 - 300, 7_776_000)] {
        let r = &records[0];
        let p = logship::sink::Placement::of(r.record.timestamp, r.route.bucket);
        let ttls: Vec<(Option<i32>,)> = sink
            .session()
            .query_unpaged(
                format!(
                    "SELECT TTL(message) FROM {ks}.infrastructure_logs \
                     WHERE source = ? AND host = ? AND day = ? AND bucket = ?"
                ),
                (&*r.route.source, "web1", p.day, p.bucket),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ttls.len(), 10);
        for (ttl,) in ttls {
            let ttl = ttl.expect("a TTL on every row");
            assert!((lo..=hi).contains(&ttl), "{} has TTL {ttl}", r.route.source);
        }
    }

    // Application events: the layer's TTL.
    let events = support::records::app_events("ttl-app", "web1", t, 5, 4);
    let route = AppRoute {
        ttl: Some(Duration::from_secs(7200)),
        bucket: Duration::from_secs(3600),
    };
    sink.write_app_unit(&events, &route).await.unwrap();
    let p = logship::sink::Placement::of(t, route.bucket);
    let result = sink
        .session()
        .query_unpaged(
            format!(
                "SELECT TTL(message) FROM {ks}.application_logs \
                 WHERE service = 'ttl-app' AND host = 'web1' AND day = ? AND bucket = ?"
            ),
            (p.day, p.bucket),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let ttls: Vec<(Option<i32>,)> = result.rows().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(ttls.len(), 5);
    assert!(
        ttls.iter().all(|(t,)| (7100..=7200).contains(&t.unwrap())),
        "{ttls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_events_come_back_with_their_fields_and_span_fields() {
    let Some(node) = default_node() else { return };
    for (mode, service) in [
        (WriteMode::Concurrent, "app-rt-c"),
        (WriteMode::UnloggedBatch, "app-rt-b"),
    ] {
        let (sink, config) = sink(&node, mode).await;
        let mut events = support::records::app_events(service, "web1", now_minus(120), 2000, 5);
        // Optional parts absent on some events.
        events[3].module = None;
        events[3].file = None;
        events[3].line = None;
        events[3].fields.clear();
        events[3].span_fields.clear();
        events[3].request_id = None;
        for unit in events.chunks(1000) {
            sink.write_app_unit(unit, &AppRoute::default())
                .await
                .unwrap();
        }
        let stored: HashMap<_, _> = query_app(
            sink.session(),
            &format!(
                "SELECT {APP_COLUMNS} FROM {}.application_logs",
                config.keyspace
            ),
            (),
        )
        .await
        .into_iter()
        .filter(|r| r.service == service)
        .map(|r| (r.id, r))
        .collect();
        assert_eq!(stored.len(), events.len(), "{mode:?}");
        for e in &events {
            assert_eq!(stored[&e.id], expected_app(e));
        }
        assert_eq!(sink.metrics().rows_written_application, 2000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_records_are_truncated_and_flagged() {
    let Some(node) = default_node() else { return };
    let ks = keyspace(&node).await;
    let config = CassandraConfig {
        max_record_bytes: 4096,
        ..node.config(ks)
    };
    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap();
    let r = route("trunc", None, Duration::from_secs(3600));
    let mut records = file_records(
        &r,
        "web1",
        file(11),
        now_minus(60),
        Duration::from_millis(1),
        3,
        6,
    );
    records[1].record.set_message(&"é".repeat(10_000));
    let report = sink.write_file_unit(&records).await.unwrap();
    assert_eq!((report.written, report.truncated), (3, 1));
    let rows: BTreeMap<_, _> = read_all_infra(sink.session(), ks)
        .await
        .into_iter()
        .filter(|row| row.source == "trunc")
        .map(|row| (row.file_offset, row))
        .collect();
    assert_eq!(rows.len(), 3);
    let cut = &rows[&(records[1].origin.start as i64)];
    assert!(cut.truncated);
    assert!(
        cut.message.len() <= 4096 && cut.message.len() > 3000,
        "{}",
        cut.message.len()
    );
    assert!(records[1].record.message().starts_with(&cut.message));
    assert!(!rows[&0].truncated);
    assert_eq!(sink.metrics().rows_truncated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_cassandra_refuses_goes_to_the_dead_letter_file_and_the_rest_is_written() {
    let Some(node) = default_node() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (mode, source) in [
        (WriteMode::Concurrent, "dead-c"),
        (WriteMode::UnloggedBatch, "dead-b"),
    ] {
        let ks = keyspace(&node).await;
        let config = CassandraConfig {
            write_mode: mode,
            ..node.config(ks)
        };
        let options = SinkOptions {
            dead_letter_dir: Some(dir.path().to_owned()),
        };
        let sink = CassandraSink::connect(&config, options).await.unwrap();
        let r = route(source, None, Duration::from_secs(3600));
        let mut records = file_records(
            &r,
            "web1",
            file(12),
            now_minus(60),
            Duration::from_millis(1),
            20,
            7,
        );
        // A partition key part over 64 KiB: Cassandra can never store this row.
        let huge_host: std::sync::Arc<str> = "h".repeat(70_000).into();
        records[5].record.host = huge_host;
        let report = tokio::time::timeout(Duration::from_secs(120), sink.write_file_unit(&records))
            .await
            .expect("a refused record must not block the unit")
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!((report.written, report.dead_lettered), (19, 1), "{mode:?}");
        let rows = read_all_infra(sink.session(), ks)
            .await
            .into_iter()
            .filter(|row| row.source == source)
            .count();
        assert_eq!(rows, 19);
        let text = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains(source))
            .unwrap_or_else(|| panic!("no entry for {source} in {text}"));
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(entry["table"], "infrastructure_logs");
        assert_eq!(
            entry["record"]["record"]["message"],
            records[5].record.message()
        );
        assert_eq!(entry["record"]["file_offset"], records[5].origin.start);
        assert!(!entry["reason"].as_str().unwrap().is_empty());
        assert_eq!(sink.metrics().rows_dead_lettered, 1);
    }
}

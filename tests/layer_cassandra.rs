//! The tracing layer against the real Cassandra (`scripts/cassandra start`): what the
//! application logs lands in `application_logs` with its fields and span fields, once.
#![cfg(feature = "layer")]

#[path = "support/layer.rs"]
mod layer_support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use layer_support::{HOST, Proxy, StoredRow, cassandra, read_rows, rss_bytes, serial, service};
use logship::layer::{self, FlushGuard};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

const TARGET: &str = "layer_cassandra";

fn build(b: layer::LayerBuilder, config: logship::sink::CassandraConfig) -> (Dispatch, FlushGuard) {
    let (layer, guard) = b
        .host(HOST)
        .bucket(layer_support::BUCKET)
        .ttl(Duration::from_secs(86_400))
        .cassandra(config)
        .build()
        .expect("build");
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

fn app_rows(rows: &[StoredRow]) -> Vec<&StoredRow> {
    rows.iter().filter(|r| r.target == TARGET).collect()
}

#[test]
fn events_from_8_threads_all_land_once_with_their_fields_and_span_fields() {
    let _serial = serial();
    let Some(config) = cassandra() else { return };
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 12_500;
    let service = service("eight-threads");
    let (dispatch, guard) = build(
        layer::builder()
            .service(&service)
            .buffer_capacity(131_072)
            .shutdown_timeout(Duration::from_secs(300)),
        config,
    );
    let start = jiff::Timestamp::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let trace = format!("tr-{t}");
                    let job = tracing::info_span!("job", worker = t, trace_id = %trace);
                    let _job = job.enter();
                    for block in 0..PER_THREAD / 1000 + 1 {
                        let request = format!("req-{t}-{block}");
                        let span =
                            tracing::info_span!("request", request_id = %request, user = "u");
                        let _request = span.enter();
                        for i in block * 1000..((block + 1) * 1000).min(PER_THREAD) {
                            tracing::info!(thread = t, seq = i, ok = true, "event {t}/{i}");
                        }
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().expect("logging thread");
    }
    let report = guard.shutdown();
    let end = jiff::Timestamp::now();
    assert!(report.complete, "{report}");
    assert_eq!(report.dropped, 0);
    assert_eq!(report.written, THREADS * PER_THREAD);

    let rows = read_rows(&service, start, end);
    assert_eq!(
        rows.len() as u64,
        THREADS * PER_THREAD,
        "no other row (no drop count)"
    );
    let ids: HashSet<_> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), rows.len(), "row ids are unique");
    let mut seen = HashSet::new();
    for r in app_rows(&rows) {
        let t: u64 = r.fields["thread"].parse().unwrap();
        let i: u64 = r.fields["seq"].parse().unwrap();
        assert!(seen.insert((t, i)), "event {t}/{i} twice");
        assert_eq!(r.message, format!("event {t}/{i}"));
        assert_eq!(r.level, "INFO");
        assert_eq!(r.module.as_deref(), Some(TARGET));
        assert!(r.line.is_some());
        assert_eq!(r.fields["ok"], "true");
        assert_eq!(r.fields.len(), 3);
        let request = format!("req-{t}-{}", i / 1000);
        let expected: BTreeMap<String, String> = [
            ("worker", t.to_string()),
            ("trace_id", format!("tr-{t}")),
            ("request_id", request.clone()),
            ("user", "u".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(r.span_fields, expected);
        assert_eq!(r.request_id.as_deref(), Some(request.as_str()));
        assert_eq!(r.trace_id.as_deref(), Some(format!("tr-{t}").as_str()));
        assert!(
            r.ttl.is_some_and(|ttl| ttl > 0 && ttl <= 86_400),
            "{:?}",
            r.ttl
        );
        let ms = |ts: jiff::Timestamp| ts.as_millisecond();
        assert!(
            r.ts >= ms(start) && r.ts <= ms(end),
            "captured during the test"
        );
    }
    assert_eq!(seen.len() as u64, THREADS * PER_THREAD);
}

#[test]
fn cassandra_down_at_start_then_up_buffered_events_arrive_the_rest_are_counted() {
    let _serial = serial();
    let Some(mut config) = cassandra() else {
        return;
    };
    const CAPACITY: usize = 1000;
    const FLUSH: usize = 100;
    const EVENTS: u64 = 200_000;
    let proxy = Proxy::start();
    config.contact_points = vec![format!("127.0.0.1:{}", proxy.port)];
    config.connect_timeout = Duration::from_secs(1);
    let service = service("down-then-up");
    let (dispatch, guard) = build(
        layer::builder()
            .service(&service)
            .buffer_capacity(CAPACITY)
            .flush_size(FLUSH)
            .linger(Duration::from_millis(50))
            .shutdown_timeout(Duration::from_secs(120)),
        config,
    );
    let start = jiff::Timestamp::now();
    // 200,000 events of 1 KiB: 200 MB if the layer kept them all.
    let payload = "p".repeat(1024);
    let rss_before = rss_bytes();
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..EVENTS {
            tracing::info!(seq = i, payload = %payload, "while down");
        }
    });
    let grown = rss_bytes().saturating_sub(rss_before);
    assert!(
        grown < 32 << 20,
        "memory grew by {grown} bytes while Cassandra was down"
    );
    let stats = guard.stats();
    assert_eq!(stats.queued, CAPACITY, "{stats:?}");
    // The worker holds at most one unit besides the buffer; everything else was dropped.
    let kept = EVENTS - stats.dropped;
    assert!(
        kept > CAPACITY as u64 && kept <= (CAPACITY + FLUSH) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.written, 0);

    proxy.up();
    let report = guard.shutdown();
    let end = jiff::Timestamp::now();
    assert!(report.complete, "{report}");
    assert_eq!(report.dropped, stats.dropped);

    let rows = read_rows(&service, start, end);
    let events = app_rows(&rows);
    assert_eq!(events.len() as u64, kept);
    // Each accepted event arrived once. The first CAPACITY were always accepted (the
    // buffer cannot be full before it holds that many); later ones may have slipped in
    // whenever the worker took an event while the app was still logging.
    let seqs: HashSet<u64> = events
        .iter()
        .map(|r| r.fields["seq"].parse().unwrap())
        .collect();
    assert_eq!(seqs.len() as u64, kept, "an event arrived twice");
    let missing: Vec<u64> = (0..CAPACITY as u64).filter(|s| !seqs.contains(s)).collect();
    assert!(missing.is_empty(), "buffered but lost: {missing:?}");
    assert!(seqs.iter().all(|&s| s < EVENTS));
    for r in &events {
        assert_eq!(r.fields.get("payload"), Some(&payload), "{r:?}");
    }
    let warn: Vec<_> = rows
        .iter()
        .filter(|r| r.target == "logship::layer")
        .collect();
    assert_eq!(warn.len(), 1, "one row tells the drops: {warn:#?}");
    assert_eq!(warn[0].level, "WARN");
    assert_eq!(warn[0].fields["dropped"], stats.dropped.to_string());
    assert_eq!(warn[0].fields["capacity"], CAPACITY.to_string());
    assert_eq!(rows.len() as u64, kept + 1);
}

#[test]
fn dropping_the_guard_writes_what_is_buffered() {
    let _serial = serial();
    let Some(config) = cassandra() else { return };
    let service = service("guard-drop");
    // An hour's linger: nothing but the guard's flush writes these ten events in time.
    let (dispatch, guard) = build(
        layer::builder()
            .service(&service)
            .linger(Duration::from_secs(3600))
            .shutdown_timeout(Duration::from_secs(60)),
        config,
    );
    let start = jiff::Timestamp::now();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("shutdown", request_id = "last-request");
        let _e = span.enter();
        for i in 0..10 {
            tracing::warn!(seq = i, "about to exit");
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(guard.stats().written, 0, "the linger holds the unit back");
    drop(guard);
    let rows = read_rows(&service, start, jiff::Timestamp::now());
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r.level == "WARN" && r.request_id.as_deref() == Some("last-request"))
    );
}

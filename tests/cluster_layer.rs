//! The tracing Layer shipping an app's events to the three-node cluster (RF 3,
//! `LOCAL_QUORUM`) while a node is killed with kill -9 and restarted: every event the layer
//! accepted lands exactly once, and what it dropped (a burst right after the kill
//! overflows its small buffer on purpose) is counted and written as its drop row.
#![cfg(feature = "layer")]

#[path = "support/agent.rs"]
mod agent;
#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cluster::{Cluster, load_average};
use logship::layer;
use logship::sink::Placement;
use support::records::{APP_COLUMNS, AppRow, query_app};
use tracing_subscriber::prelude::*;

const TARGET: &str = "cluster_layer";
const HOST: &str = "cluster-layer-host";
const BUCKET: Duration = Duration::from_secs(86_400);
const CAPACITY: usize = 2000;
/// Events logged unpaced right after the kill: far more than the buffer holds.
const BURST: u64 = 10_000;

#[test]
fn layer_events_during_a_node_kill_land_once_and_drops_are_counted_and_written() {
    let Some((cluster, _turn)) = Cluster::lock() else {
        return;
    };
    let db = cluster.db("cl_layer");
    let service = format!("cluster-layer-{}", uuid::Uuid::new_v4().simple());
    let (layer, guard) = layer::builder()
        .service(&service)
        .host(HOST)
        .bucket(BUCKET)
        .ttl(Duration::from_secs(86_400))
        .buffer_capacity(CAPACITY)
        .flush_size(500)
        .linger(Duration::from_millis(200))
        .shutdown_timeout(Duration::from_secs(120))
        .cassandra(cluster.config(&db.keyspace))
        .build()
        .expect("build the layer");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    // The app: 20 events every 10 ms (2,000/s) until told to stop; one burst on request.
    let stop = Arc::new(AtomicBool::new(false));
    let burst = Arc::new(AtomicBool::new(false));
    let logged = Arc::new(AtomicU64::new(0));
    let start = jiff::Timestamp::now();
    let app = {
        let (stop, burst, logged, dispatch) = (
            Arc::clone(&stop),
            Arc::clone(&burst),
            Arc::clone(&logged),
            dispatch.clone(),
        );
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let mut seq = 0_u64;
                while !stop.load(Ordering::SeqCst) {
                    let n = if burst.swap(false, Ordering::SeqCst) {
                        BURST
                    } else {
                        20
                    };
                    for _ in 0..n {
                        tracing::info!(target: TARGET, seq, "order {seq} paid");
                        seq += 1;
                    }
                    logged.store(seq, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
    };

    std::thread::sleep(Duration::from_secs(3));
    let killed_at = Instant::now();
    cluster.kill9(1);
    burst.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(4));
    cluster.start(1);
    let down = killed_at.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    app.join().expect("app thread");
    let logged = logged.load(Ordering::SeqCst);
    let report = guard.shutdown();
    let end = jiff::Timestamp::now();
    assert!(report.complete, "{report}");
    assert!(
        report.dropped > 0,
        "the burst of {BURST} into a buffer of {CAPACITY} dropped nothing: {report}"
    );

    let rows = read_rows(&db, &service, start, end);
    let events: Vec<&AppRow> = rows.iter().filter(|r| r.target == TARGET).collect();
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for r in &events {
        let seq = r
            .fields
            .as_ref()
            .and_then(|f| f.get("seq"))
            .expect("seq field");
        *seen
            .entry(seq.parse().expect("seq is a number"))
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(twice.is_empty(), "events written twice: {twice:?}");
    assert!(seen.keys().all(|s| *s < logged), "an event nobody logged");
    assert_eq!(
        events.len() as u64,
        logged - report.dropped,
        "accepted events ({logged} logged - {} dropped) against rows",
        report.dropped
    );
    let drop_rows: Vec<&AppRow> = rows
        .iter()
        .filter(|r| r.target == "logship::layer")
        .collect();
    assert!(
        !drop_rows.is_empty(),
        "no drop row for {} drops",
        report.dropped
    );
    let told: u64 = drop_rows
        .iter()
        .map(|r| {
            assert_eq!(r.level, "WARN", "{r:?}");
            let fields = r.fields.as_ref().expect("drop row fields");
            assert_eq!(fields["capacity"], CAPACITY.to_string(), "{r:?}");
            fields["dropped"]
                .parse::<u64>()
                .expect("dropped is a number")
        })
        .sum();
    assert_eq!(told, report.dropped, "the drop rows tell every drop");
    eprintln!(
        "layer during kill -9 of node 1 (down {down:?}): {logged} events logged, {} dropped \
         (burst of {BURST} into {CAPACITY}), {} rows, {} drop row(s); load {}",
        report.dropped,
        events.len(),
        drop_rows.len(),
        load_average()
    );
}

/// Every row of `service` on [`HOST`] written between `from` and `to`.
fn read_rows(
    db: &agent::Db,
    service: &str,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
) -> Vec<AppRow> {
    let first = Placement::of(from, BUCKET).day.0;
    let last = Placement::of(to, BUCKET).day.0;
    let cql = format!(
        "SELECT {APP_COLUMNS} FROM {}.application_logs \
         WHERE service = ? AND host = ? AND day = ? AND bucket = 0",
        db.keyspace
    );
    db.rt.block_on(async {
        let mut rows = Vec::new();
        for day in first..=last {
            rows.extend(
                query_app(
                    &db.session,
                    &cql,
                    (service, HOST, scylla::value::CqlDate(day)),
                )
                .await,
            );
        }
        rows
    })
}

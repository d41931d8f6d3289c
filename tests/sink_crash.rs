//! The Cassandra process is killed with SIGKILL mid-stream and started again: the sink
//! retries, resumes, and every record is there exactly once.
//!
//! Uses the secure node, so the default node other suites share keeps running. The node
//! must acknowledge only synced writes (`commitlog_sync: group`): with `periodic`, a
//! SIGKILL loses writes Cassandra already acknowledged, and the test would blame the sink.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use logship::pipeline::FileId;
use logship::sink::{CassandraConfig, CassandraSink, CircuitState, SinkOptions};
use support::cassandra::{
    DURABLE_COMMITLOG_JAVA_OPTS, Node, apply_schema, script_env_ok, secure_node, unique_keyspace,
    wait_for,
};
use support::records::{expected_infra, file_records, read_all_infra, route};

const UNITS: usize = 40;

fn durable(args: &'static [&'static str]) -> String {
    script_env_ok(args, &[("JAVA_TOOL_OPTIONS", DURABLE_COMMITLOG_JAVA_OPTS)])
}

/// Restarts the node with a synced commit log unless it already has one.
async fn ensure_durable_commitlog(node: &Node) {
    // system_views needs more than the agent's role may read.
    let dir = tempfile::tempdir().unwrap();
    let mut config = node.config("system");
    if let Some((user, password)) = &node.superuser {
        std::fs::write(dir.path().join("pw"), password).unwrap();
        config.username = Some(user.clone());
        config.password_file = Some(dir.path().join("pw"));
    }
    let session = logship::sink::session::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (mode,): (String,) = session
        .query_unpaged(
            "SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'",
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    if mode != "group" && mode != "batch" {
        eprintln!(
            "NOTICE: the secure node runs commitlog_sync={mode}; restarting it with group sync"
        );
        let out = tokio::task::spawn_blocking(|| durable(&["restart", "--profile", "secure"]))
            .await
            .unwrap();
        eprintln!("{}", out.trim());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_killed_mid_stream_then_restarted_loses_and_duplicates_nothing() {
    let Some(node) = secure_node() else { return };
    let _ = tracing_subscriber::fmt()
        .with_env_filter("logship=info")
        .with_test_writer()
        .try_init();
    ensure_durable_commitlog(&node).await;
    let ks = unique_keyspace("crash");
    let config = CassandraConfig {
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(3),
        ..node.config(&ks)
    };
    apply_schema(&config).await;
    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    let r = route("crash", None, Duration::from_secs(600));
    let file = FileId {
        dev: 9,
        inode: 99,
        fingerprint: 999,
    };
    let start = Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let records = Arc::new(file_records(
        &r,
        "web1",
        file,
        start,
        Duration::from_millis(20),
        UNITS * 1000,
        42,
    ));

    let acked = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (sink, records, acked) = (sink.clone(), Arc::clone(&records), Arc::clone(&acked));
        tokio::spawn(async move {
            for unit in records.chunks(1000) {
                // Like the daemon: a unit is acknowledged only once it is all written.
                sink.write_file_unit(unit).await?;
                acked.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, logship::sink::SinkError>(())
        })
    };

    wait_for(Duration::from_secs(120), "5 units acknowledged", || {
        let n = acked.load(Ordering::SeqCst);
        async move { (n >= 5).then_some(()) }
    })
    .await;
    let out = tokio::task::spawn_blocking(|| durable(&["kill9", "--profile", "secure"]))
        .await
        .unwrap();
    eprintln!("{}", out.trim());
    let acked_at_kill = acked.load(Ordering::SeqCst);
    assert!(
        acked_at_kill < UNITS,
        "the stream must still be running when the node dies"
    );

    // While the node is down the breaker opens; watch for it.
    let saw_open = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (sink, saw_open) = (sink.clone(), Arc::clone(&saw_open));
        tokio::spawn(async move {
            loop {
                if sink.circuit() == CircuitState::Open {
                    saw_open.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    wait_for(
        Duration::from_secs(60),
        "the circuit breaker to open",
        || {
            let open = saw_open.load(Ordering::SeqCst);
            async move { open.then_some(()) }
        },
    )
    .await;
    assert!(
        acked.load(Ordering::SeqCst) <= acked_at_kill + 1,
        "units acknowledged while the node was dead"
    );

    let out = tokio::task::spawn_blocking(|| durable(&["start", "--profile", "secure"]))
        .await
        .unwrap();
    eprintln!("{}", out.trim());

    tokio::time::timeout(Duration::from_secs(300), writer)
        .await
        .expect("the writer finishes after the node is back")
        .unwrap()
        .unwrap_or_else(|e| panic!("{e:#}"));
    watcher.abort();
    assert_eq!(acked.load(Ordering::SeqCst), UNITS);
    let m = sink.metrics();
    assert!(m.retries > 0 && m.failed_requests > 0, "{m:?}");
    assert_eq!(m.circuit, CircuitState::Closed);
    eprintln!("{m:?}");
    assert_eq!(m.rows_dead_lettered, 0);

    let stored = read_all_infra(sink.session(), &ks).await;
    if stored.len() != UNITS * 1000 {
        let have: std::collections::HashSet<_> = stored.iter().map(|r| r.id).collect();
        let mut missing_units = std::collections::BTreeMap::new();
        for (i, rec) in records.iter().enumerate() {
            if !have.contains(&expected_infra(rec).id) {
                *missing_units.entry(i / 1000).or_insert(0) += 1;
            }
        }
        eprintln!("acked at kill: {acked_at_kill}; missing rows per unit: {missing_units:?}");
        let missing_idx: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| !have.contains(&expected_infra(r).id))
            .map(|(i, _)| i)
            .collect();
        eprintln!("missing indices: {missing_idx:?}");
    }
    assert_eq!(
        stored.len(),
        UNITS * 1000,
        "exactly once: no row lost, none duplicated"
    );
    let mut by_id: HashMap<_, _> = stored.into_iter().map(|r| (r.id, r)).collect();
    for rec in records.iter() {
        let want = expected_infra(rec);
        assert_eq!(by_id.remove(&want.id).as_ref(), Some(&want));
    }
}

//! The layer's capture, queue, worker and guard, with an in-memory writer: what the app
//! thread hands over and what reaches the writer. The same paths against the real
//! Cassandra are in `layer_cassandra.rs`.
#![cfg(feature = "layer")]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logship::layer::{self, CapturedEvent, EventWriter, LayerError, StopSignal, WriteError};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// What the writer saw of one event.
#[derive(Debug, Clone)]
struct Row {
    id: uuid::Uuid,
    level: tracing::Level,
    target: String,
    message: String,
    fields: BTreeMap<String, String>,
    span_fields: BTreeMap<String, String>,
    request_id: Option<String>,
    trace_id: Option<String>,
    line: Option<u32>,
}

/// Collects units; can be told to fail (Cassandra down) or to wait on a gate.
#[derive(Clone, Default)]
struct Memory {
    rows: Arc<Mutex<Vec<Row>>>,
    units: Arc<Mutex<Vec<usize>>>,
    down: Arc<AtomicBool>,
    attempts: Arc<AtomicUsize>,
}

impl Memory {
    fn rows(&self) -> Vec<Row> {
        self.rows.lock().unwrap().clone()
    }
}

impl EventWriter for Memory {
    fn write(&mut self, unit: &[CapturedEvent], _stop: &StopSignal) -> Result<(), WriteError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        let owned = |it: &mut dyn Iterator<Item = (&str, &str)>| {
            it.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        };
        let mut rows = self.rows.lock().unwrap();
        for e in unit {
            rows.push(Row {
                id: e.id(),
                level: e.level(),
                target: e.target().to_owned(),
                message: e.message().to_owned(),
                fields: owned(&mut e.fields()),
                span_fields: owned(&mut e.span_fields()),
                request_id: e.request_id().map(str::to_owned),
                trace_id: e.trace_id().map(str::to_owned),
                line: e.line(),
            });
        }
        self.units.lock().unwrap().push(unit.len());
        Ok(())
    }
}

fn build(b: layer::LayerBuilder, memory: &Memory) -> (Dispatch, layer::FlushGuard) {
    let (layer, guard) = b
        .service("test-app")
        .writer(memory.clone())
        .build()
        .unwrap();
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        guard,
    )
}

#[test]
fn events_carry_their_fields_and_every_enclosing_spans_fields() {
    let memory = Memory::default();
    let (dispatch, guard) = build(layer::builder(), &memory);
    tracing::dispatcher::with_default(&dispatch, || {
        let outer = tracing::info_span!("request", request_id = "req-1", user = 42);
        let _o = outer.enter();
        // A debug span still lends its fields, though only INFO events are shipped.
        let inner = tracing::debug_span!(
            "db",
            table = "orders",
            user = 7,
            trace_id = tracing::field::Empty
        );
        let _i = inner.enter();
        inner.record("trace_id", "tr-9");
        tracing::info!(rows = 3_u64, ok = true, ratio = 0.5, who = %"alice", "query {} done", "orders");
        tracing::debug!("not shipped: below the level");
        tracing::warn!(request_id = "req-override", "event field wins");
    });
    let report = guard.shutdown();
    assert!(report.complete, "{report}");
    let rows = memory.rows();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let r = &rows[0];
    assert_eq!(r.message, "query orders done");
    assert_eq!(r.level, tracing::Level::INFO);
    assert_eq!(r.target, "layer_pipeline");
    assert!(r.line.is_some());
    let f = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        r.fields,
        f(&[
            ("rows", "3"),
            ("ok", "true"),
            ("ratio", "0.5"),
            ("who", "alice")
        ])
    );
    // The inner span's `user` wins over the outer one's; the recorded trace_id is there.
    assert_eq!(
        r.span_fields,
        f(&[
            ("request_id", "req-1"),
            ("user", "7"),
            ("table", "orders"),
            ("trace_id", "tr-9")
        ])
    );
    assert_eq!(r.request_id.as_deref(), Some("req-1"));
    assert_eq!(r.trace_id.as_deref(), Some("tr-9"));
    assert_eq!(rows[1].level, tracing::Level::WARN);
    assert_eq!(rows[1].request_id.as_deref(), Some("req-override"));
    assert_ne!(rows[0].id, rows[1].id);
}

#[test]
fn driver_runtime_and_logship_events_never_enter_the_layer() {
    let memory = Memory::default();
    let (dispatch, guard) = build(layer::builder().exclude_target("noisy"), &memory);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(target: "scylla::network::connection", "driver event");
        tracing::warn!(target: "scylla_cql::frame", "driver event");
        tracing::info!(target: "tokio::task", "runtime event");
        tracing::info!(target: "runtime::resource", "runtime event");
        tracing::error!(target: "logship::sink", "our own event");
        tracing::info!(target: "hyper::proto", "http event");
        tracing::info!(target: "noisy::thing", "excluded by the builder");
        let span = tracing::info_span!(target: "scylla::session", "driver span", secret = "x");
        let _e = span.enter();
        tracing::info!(target: "logshipper", "an app whose name merely starts alike");
    });
    drop(guard);
    let rows = memory.rows();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].target, "logshipper");
    assert!(
        rows[0].span_fields.is_empty(),
        "the driver's span lent its fields"
    );
}

#[test]
fn a_full_buffer_drops_and_counts_then_writes_the_count_as_a_warn_row() {
    let memory = Memory::default();
    memory.down.store(true, Ordering::SeqCst);
    let (dispatch, guard) = build(
        layer::builder()
            .buffer_capacity(100)
            .flush_size(10)
            .linger(Duration::ZERO),
        &memory,
    );
    tracing::dispatcher::with_default(&dispatch, || {
        // The worker takes the first event and keeps failing to write it...
        tracing::info!(i = 0, "event");
        while memory.attempts.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // ...so the buffer holds the next 100 and the rest are dropped.
        for i in 1..1000 {
            tracing::info!(i, "event");
        }
    });
    let stats = guard.stats();
    assert_eq!(stats.dropped, 899, "{stats:?}");
    assert_eq!(stats.queued, 100);
    memory.down.store(false, Ordering::SeqCst);
    let report = guard.shutdown();
    assert!(report.complete, "{report}");
    assert_eq!(report.dropped, 899);
    let rows = memory.rows();
    let events: Vec<_> = rows
        .iter()
        .filter(|r| r.target == "layer_pipeline")
        .collect();
    assert_eq!(events.len(), 101);
    // The survivors are the first 101, in order: the buffer kept them, later ones dropped.
    let seen: Vec<String> = events.iter().map(|r| r.fields["i"].clone()).collect();
    let expected: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
    let warn: Vec<_> = rows
        .iter()
        .filter(|r| r.target == "logship::layer")
        .collect();
    assert_eq!(warn.len(), 1, "{warn:#?}");
    assert_eq!(warn[0].level, tracing::Level::WARN);
    assert_eq!(warn[0].fields["dropped"], "899");
    assert_eq!(warn[0].fields["capacity"], "100");
    assert!(
        warn[0].message.contains("dropped 899"),
        "{}",
        warn[0].message
    );
}

#[test]
fn retried_units_keep_their_row_ids() {
    let memory = Memory::default();
    memory.down.store(true, Ordering::SeqCst);
    let (dispatch, guard) = build(
        layer::builder().flush_size(5).linger(Duration::ZERO),
        &memory,
    );
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..5 {
            tracing::info!(i, "event");
        }
    });
    while memory.attempts.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    memory.down.store(false, Ordering::SeqCst);
    assert!(guard.flush(Duration::from_secs(30)).complete);
    let rows = memory.rows();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().map(|r| r.id).collect::<HashSet<_>>().len(), 5);
    assert_eq!(guard.stats().written, 5);
}

#[test]
fn blocking_mode_waits_instead_of_dropping() {
    let memory = Memory::default();
    let (dispatch, guard) = build(
        layer::builder()
            .blocking(true)
            .buffer_capacity(4)
            .flush_size(2)
            .linger(Duration::ZERO),
        &memory,
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..500 {
                        tracing::info!(t, i, "event");
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = guard.shutdown();
    assert!(report.complete);
    assert_eq!(report.dropped, 0);
    assert_eq!(memory.rows().len(), 2000);
}

#[test]
fn units_hold_at_most_flush_size_events() {
    let memory = Memory::default();
    let (dispatch, guard) = build(layer::builder().flush_size(1000), &memory);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..2500 {
            tracing::info!(i, "event");
        }
    });
    drop(guard);
    let units = memory.units.lock().unwrap().clone();
    assert_eq!(units.iter().sum::<usize>(), 2500);
    assert!(units.iter().all(|&n| n <= 1000), "{units:?}");
}

#[test]
fn dropping_the_guard_flushes_what_is_buffered() {
    let memory = Memory::default();
    // A long linger: only the guard's flush can write these before an hour passes.
    let (dispatch, guard) = build(layer::builder().linger(Duration::from_secs(3600)), &memory);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..10 {
            tracing::info!(i, "event");
        }
    });
    assert!(memory.rows().is_empty());
    drop(guard);
    assert_eq!(memory.rows().len(), 10);
}

#[test]
fn a_flush_that_cannot_finish_gives_up_at_the_timeout_and_says_what_is_left() {
    let memory = Memory::default();
    memory.down.store(true, Ordering::SeqCst);
    let (dispatch, guard) = build(
        layer::builder()
            .flush_size(3)
            .linger(Duration::ZERO)
            .shutdown_timeout(Duration::from_millis(300)),
        &memory,
    );
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..7 {
            tracing::info!(i, "event");
        }
    });
    let report = guard.shutdown();
    assert!(!report.complete);
    assert_eq!(report.written, 0);
    assert_eq!(report.unwritten, 7, "{report:?}");
    assert!(
        report
            .to_string()
            .contains("not written before the flush timeout")
    );
}

#[test]
fn a_field_that_logs_while_it_is_formatted_neither_deadlocks_nor_loses_the_event() {
    struct Chatty;
    impl std::fmt::Debug for Chatty {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // tracing itself discards events dispatched from inside a dispatch.
            tracing::info!(inner = 1, "from inside Debug");
            f.write_str("chatty")
        }
    }
    let memory = Memory::default();
    let (dispatch, guard) = build(layer::builder(), &memory);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(value = ?Chatty, "outer");
    });
    drop(guard);
    let rows = memory.rows();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].message, "outer");
    assert_eq!(rows[0].fields["value"], "chatty");
}

#[test]
fn oversized_events_are_cut_to_the_cap() {
    let memory = Memory::default();
    let (dispatch, guard) = build(layer::builder().max_event_bytes(1024), &memory);
    let big = "x".repeat(5000);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(big = %big, after = 1, "short message");
    });
    drop(guard);
    let rows = memory.rows();
    assert_eq!(rows[0].message, "short message");
    assert_eq!(rows[0].fields["big"].len(), 1024 - "short message".len());
    assert_eq!(rows[0].fields["after"], "", "no room left for later fields");
}

#[test]
fn bad_settings_are_clear_errors_from_build() {
    type S = tracing_subscriber::Registry;
    let err = |b: layer::LayerBuilder| b.build::<S>().map(|_| ()).unwrap_err();
    let msg = |b: layer::LayerBuilder| err(b).to_string();
    assert!(matches!(
        err(layer::builder().writer(Memory::default())),
        LayerError::MissingService
    ));
    assert!(matches!(
        err(layer::builder().service("x")),
        LayerError::MissingCassandra
    ));
    assert!(
        msg(layer::builder()
            .service("bad\nname")
            .writer(Memory::default()))
        .contains("bad\\nname")
    );
    let m = msg(layer::builder()
        .service("x")
        .writer(Memory::default())
        .buffer_capacity(0));
    assert!(m.contains("buffer_capacity is 0"), "{m}");
    let m = msg(layer::builder()
        .service("x")
        .writer(Memory::default())
        .buffer_capacity(10)
        .flush_size(20));
    assert!(m.contains("flush_size is 20"), "{m}");
    let m = msg(layer::builder()
        .service("x")
        .writer(Memory::default())
        .ttl(Duration::from_millis(1500)));
    assert!(m.contains("ttl is 1.5s; expected whole seconds"), "{m}");
    let no_hosts = layer::CassandraConfig {
        contact_points: vec![],
        ..Default::default()
    };
    let m = msg(layer::builder().service("x").cassandra(no_hosts));
    assert!(m.contains("contact_points is empty"), "{m}");
}

#[test]
fn build_succeeds_while_cassandra_is_unreachable() {
    // Nothing listens on port 1: the worker keeps retrying; the app is not held up.
    let config = layer::CassandraConfig {
        contact_points: vec!["127.0.0.1:1".into()],
        ..Default::default()
    };
    let (layer, guard) = layer::builder()
        .service("x")
        .cassandra(config)
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("kept in the buffer"));
    let report = guard.shutdown();
    assert!(!report.complete);
    assert_eq!(report.unwritten, 1, "{report:?}");
}

#[cfg(feature = "agent")]
#[test]
fn the_agents_config_file_gives_the_cassandra_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logship.toml");
    std::fs::write(
        &path,
        "[cassandra]\ncontact_points = [\"127.0.0.1\"]\nport = 1\n",
    )
    .unwrap();
    let (layer, guard) = layer::builder()
        .service("x")
        .agent_config(&path)
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("buffered"));
    // Port 1 refuses: the settings came from the file.
    assert!(!guard.shutdown().complete);

    std::fs::write(&path, "[cassandra]\ncontact_pionts = [\"x\"]\n").unwrap();
    let err = layer::builder()
        .service("x")
        .agent_config(&path)
        .build::<tracing_subscriber::Registry>()
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, LayerError::AgentConfig(_)), "{err:?}");
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("logship.toml:2"), "{chain}");
}

//! Shared by the `layer_*` tests that need the real Cassandra: starting the project's node,
//! a test keyspace, reading `application_logs` back, and a TCP proxy that can play dead.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures::TryStreamExt as _;
use logship::sink::{CassandraConfig, Placement, schema};
use scylla::client::session::Session;
use scylla::value::CqlTimestamp;
use uuid::Uuid;

// The one way tests start a node (and the one skip rule, `prereq`).
#[path = "cassandra.rs"]
mod node;

pub(crate) const KEYSPACE: &str = "logship_layer_test";
pub(crate) const HOST: &str = "layer-test-host";
/// Partitions one day wide: a test's rows are in one or two partitions (midnight).
pub(crate) const BUCKET: Duration = Duration::from_secs(86_400);

/// The tests share one node and one keyspace: they run one at a time.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the project's local node (once per test process, `support::cassandra`) and
/// applies the schema to the test keyspace. `None` (with a visible `SKIPPED` line) when
/// Cassandra cannot be started, except under `CI=true`, where that fails the test.
pub(crate) fn cassandra() -> Option<CassandraConfig> {
    static SCHEMA: OnceLock<()> = OnceLock::new();
    node::default_node()?;
    SCHEMA.get_or_init(|| {
        let config = config();
        block_on(async {
            let session = logship::sink::session::connect(&config)
                .await
                .expect("connect");
            schema::apply(&session, &config)
                .await
                .expect("schema apply");
        });
    });
    Some(config())
}

/// Settings for the local node and the test keyspace.
pub(crate) fn config() -> CassandraConfig {
    CassandraConfig {
        contact_points: vec!["127.0.0.1".into()],
        port: 9042,
        keyspace: KEYSPACE.into(),
        connect_timeout: Duration::from_secs(2),
        ..CassandraConfig::default()
    }
}

pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(fut)
}

/// A row of `application_logs` as the tests look at it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub id: Uuid,
    pub ts: i64,
    pub level: String,
    pub target: String,
    pub module: Option<String>,
    pub line: Option<i32>,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub span_fields: BTreeMap<String, String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub ttl: Option<i32>,
}

type RawRow = (
    Uuid,
    CqlTimestamp,
    String,
    String,
    Option<String>,
    Option<i32>,
    String,
    Option<BTreeMap<String, String>>,
    Option<BTreeMap<String, String>>,
    Option<String>,
    Option<String>,
    Option<i32>,
);

/// Every row of `service` on [`HOST`] written between `from` and `to` (UTC days).
pub(crate) fn read_rows(
    service: &str,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
) -> Vec<StoredRow> {
    let config = config();
    let first = Placement::of(from, BUCKET).day.0;
    let last = Placement::of(to, BUCKET).day.0;
    block_on(async {
        let session: Session = logship::sink::session::connect(&config)
            .await
            .expect("connect");
        let mut rows = Vec::new();
        for day in first..=last {
            let query = format!(
                "SELECT id, ts, level, target, module, line, message, fields, span_fields, \
                 request_id, trace_id, TTL(message) FROM {KEYSPACE}.application_logs \
                 WHERE service = ? AND host = ? AND day = ? AND bucket = 0"
            );
            let mut stream = session
                .query_iter(query, (service, HOST, scylla::value::CqlDate(day)))
                .await
                .expect("query")
                .rows_stream::<RawRow>()
                .expect("row type");
            while let Some(r) = stream.try_next().await.expect("read") {
                rows.push(StoredRow {
                    id: r.0,
                    ts: r.1.0,
                    level: r.2,
                    target: r.3,
                    module: r.4,
                    line: r.5,
                    message: r.6,
                    fields: r.7.unwrap_or_default(),
                    span_fields: r.8.unwrap_or_default(),
                    request_id: r.9,
                    trace_id: r.10,
                    ttl: r.11,
                });
            }
        }
        rows
    })
}

/// A unique service name per test run, so runs never see each other's rows.
pub(crate) fn service(name: &str) -> String {
    format!("{name}-{}", Uuid::new_v4().simple())
}

/// A TCP proxy in front of the real node: it closes every connection until [`up`] is
/// called, then forwards them to 127.0.0.1:9042. Only the network path plays dead;
/// Cassandra itself stays real.
pub(crate) struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    pub(crate) fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let up = Arc::new(AtomicBool::new(false));
        let forward = Arc::clone(&up);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !forward.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect("127.0.0.1:9042") else {
                    continue;
                };
                let _ = pipe(client, server);
            }
        });
        Proxy { port, up }
    }

    pub(crate) fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(client: TcpStream, server: TcpStream) -> io::Result<()> {
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let (mut s_read, mut c_write) = (server, client);
    std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = io::copy(&mut s_read, &mut c_write);
        let _ = c_write.shutdown(Shutdown::Write);
    });
    Ok(())
}

/// Resident memory of this process, in bytes.
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident");
    pages * 4096
}

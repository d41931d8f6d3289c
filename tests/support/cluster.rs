//! The project's three-node cluster for the `cluster_*` tests: `scripts/cassandra --profile
//! cluster` (127.0.0.1-3:9242, datacenter dc1), a keyspace at RF 3, node kills and restarts,
//! reads at `ALL`, and the timing helpers the tests report with.
//!
//! Included with `mod support; #[path = "support/agent.rs"] mod agent;
//! #[path = "support/cluster.rs"] mod cluster;` (it builds an `agent::Db` over the cluster).
//! The tests of one binary share the cluster and kill its nodes, so each holds
//! [`Cluster::lock`] for its whole run; every test starts by bringing all three nodes up.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use logship::sink::{CassandraConfig, Consistency, Replication};

use crate::agent::Db;
use crate::support::cassandra::{Node, script, unique_keyspace};
use crate::support::records::{InfraRow, read_all_infra};

/// Native port of every node of the cluster profile.
pub(crate) const PORT: u16 = 9242;
pub(crate) const DATACENTER: &str = "dc1";
pub(crate) const NODES: [u8; 3] = [1, 2, 3];

/// The running cluster.
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// `system.log` of node 1, 2, 3.
    pub logs: Vec<PathBuf>,
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = script(args).map_err(|e| format!("cannot run scripts/cassandra: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "scripts/cassandra {} failed:\n{text}",
            args.join(" ")
        ))
    }
}

fn run_ok(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("{e}"))
}

impl Cluster {
    /// Takes the cluster for one test: waits for the other tests of this binary to finish
    /// with it, then starts whatever node is down (a failed test may have left one down)
    /// and waits until all three are Up/Normal. `None` (the test returns) when the cluster
    /// cannot start outside CI; under `CI=true` that fails the test.
    pub(crate) fn lock() -> Option<(Cluster, MutexGuard<'static, ()>)> {
        static LOCK: Mutex<()> = Mutex::new(());
        static FIRST: OnceLock<Result<(), String>> = OnceLock::new();
        let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let started = FIRST.get_or_init(|| {
            run(&["start", "--profile", "cluster"])?;
            drop_old_keyspaces();
            Ok(())
        });
        match started {
            Ok(()) => {}
            Err(e) => {
                // The one rule: fails under CI=true, a visible SKIPPED line otherwise.
                crate::support::prereq::skip(&format!(
                    "the Cassandra cluster is not available: {e}"
                ));
                return None;
            }
        }
        // Idempotent: reuses the nodes that are up, restarts any a failed test left down.
        run_ok(&["start", "--profile", "cluster"]);
        let logs = NODES
            .iter()
            .map(|n| {
                PathBuf::from(format!(
                    "{}/cluster/node{n}/logs/system.log",
                    std::env::var("LOGSHIP_CASSANDRA_RUN")
                        .unwrap_or_else(|_| "/tmp/logship-cassandra".into())
                ))
            })
            .collect();
        Some((Cluster { logs }, guard))
    }

    /// `host` of node `n`.
    pub(crate) fn host(n: u8) -> String {
        format!("127.0.0.{n}")
    }

    /// The sink settings for `keyspace` on this cluster: all three contact points, dc1,
    /// RF 3, `LOCAL_QUORUM` and the product's default retry pacing (what is under test).
    pub(crate) fn config(&self, keyspace: &str) -> CassandraConfig {
        CassandraConfig {
            contact_points: NODES.iter().map(|n| Cluster::host(*n)).collect(),
            port: PORT,
            keyspace: keyspace.to_owned(),
            replication: Replication::NetworkTopologyStrategy {
                datacenters: BTreeMap::from([(DATACENTER.to_owned(), 3)]),
            },
            local_datacenter: Some(DATACENTER.to_owned()),
            consistency: Consistency::LocalQuorum,
            ..CassandraConfig::default()
        }
    }

    /// The agent's `[cassandra]` section for `keyspace`, contact points in `order`.
    pub(crate) fn cassandra_toml(&self, keyspace: &str, order: &[u8]) -> String {
        let points: Vec<String> = order
            .iter()
            .map(|n| format!("\"{}\"", Cluster::host(*n)))
            .collect();
        format!(
            "[cassandra]\ncontact_points = [{}]\nport = {PORT}\nkeyspace = \"{keyspace}\"\n\
             local_datacenter = \"{DATACENTER}\"\nconsistency = \"LOCAL_QUORUM\"\n\
             replication = {{ class = \"NetworkTopologyStrategy\", datacenters = {{ {DATACENTER} = 3 }} }}\n\n",
            points.join(", ")
        )
    }

    /// A fresh keyspace at RF 3 with the schema applied, and a session reading it at
    /// `LOCAL_QUORUM` (as `agent::Db`, so its row helpers work on the cluster).
    pub(crate) fn db(&self, prefix: &str) -> Db {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let keyspace = unique_keyspace(prefix);
        let session = rt.block_on(apply_schema_patiently(&self.config(&keyspace)));
        Db {
            rt,
            session,
            keyspace,
            node: Node {
                profile: "cluster",
                host: Cluster::host(1),
                port: PORT,
                datacenter: DATACENTER.to_owned(),
                ca_cert: None,
                username: None,
                password: None,
                password_file: None,
                superuser: None,
                log: self.logs[0].clone(),
            },
        }
    }

    /// Every row of `keyspace.infrastructure_logs`, read at consistency `ALL`: every
    /// replica must answer, so this fails while a node is down.
    pub(crate) fn rows_at_all(&self, keyspace: &str) -> Vec<InfraRow> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut config = self.config(keyspace);
        config.consistency = Consistency::All;
        rt.block_on(async {
            let session = logship::sink::session::connect(&config)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
            read_all_infra(&session, keyspace).await
        })
    }

    /// `kill -9` node `n` (its commit log is synced in group mode: it loses nothing it
    /// acknowledged).
    pub(crate) fn kill9(&self, n: u8) {
        run_ok(&["kill9", "--profile", "cluster", "--node", &n.to_string()]);
    }

    /// Starts node `n`; returns once every running node sees every running node Up/Normal.
    pub(crate) fn start(&self, n: u8) {
        run_ok(&["start", "--profile", "cluster", "--node", &n.to_string()]);
    }

    /// Stops node `n` with SIGTERM (a clean shutdown, as in a rolling restart).
    pub(crate) fn stop(&self, n: u8) {
        run_ok(&["stop", "--profile", "cluster", "--node", &n.to_string()]);
    }

    /// `nodetool <args>` on node `n`.
    pub(crate) fn nodetool(&self, n: u8, args: &[&str]) -> String {
        let mut all = vec!["nodetool", "--profile", "cluster", "--node"];
        let node = n.to_string();
        all.push(&node);
        all.extend_from_slice(args);
        run_ok(&all)
    }

    /// Waits until no running node holds hints (`nodetool listpendinghints`), i.e. the
    /// writes a killed node missed have been handed to it; panics after `timeout`.
    pub(crate) fn wait_hints_delivered(&self, nodes: &[u8], timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let pending: Vec<(u8, String)> = nodes
                .iter()
                .map(|n| (*n, self.nodetool(*n, &["listpendinghints"])))
                .filter(|(_, out)| !out.contains("does not have any pending hints"))
                .collect();
            if pending.is_empty() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "hints still pending after {timeout:?}: {pending:?}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// When `observer` first logged node `n` coming up after `after` ("InetAddress
    /// /127.0.0.N:7002 is now UP"): the moment the cluster had that replica back.
    pub(crate) fn seen_up_at(
        &self,
        observer: u8,
        n: u8,
        after: jiff::Timestamp,
    ) -> Option<jiff::Timestamp> {
        let text = std::fs::read_to_string(&self.logs[usize::from(observer) - 1]).ok()?;
        let needle = format!("/127.0.0.{n}:7002 is now UP");
        text.lines()
            .filter(|l| l.contains(&needle))
            .filter_map(log_time)
            .find(|t| *t > after)
    }
}

/// Drops the keyspaces earlier cluster test processes left (`t_cl_*`), once per process:
/// the nodes' small heaps should not carry every past run's tables and indexes. The test
/// binaries of one `cargo test` run one after another, so none is in use.
fn drop_old_keyspaces() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let config = CassandraConfig {
        contact_points: NODES.iter().map(|n| Cluster::host(*n)).collect(),
        port: PORT,
        local_datacenter: Some(DATACENTER.to_owned()),
        ..CassandraConfig::default()
    };
    rt.block_on(async {
        let session = logship::sink::session::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let mut names: Vec<String> = Vec::new();
        match session
            .query_iter("SELECT keyspace_name FROM system_schema.keyspaces", ())
            .await
            .map(|pager| pager.rows_stream::<(String,)>())
        {
            Ok(Ok(mut rows)) => {
                while let Ok(Some((name,))) = rows.try_next().await {
                    names.push(name);
                }
            }
            Ok(Err(e)) => eprintln!("NOTICE: cannot list keyspaces: {e}"),
            Err(e) => eprintln!("NOTICE: cannot list keyspaces: {e}"),
        }
        for ks in names.iter().filter(|k| k.starts_with("t_cl_")) {
            let mut stmt =
                scylla::statement::Statement::new(format!("DROP KEYSPACE IF EXISTS {ks}"));
            stmt.set_request_timeout(Some(Duration::from_secs(60)));
            if let Err(e) = session.query_unpaged(stmt, ()).await {
                eprintln!("NOTICE: could not drop {ks}: {e}");
            }
        }
    });
}

/// The timestamp of a Cassandra log line (`INFO  [thread] 2026-11-30 17:28:03,766 ...`,
/// in the machine's time zone).
fn log_time(line: &str) -> Option<jiff::Timestamp> {
    let rest = line.split("] ").nth(1)?;
    let stamp = rest.get(..23)?.replace(',', ".");
    let civil: jiff::civil::DateTime = stamp.parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::system())
        .ok()
        .map(|z| z.timestamp())
}

/// Percentile `p` (0-100) of `samples`, nearest rank; zero when empty.
pub(crate) fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 1-minute load average, for the numbers the tests print.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Resident memory of process `pid` in bytes (`VmRSS`).
pub(crate) fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Applies the schema, and again while the nodes do not agree on it yet: after a node's
/// restart, schema agreement can take longer than the driver's 60 s wait when three JVMs
/// share two cores. The statements are `IF NOT EXISTS`, so a repeat is harmless.
async fn apply_schema_patiently(config: &CassandraConfig) -> scylla::client::session::Session {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let attempt = async {
            let session = logship::sink::session::connect(config)
                .await
                .map_err(|e| format!("{e:#}"))?;
            logship::sink::schema::apply(&session, config)
                .await
                .map_err(|e| format!("{e:#}"))?;
            Ok::<_, String>(session)
        }
        .await;
        match attempt {
            Ok(session) => return session,
            Err(e) if Instant::now() < deadline => {
                eprintln!("NOTICE: the cluster took no schema yet ({e}); trying again in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Err(e) => panic!("the cluster took no schema for 300 s: {e}"),
        }
    }
}

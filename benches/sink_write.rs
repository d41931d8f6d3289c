//! CassandraSink benchmark against the local node (`scripts/bench-sink` or
//! `cargo bench --bench sink_write`): rows/s from pre-parsed records, the agent's CPU per
//! 1000 rows, the latency of one 1000-record unit (p50/p99), for concurrent prepared
//! inserts and for single-partition unlogged batches, one unit in flight (the daemon's
//! pattern: a unit is acknowledged before the next is sent) and four.
//!
//! Env: `SINK_BENCH_UNITS` (units per run, default 200), `SINK_BENCH_MODES`
//! (`concurrent,unlogged_batch`), `SINK_BENCH_CONCURRENCY` (in-flight requests, 128).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use logship::pipeline::{FileId, FileRecord};
use logship::sink::{CassandraConfig, CassandraSink, SinkOptions, WriteMode};
use support::cassandra::{apply_schema, default_node, unique_keyspace};
use support::records::{file_records, route};

/// User and system CPU time of a process, from /proc (clock ticks of 10 ms).
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after "state".
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn cassandra_pid() -> Option<String> {
    let run =
        std::env::var("LOGSHIP_CASSANDRA_RUN").unwrap_or_else(|_| "/tmp/logship-cassandra".into());
    std::fs::read_to_string(format!("{run}/default/cassandra.pid"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Run {
    label: String,
    rows: usize,
    wall: Duration,
    agent_cpu: Duration,
    server_cpu: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn print(&self) {
        let rows_per_s = self.rows as f64 / self.wall.as_secs_f64();
        let per_k = |d: Duration| d.as_secs_f64() * 1000.0 / (self.rows as f64 / 1000.0);
        println!(
            "{:<34} {:>9.0} rows/s   agent CPU {:>6.2} ms/1000 rows   server CPU {:>6.1} ms/1000 rows   unit p50 {:>6.1} ms  p99 {:>6.1} ms",
            self.label,
            rows_per_s,
            per_k(self.agent_cpu),
            per_k(self.server_cpu),
            percentile(&self.latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1000.0,
        );
    }
}

async fn run(
    sink: &CassandraSink,
    units: &[Vec<FileRecord>],
    in_flight: usize,
    label: String,
) -> Run {
    let server = cassandra_pid();
    let server_cpu = || server.as_deref().map_or(Duration::ZERO, cpu_time);
    let (agent0, server0, t0) = (cpu_time("self"), server_cpu(), Instant::now());
    let mut latencies = Vec::with_capacity(units.len());
    for group in units.chunks(in_flight) {
        let writes = group.iter().map(|unit| async move {
            let start = Instant::now();
            sink.write_file_unit(unit)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
            start.elapsed()
        });
        latencies.extend(futures::future::join_all(writes).await);
    }
    let wall = t0.elapsed();
    latencies.sort();
    Run {
        label,
        rows: units.iter().map(Vec::len).sum(),
        wall,
        agent_cpu: cpu_time("self").saturating_sub(agent0),
        server_cpu: server_cpu().saturating_sub(server0),
        latencies,
    }
}

fn main() {
    let env_usize = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n_units = env_usize("SINK_BENCH_UNITS", 200);
    let concurrency = env_usize("SINK_BENCH_CONCURRENCY", 128);
    let modes =
        std::env::var("SINK_BENCH_MODES").unwrap_or_else(|_| "concurrent,unlogged_batch".into());
    let Some(node) = default_node() else {
        eprintln!("no Cassandra: nothing to measure");
        std::process::exit(1);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ks = unique_keyspace("bench");
    println!(
        "sink benchmark: {n_units} units of 1000 pre-parsed records per run, {concurrency} requests in flight, keyspace {ks}"
    );

    // Ten files as in production: 3 sources on several hosts, 60 s to 1 h buckets.
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(6 * 3600);
    let sources = [
        ("nginx", "web1", 60),
        ("nginx", "web2", 60),
        ("nginx", "web3", 600),
        ("syslog", "web1", 3600),
        ("syslog", "db1", 3600),
        ("postgres", "db1", 3600),
    ];
    let per_file = n_units * 1000 / sources.len() + 1;
    let make = |seed: u64| -> Vec<Vec<FileRecord>> {
        let mut all = Vec::new();
        for (i, (source, host, bucket)) in sources.iter().enumerate() {
            let r = route(source, None, Duration::from_secs(*bucket));
            let file = FileId {
                dev: seed,
                inode: i as u64,
                fingerprint: seed * 1000 + i as u64,
            };
            all.push(file_records(
                &r,
                host,
                file,
                start,
                Duration::from_millis(5),
                per_file,
                seed + i as u64,
            ));
        }
        // Interleave the files line by line, as a busy host's tailers would fill the queue.
        let mut mixed = Vec::with_capacity(n_units * 1000);
        for j in 0..per_file {
            for f in &all {
                if let Some(r) = f.get(j) {
                    mixed.push(r.clone());
                }
            }
        }
        mixed.truncate(n_units * 1000);
        mixed.chunks(1000).map(<[FileRecord]>::to_vec).collect()
    };

    rt.block_on(async {
        let base = node.config(&ks);
        apply_schema(&base).await;
        let mut seed = 1;
        for mode in modes.split(',') {
            let write_mode = match mode.trim() {
                "concurrent" => WriteMode::Concurrent,
                "unlogged_batch" => WriteMode::UnloggedBatch,
                other => panic!("unknown mode {other}"),
            };
            let config = CassandraConfig {
                write_mode,
                request_concurrency: concurrency,
                ..base.clone()
            };
            let sink = CassandraSink::connect(&config, SinkOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
            let warm = make(1000 + seed);
            run(&sink, &warm[..warm.len().min(20)], 1, String::new()).await;
            for in_flight in [1, 4] {
                seed += 100;
                let units = Arc::new(make(seed));
                let r = run(
                    &sink,
                    &units,
                    in_flight,
                    format!("{mode}, {in_flight} unit(s) in flight"),
                )
                .await;
                r.print();
            }
        }
    });
}

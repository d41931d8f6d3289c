//! `logship run` against the three-node cluster (`scripts/cassandra --profile cluster`,
//! RF 3, `LOCAL_QUORUM`, the default retry pacing) while nodes die: one node killed with
//! kill -9 and restarted, two of three killed (quorum lost) and brought back, a rolling
//! restart of all three during which a second agent starts with its first contact point
//! down. Each agent ships nginx lines written at a steady rate; every line is read back
//! exactly once.
//!
//! The tests share one cluster and take turns (`Cluster::lock`). The health assertions of
//! the quorum-loss test follow contract K1 (`/health` 503 after `stall_after`, naming what
//! Cassandra said; one WARN and one INFO); they are checked last, after the data checks.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent::{Agent, Db, Source, Workspace, assert_exactly_once, nginx_line, wait_until};
use cluster::{Cluster, load_average, rss_bytes};

const ROWS_WRITTEN: &str = "logship_rows_written_total{table=\"infrastructure_logs\"}";
/// Lines per tick of the writer, one tick every 100 ms: 500 lines/s.
const LINES_PER_TICK: u64 = 50;

/// A web server's log: `LINES_PER_TICK` lines every 100 ms until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    handle: JoinHandle<()>,
}

impl Writer {
    fn start(path: &Path) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, written, path) = (Arc::clone(&stop), Arc::clone(&written), path.to_owned());
            std::thread::spawn(move || {
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .expect("open the log");
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let chunk: String = (n..n + LINES_PER_TICK).map(nginx_line).collect();
                    f.write_all(chunk.as_bytes()).expect("append lines");
                    n += LINES_PER_TICK;
                    written.store(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Writer {
            stop,
            written,
            handle,
        }
    }

    /// Stops writing; returns how many lines were written.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("writer thread");
        self.written.load(Ordering::SeqCst)
    }
}

/// Samples the agent's acknowledged-rows counter every 100 ms, to time stalls and the
/// first acknowledgement after a recovery (the rows themselves are counted in Cassandra).
struct AckSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Instant, f64)>>,
}

impl AckSampler {
    fn start(metrics_port: u16) -> AckSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Some((200, body)) = agent::http_get(metrics_port, "/metrics") {
                        if let Some(v) = agent::metric_value(&body, ROWS_WRITTEN) {
                            samples.push((Instant::now(), v));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                samples
            })
        };
        AckSampler { stop, handle }
    }

    fn finish(self) -> Acks {
        self.stop.store(true, Ordering::SeqCst);
        Acks(self.handle.join().expect("sampler thread"))
    }
}

/// (when, rows acknowledged so far) samples.
struct Acks(Vec<(Instant, f64)>);

impl Acks {
    /// The moments the counter moved.
    fn advances(&self) -> Vec<Instant> {
        self.0
            .windows(2)
            .filter(|w| w[1].1 > w[0].1)
            .map(|w| w[1].0)
            .collect()
    }

    /// The longest time without an acknowledgement between `from` and `to`.
    fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut points = vec![from];
        points.extend(self.advances().into_iter().filter(|t| *t > from && *t < to));
        points.push(to);
        points
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }

    /// The first acknowledgement after `t`.
    fn first_after(&self, t: Instant) -> Option<Instant> {
        self.advances().into_iter().find(|a| *a > t)
    }
}

/// A workspace whose agent ships `logs/app.log` to `db` on the cluster.
fn workspace(cluster: &Cluster, db: &Db, name: &str, order: &[u8], extra: &str) -> Workspace {
    let ws = Workspace::new(name);
    let mut extra_toml = cluster.cassandra_toml(&db.keyspace, order);
    extra_toml.push_str(extra);
    ws.write_config(
        None,
        &extra_toml,
        &[Source::nginx("app", &ws.log("app.log"))],
    );
    ws
}

fn checkpoints(ws: &Workspace) -> PathBuf {
    ws.path().join("data").join("checkpoints.json")
}

/// Waits until every one of `total` lines is in Cassandra (read at LOCAL_QUORUM), then
/// checks each is there exactly once.
fn assert_all_shipped(db: &Db, ws: &Workspace, total: u64, what: &str) {
    db.wait_rows("app", &ws.host, total as usize);
    assert_exactly_once(&db.rows_of("app", &ws.host), total, what);
}

/// One `LOCAL_QUORUM` insert into the test keyspace's scratch table; true if acknowledged.
fn quorum_write(db: &Db) -> bool {
    let mut insert = scylla::statement::Statement::new(format!(
        "INSERT INTO {}.quorum_probe (k) VALUES (1)",
        db.keyspace
    ));
    insert.set_consistency(scylla::statement::Consistency::LocalQuorum);
    insert.set_request_timeout(Some(Duration::from_secs(3)));
    db.rt.block_on(db.session.query_unpaged(insert, ())).is_ok()
}

fn stop_agent(mut agent: Agent) {
    agent.signal(libc::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(45));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", agent.stderr());
}

#[test]
fn one_node_killed_mid_stream_and_restarted_loses_and_repeats_nothing() {
    let Some((cluster, _turn)) = Cluster::lock() else {
        return;
    };
    let db = cluster.db("cl_kill1");
    let ws = workspace(&cluster, &db, "cl-kill1", &[1, 2, 3], "");
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let acks = AckSampler::start(agent.metrics_port);
    let writer = Writer::start(&ws.log("app.log"));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));

    // Node 1 is the first contact point: the driver's control connection is on it.
    let killed_at = Instant::now();
    cluster.kill9(1);
    std::thread::sleep(Duration::from_secs(5));
    cluster.start(1);
    let back_at = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let total = writer.finish();
    let stopped_at = Instant::now();
    assert_all_shipped(
        &db,
        &ws,
        total,
        "one node killed and restarted (LOCAL_QUORUM)",
    );
    let acks = acks.finish();

    let stall = acks.longest_gap(t0 + Duration::from_secs(2), stopped_at);
    eprintln!(
        "cluster kill -9 of node 1: {total} lines; longest time without an acknowledgement \
         {stall:?} (node down {:?}); load {}",
        back_at - killed_at,
        load_average()
    );
    assert!(
        stall <= Duration::from_secs(4),
        "writes stalled for {stall:?} while one node of three was down"
    );

    // Every replica has every row once the hints held for node 1 are delivered.
    let took = cluster.wait_hints_delivered(&[2, 3], Duration::from_secs(90));
    eprintln!("hints for node 1 delivered {took:?} after the check started");
    let rows = cluster.rows_at_all(&db.keyspace);
    assert_exactly_once(&rows, total, "read at ALL after the hints were delivered");
    stop_agent(agent);
}

#[test]
fn two_of_three_killed_the_agent_holds_reports_and_resumes_when_quorum_returns() {
    let Some((cluster, _turn)) = Cluster::lock() else {
        return;
    };
    const CAPACITY: u64 = 2000;
    let db = cluster.db("cl_quorum");
    db.rt
        .block_on(db.session.query_unpaged(
            format!(
                "CREATE TABLE {}.quorum_probe (k int PRIMARY KEY)",
                db.keyspace
            ),
            (),
        ))
        .expect("create the probe table");
    let ws = workspace(
        &cluster,
        &db,
        "cl-quorum",
        &[1, 2, 3],
        &format!("[buffer]\ncapacity = {CAPACITY}\n\n"),
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let acks = AckSampler::start(agent.metrics_port);
    let writer = Writer::start(&ws.log("app.log"));
    std::thread::sleep(Duration::from_secs(3));

    let killed_at = Instant::now();
    let killed_ts = jiff::Timestamp::now();
    cluster.kill9(2);
    cluster.kill9(3);

    // /health turns 503 once records wait longer than stall_after (default 5 s).
    let (unhealthy_after, body) =
        wait_until(Duration::from_secs(40), "/health 503", || {
            match agent.get("/health") {
                Some((503, body)) => Some((killed_at.elapsed(), body)),
                _ => None,
            }
        });
    let stalled_at = Instant::now();
    eprintln!("quorum lost: /health 503 after {unhealthy_after:?}: {body}");

    // Holding: nothing is acknowledged, so no checkpoint moves, and memory stays bounded
    // although the writer keeps appending (the file is the buffer).
    std::thread::sleep(Duration::from_secs(1));
    let before = std::fs::read(checkpoints(&ws)).expect("checkpoints.json exists");
    let mut max_rss = 0;
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_secs(5) {
        max_rss = max_rss.max(rss_bytes(agent.pid()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = std::fs::read(checkpoints(&ws)).expect("checkpoints.json exists");
    assert_eq!(
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&after),
        "a checkpoint advanced while no write could be acknowledged"
    );
    let written_during = writer.written.load(Ordering::SeqCst);
    let depth = agent.metric("logship_buffer_depth{}").unwrap_or(0.0);
    assert!(
        depth <= CAPACITY as f64,
        "buffer depth {depth} over capacity"
    );
    assert!(
        max_rss < 80 << 20,
        "the agent's RSS reached {max_rss} bytes while quorum was lost"
    );

    // Quorum returns with node 2. The test's own LOCAL_QUORUM write, tried every 200 ms,
    // tells when the cluster takes writes again: the moment the agent should resume from.
    let restart = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            cluster.start(2);
            Instant::now()
        })
    };
    let writable_at = wait_until(
        Duration::from_secs(240),
        "a quorum write to succeed",
        || quorum_write(&db).then(Instant::now),
    );
    let back_at = restart.join().expect("restart thread");
    let healthy_after = wait_until(Duration::from_secs(60), "/health 200 again", || {
        matches!(agent.get("/health"), Some((200, _))).then(|| back_at.elapsed())
    });
    cluster.start(3);
    std::thread::sleep(Duration::from_secs(2));
    let total = writer.finish();
    assert_all_shipped(&db, &ws, total, "quorum lost and regained");
    let acks = acks.finish();
    let first_ack = acks
        .first_after(stalled_at)
        .expect("an acknowledgement after quorum returned");
    let last_ack = acks
        .advances()
        .into_iter()
        .rfind(|a| *a < stalled_at)
        .expect("acknowledgements before the kill");
    let stderr = agent.stderr();
    stop_agent(agent);

    // Timing, measured from the moment the restarted node's peers logged it Up (the
    // quorum is back then) and from `scripts/cassandra start --node 2` returning.
    let seen_up = cluster.seen_up_at(1, 2, killed_ts);
    let ack_wall = jiff::Timestamp::now()
        - jiff::SignedDuration::try_from(Instant::now() - first_ack).unwrap_or_default();
    let from_up = seen_up.map(|t| ack_wall.duration_since(t));
    let resumed_after_start = first_ack.saturating_duration_since(back_at);
    let resumed_after_writable = first_ack.saturating_duration_since(writable_at);
    let resumed_after_up = from_up.and_then(|d| Duration::try_from(d).ok());
    eprintln!(
        "quorum back: first acknowledgement {resumed_after_writable:?} after the cluster took \
         the test's quorum write, {resumed_after_start:?} after the restart script \
         returned, {from_up:?} after node 1 logged node 2 Up; /health 200 after \
         {healthy_after:?}; {written_during} lines written during the outage, max agent RSS \
         {:.1} MiB; load {}",
        max_rss as f64 / (1 << 20) as f64,
        load_average()
    );

    // K1 (health and logs that tell the truth), checked after the data.
    assert!(
        unhealthy_after <= Duration::from_secs(10),
        "/health said 503 only {unhealthy_after:?} after quorum was lost"
    );
    let health: serde_json::Value = serde_json::from_str(&body).expect("/health JSON");
    let reasons: Vec<String> = health["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let stalled = reasons
        .iter()
        .find(|r| r.starts_with("writes stalled for"))
        .unwrap_or_else(|| panic!("no \"writes stalled for\" reason: {body}"));
    let lower = stalled.to_ascii_lowercase();
    assert!(
        lower.contains("unavailable") || lower.contains("timeout") || lower.contains("timed out"),
        "the reason does not say what Cassandra answered: {stalled}"
    );
    assert!(
        resumed_after_writable <= Duration::from_secs(5),
        "writes resumed {resumed_after_writable:?} after the cluster took writes again \
         ({resumed_after_up:?} after node 2 was logged Up)"
    );
    assert_eq!(
        stderr.matches("writes stopped making progress").count(),
        1,
        "one WARN when the stall starts; stderr:\n{stderr}"
    );
    let resumed: Vec<f64> = stderr
        .match_indices("writes resumed after ")
        .filter_map(|(i, m)| {
            let rest = &stderr[i + m.len()..];
            rest.split(" s").next()?.trim().parse().ok()
        })
        .collect();
    assert_eq!(
        resumed.len(),
        1,
        "one INFO when writes resume; stderr:\n{stderr}"
    );
    // The outage as the acknowledgements saw it: from the last one before the stall to
    // the first after (sampled every 100 ms; the log rounds).
    let outage = (first_ack - last_ack).as_secs_f64();
    assert!(
        (resumed[0] - outage).abs() <= 2.0,
        "\"writes resumed after {} s\" but acknowledgements stopped for {outage:.1} s",
        resumed[0]
    );
}

/// Also the agent started with its first contact point down: a second agent starts while
/// node 1 is stopped for its turn, and ships through the rest of the rolling restart.
#[test]
fn a_rolling_restart_of_all_three_nodes_during_shipping_loses_and_repeats_nothing() {
    let Some((cluster, _turn)) = Cluster::lock() else {
        return;
    };
    let db = cluster.db("cl_rolling");
    let ws = workspace(&cluster, &db, "cl-rolling", &[1, 2, 3], "");
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let writer = Writer::start(&ws.log("app.log"));
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    let mut late = None;
    for n in cluster::NODES {
        cluster.stop(n);
        if n == 1 {
            // Node 1, the first contact point, is down (stopped cleanly, so its peers
            // know): an agent starting now must find the cluster through the others.
            let ws = workspace(&cluster, &db, "cl-contact", &[1, 2, 3], "");
            let mut agent = ws.spawn(&[]);
            let started = Instant::now();
            agent.wait_ready();
            eprintln!(
                "an agent started with 127.0.0.1 down was ready after {:?}",
                started.elapsed()
            );
            let writer = Writer::start(&ws.log("app.log"));
            late = Some((ws, agent, writer));
        }
        cluster.start(n);
    }
    let rolled = t0.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let total = writer.finish();
    let (late_ws, late_agent, late_writer) = late.expect("the agent started during node 1's turn");
    let late_total = late_writer.finish();
    assert_all_shipped(&db, &ws, total, "rolling restart");
    assert_all_shipped(
        &db,
        &late_ws,
        late_total,
        "agent started with its first contact point down, then the rolling restart",
    );
    eprintln!(
        "rolling restart of 3 nodes took {rolled:?}; {total} + {late_total} lines shipped once; \
         load {}",
        load_average()
    );
    stop_agent(agent);
    stop_agent(late_agent);
}

//! The whole path, files to rows: the real `logship` binary tails nginx access logs and
//! writes them to the local Cassandra.
//!
//! Two runs, each in a fresh keyspace:
//! 1. **steady**: a writer appends realistic `combined` lines at a fixed rate (default
//!    10,000 lines/s for 60 s). Measured over the steady window (after a warm-up): lines/s
//!    shipped, the agent's CPU (utime+stime from /proc/<pid>/stat) and memory (VmRSS
//!    sampled each second, VmHWM at the end), and the latency from a line's write to its
//!    row being readable. Every 10 ms the writer makes one line a probe (status 503, so
//!    level ERROR, with its write time in ns in the path); a poller reads the probes of the
//!    current partition back every 200 ms (SAI index on `level`), so latency is sampled
//!    on the same file, the same tailer, queue and sink as the bulk lines.
//! 2. **max**: a backlog of lines written before the agent starts; lines/s while it
//!    catches up is the most the agent ships on this machine.
//!
//! 0. **sink alone**: the same nginx lines parsed up front and written by the library's
//!    `CassandraSink` in units of 1000, one in flight, against the same node in the same run,
//!    right before and right after the max run: the peer the max run is compared with
//!    (goal: ≥ 0.9× its rows/s). The comparison is with the mean of the two, because the
//!    node's own rate drifts over a run (it warms up, flushes, compacts) by as much as a
//!    fifth. By default the sink alone writes as many rows as the backlog, so the node
//!    takes the same work (memtables, flushes, compactions) in each of the three runs; a
//!    sink run of a fifth of the rows, taken before the steady run, missed both. Both
//!    runs are measured over the middle 80 % of their time (the sink alone's whole-run
//!    rate is printed beside): a fresh keyspace takes rows faster until the node's first
//!    flushes, so a whole-run rate against a middle window favours the sink alone.
//!
//! `cargo bench --bench pipeline [-- --rate 10000 --seconds 60 --warmup 10 --backlog 1000000
//! --sink-rows N (default: the backlog) --sink-in-flight 1 --no-steady]`.
//! `--sink-in-flight K` writes K units at once in the sink alone runs (the daemon keeps one
//! in flight; docs/path-speed.md, round 5, says why). RSS goals (default config): VmHWM
//! ≤ 20 MiB steady at 10,000 lines/s, ≤ 32 MiB catching up.
//! Starts the local node with `scripts/cassandra start` (reused when up). Everything
//! (Cassandra, the agent, the writer, the poller) shares this machine's cores.

#[path = "support/agent_metrics.rs"]
mod agent_metrics;
#[path = "support/agent_process.rs"]
mod agent_process;
#[allow(dead_code)]
#[path = "../tests/support/cassandra.rs"]
mod cassandra;

use std::fmt::Write as _;

use agent_metrics::{free_port, rows_written, unit_write_time};
use agent_process::{loadavg, rss_breakdown, start_agent};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logship::sink::Placement;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

const SOURCE: &str = "bench";
const HOST: &str = "bench-host";
const BUCKET: Duration = Duration::from_secs(300);
const PROBE_EVERY: Duration = Duration::from_millis(10);
const POLL_EVERY: Duration = Duration::from_millis(200);

struct Args {
    rate: u64,
    seconds: u64,
    warmup: u64,
    backlog: u64,
    /// Rows per sink alone run; `None` = as many as the backlog.
    sink_rows: Option<usize>,
    /// Units the sink alone keeps in flight.
    sink_in_flight: usize,
    skip_steady: bool,
    /// `[buffer] max_bytes` for the agent (default: the config's default).
    max_bytes: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        rate: 10_000,
        seconds: 60,
        warmup: 10,
        backlog: 1_000_000,
        sink_rows: None,
        sink_in_flight: 1,
        skip_steady: false,
        max_bytes: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--rate" => a.rate = value(),
            "--seconds" => a.seconds = value(),
            "--warmup" => a.warmup = value(),
            "--backlog" => a.backlog = value(),
            "--sink-rows" => a.sink_rows = Some(value() as usize),
            "--sink-in-flight" => a.sink_in_flight = (value() as usize).max(1),
            "--no-steady" => a.skip_steady = true,
            "--max-bytes" => a.max_bytes = Some(value()),
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {}
        }
    }
    a
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Realistic `combined` lines: a small LCG picks client, path, status, size, referer, agent.
struct LineMaker {
    state: u64,
    stamp_second: u64,
    stamp: String,
}

const PATHS: [&str; 8] = [
    "/",
    "/api/v1/products",
    "/api/v1/products/{}",
    "/api/v1/cart/{}/items",
    "/static/js/app.{}.js",
    "/static/css/site.css",
    "/search?q=shoes&page={}",
    "/images/catalog/{}.webp",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
];
const REFERERS: [&str; 3] = [
    "-",
    "https://shop.example.com/",
    "https://www.google.com/search?q=shop",
];

impl LineMaker {
    fn new(seed: u64) -> Self {
        LineMaker {
            state: seed | 1,
            stamp_second: 0,
            stamp: String::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.state >> 33
    }

    fn refresh_stamp(&mut self) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.stamp_second {
            self.stamp_second = secs;
            let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
            self.stamp = now.strftime("%d/%b/%Y:%H:%M:%S %z").to_string();
        }
    }

    /// One ordinary line (status 200/304/404/301, never 5xx: 503 marks probes).
    fn line(&mut self, out: &mut String) {
        self.refresh_stamp();
        let r = self.next();
        let path = PATHS[(r % 8) as usize].replace("{}", &(r % 9973).to_string());
        let status = match r % 100 {
            0..=84 => 200,
            85..=92 => 304,
            93..=97 => 404,
            _ => 301,
        };
        let _ = writeln!(
            out,
            "198.51.{}.{} - - [{}] \"GET {path} HTTP/1.1\" {status} {} \"{}\" \"{}\"",
            (r >> 8) % 256,
            (r >> 16) % 256,
            self.stamp,
            if status == 200 { 200 + r % 40_000 } else { 0 },
            REFERERS[((r >> 4) % 3) as usize],
            AGENTS[((r >> 6) % 4) as usize],
        );
    }

    /// A probe: status 503 (level ERROR) carrying its write time.
    fn probe(&mut self, out: &mut String, seq: u64) {
        self.refresh_stamp();
        let _ = writeln!(
            out,
            "192.0.2.1 - - [{}] \"GET /probe/{seq}?t={} HTTP/1.1\" 503 0 \"-\" \"logship-bench\"",
            self.stamp,
            now_ns()
        );
    }
}

/// CPU ticks (utime+stime) of `pid`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (VmRSS, VmHWM) of `pid` in KiB.
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The agent process; killed on drop so an aborted bench leaves nothing running.
struct Agent {
    child: Child,
    port: u16,
}

impl Agent {
    fn start(dir: &Path, node: &cassandra::Node, keyspace: &str, max_bytes: Option<u64>) -> Agent {
        let port = free_port();
        let config = dir.join("logship.toml");
        fs::write(
            &config,
            format!(
                "[agent]\ndata_dir = \"{data}\"\nhost = \"{HOST}\"\n\n\
                 [cassandra]\ncontact_points = [\"{host}\"]\nport = {cport}\nkeyspace = \"{keyspace}\"\n\n\
                 [metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{buffer}\
                 [[source]]\nname = \"{SOURCE}\"\npaths = [\"{logs}/access.log*\"]\nformat = \"nginx\"\nbucket = \"5m\"\n",
                data = dir.join("data").display(),
                buffer = max_bytes.map_or(String::new(), |b| format!("[buffer]\nmax_bytes = {b}\n\n")),
                host = node.host,
                cport = node.port,
                logs = dir.join("logs").display(),
            ),
        )
        .expect("write the config");
        let log = dir.join("agent.stderr");
        let child = start_agent(&config, &log);
        Agent { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resource samples of the agent, one per second.
#[derive(Default)]
struct Usage {
    samples: Vec<(Instant, u64, u64, f64)>, // (when, cpu ticks, rss KiB, rows written)
}

impl Usage {
    fn sample(&mut self, agent: &Agent) {
        if let (Some(cpu), Some((rss, _)), Some(rows)) = (
            cpu_ticks(agent.pid()),
            memory_kib(agent.pid()),
            rows_written(agent.port),
        ) {
            self.samples.push((Instant::now(), cpu, rss, rows));
        }
    }

    /// (rows/s, CPU % of one core, max RSS MiB) between `from` and `to`.
    fn window(&self, from: Instant, to: Instant) -> Option<(f64, f64, f64)> {
        let w: Vec<_> = self
            .samples
            .iter()
            .filter(|s| s.0 >= from && s.0 <= to)
            .collect();
        let (first, last) = (w.first()?, w.last()?);
        let secs = (last.0 - first.0).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let rate = (last.3 - first.3) / secs;
        let cpu = (last.1 - first.1) as f64 / clock_ticks_per_sec() / secs * 100.0;
        let rss = w.iter().map(|s| s.2).max()? as f64 / 1024.0;
        Some((rate, cpu, rss))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn fresh_keyspace(node: &cassandra::Node, prefix: &str) -> (String, Session) {
    let ks = cassandra::unique_keyspace(prefix);
    let session = cassandra::apply_schema(&node.config(&ks)).await;
    (ks, session)
}

/// The steady part of a run that started at `start` and took `secs`: without its first and
/// last tenth. The max run and the sink alone are both measured over it.
fn middle_window(start: Instant, secs: f64) -> (Instant, Instant) {
    (
        start + Duration::from_secs_f64(secs * 0.1),
        start + Duration::from_secs_f64(secs * 0.9),
    )
}

/// Drops a run's keyspace once it is measured, so the node does not carry (flush,
/// compact) every earlier run's rows into the next one: bench after bench, the node's rate
/// otherwise fell by a tenth.
async fn drop_keyspace(session: &Session, ks: &str) {
    if let Err(e) = session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ())
        .await
    {
        eprintln!("pipeline bench: cannot drop keyspace {ks}: {e}");
    }
}

/// Reads back the probes of the partitions around now, recording when each first shows.
async fn poll_probes(
    session: &Session,
    stmt: &PreparedStatement,
    seen: &Mutex<std::collections::HashMap<u64, (u128, u128)>>,
) {
    let now = jiff::Timestamp::now();
    let since = now - jiff::SignedDuration::from_secs(20);
    let mut places = vec![Placement::of(since, BUCKET), Placement::of(now, BUCKET)];
    places.dedup_by_key(|p| (p.day, p.bucket));
    for p in places {
        let floor = CqlTimestamp(since.as_millisecond() / 1000 * 1000);
        let Ok(result) = session
            .execute_unpaged(stmt, (SOURCE, HOST, p.day, p.bucket, floor))
            .await
        else {
            continue;
        };
        let readable = now_ns();
        let Ok(rows) = result.into_rows_result() else {
            continue;
        };
        let Ok(iter) = rows.rows::<(String,)>() else {
            continue;
        };
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        for (message,) in iter.flatten() {
            let Some(rest) = message.split("/probe/").nth(1) else {
                continue;
            };
            let Some((seq, t)) = rest.split_once("?t=") else {
                continue;
            };
            let t: String = t.chars().take_while(char::is_ascii_digit).collect();
            if let (Ok(seq), Ok(t)) = (seq.parse::<u64>(), t.parse::<u128>()) {
                seen.entry(seq).or_insert((t, readable));
            }
        }
    }
}

struct Steady {
    written: u64,
    shipped_rate: f64,
    cpu: f64,
    rss_max: f64,
    hwm: f64,
    /// Where the RSS is at the end of the steady window ([`rss_breakdown`]).
    rss_parts: String,
    p50: f64,
    p99: f64,
    max: f64,
    probes: usize,
    probes_seen: usize,
    all_rows: bool,
}

fn steady_run(rt: &tokio::runtime::Runtime, node: &cassandra::Node, a: &Args) -> Steady {
    let (keyspace, session) = rt.block_on(fresh_keyspace(node, "bench_steady"));
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
    let agent = Agent::start(dir.path(), node, &keyspace, a.max_bytes);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let probes_written: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let writer = {
        let path = dir.path().join("logs/access.log");
        let (stop, written, probes) = (
            Arc::clone(&stop),
            Arc::clone(&written),
            Arc::clone(&probes_written),
        );
        let (rate, seconds) = (a.rate, a.seconds);
        std::thread::spawn(move || {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("open the log");
            let mut maker = LineMaker::new(42);
            let start = Instant::now();
            let mut next_probe = start;
            let mut n = 0_u64;
            let mut seq = 0_u64;
            let mut chunk = String::new();
            while start.elapsed() < Duration::from_secs(seconds) && !stop.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                chunk.clear();
                if Instant::now() >= next_probe && due > n {
                    maker.probe(&mut chunk, seq);
                    probes.lock().unwrap().push((seq, Instant::now()));
                    seq += 1;
                    n += 1;
                    next_probe += PROBE_EVERY;
                }
                while n < due {
                    maker.line(&mut chunk);
                    n += 1;
                }
                if !chunk.is_empty() {
                    f.write_all(chunk.as_bytes()).expect("append");
                    written.store(n, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let seen: Arc<Mutex<std::collections::HashMap<u64, (u128, u128)>>> = Arc::default();
    let poller = {
        let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
        let handle = rt.handle().clone();
        let ks = keyspace.clone();
        std::thread::spawn(move || {
            handle.block_on(async {
                let cql = format!(
                    "SELECT message FROM {ks}.infrastructure_logs WHERE source = ? AND host = ? \
                     AND day = ? AND bucket = ? AND level = 'ERROR' AND ts >= ? ALLOW FILTERING"
                );
                let stmt = session
                    .prepare(cql)
                    .await
                    .unwrap_or_else(|e| panic!("prepare the probe query: {e}"));
                while !stop.load(Ordering::Relaxed) {
                    let tick = Instant::now();
                    poll_probes(&session, &stmt, &seen).await;
                    tokio::time::sleep(POLL_EVERY.saturating_sub(tick.elapsed())).await;
                }
                session
            })
        })
    };

    let started = Instant::now();
    let mut usage = Usage::default();
    while !writer.is_finished() {
        usage.sample(&agent);
        std::thread::sleep(Duration::from_secs(1));
    }
    let steady_from = started + Duration::from_secs(a.warmup);
    let steady_to = Instant::now();
    let total = written.load(Ordering::Relaxed);
    // Let the tail of the run land (and its probes be seen), then stop polling.
    let drain_start = Instant::now();
    while rows_written(agent.port).unwrap_or(0.0) < total as f64
        && drain_start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let session = poller.join();
    let all_rows = rows_written(agent.port).unwrap_or(0.0) >= total as f64;
    let hwm = memory_kib(agent.pid()).map_or(f64::NAN, |(_, h)| h as f64 / 1024.0);
    let rss_parts = rss_breakdown(agent.pid());
    let (shipped_rate, cpu, rss_max) =
        usage
            .window(steady_from, steady_to)
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
    agent.stop();
    if let Ok(session) = &session {
        rt.block_on(drop_keyspace(session, &keyspace));
    }

    // Latency of the probes written in the steady window.
    let probes = probes_written.lock().unwrap().clone();
    let in_window: Vec<u64> = probes
        .iter()
        .filter(|(_, at)| *at >= steady_from && *at <= steady_to)
        .map(|(s, _)| *s)
        .collect();
    let seen = seen.lock().unwrap();
    // A probe never seen was not readable within the poll window (20 s): it counts as
    // infinitely late, so a backlog shows as "> 20 s" rather than vanishing from p99.
    let mut lat: Vec<f64> = in_window
        .iter()
        .map(|s| {
            seen.get(s)
                .map_or(f64::INFINITY, |(w, r)| r.saturating_sub(*w) as f64 / 1e6)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    Steady {
        written: total,
        shipped_rate,
        cpu,
        rss_max,
        hwm,
        rss_parts,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
        probes: in_window.len(),
        probes_seen: lat.iter().filter(|l| l.is_finite()).count(),
        all_rows,
    }
}

struct Max {
    lines: u64,
    rate: f64,
    cpu: f64,
    rss_max: f64,
    hwm: f64,
    /// Where the RSS is at the end of the catch-up ([`rss_breakdown`]).
    rss_parts: String,
    secs: f64,
    /// Flush units written and the seconds the drain loop spent writing them.
    units: Option<(f64, f64)>,
}

fn max_run(rt: &tokio::runtime::Runtime, node: &cassandra::Node, a: &Args) -> Max {
    let (keyspace, session) = rt.block_on(fresh_keyspace(node, "bench_max"));
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
    {
        let mut f = File::create(dir.path().join("logs/access.log")).expect("create the log");
        let mut maker = LineMaker::new(7);
        let mut chunk = String::new();
        for i in 0..a.backlog {
            maker.line(&mut chunk);
            if i % 10_000 == 9_999 {
                f.write_all(chunk.as_bytes()).expect("write");
                chunk.clear();
            }
        }
        f.write_all(chunk.as_bytes()).expect("write");
    }
    let start = Instant::now();
    let agent = Agent::start(dir.path(), node, &keyspace, a.max_bytes);
    let mut usage = Usage::default();
    while rows_written(agent.port).unwrap_or(0.0) < a.backlog as f64
        && start.elapsed() < Duration::from_secs(600)
    {
        usage.sample(&agent);
        std::thread::sleep(Duration::from_millis(500));
    }
    usage.sample(&agent);
    let secs = start.elapsed().as_secs_f64();
    let done = Instant::now();
    let (from, to) = middle_window(start, secs);
    let (rate, cpu, rss_max) =
        usage
            .window(from, to.min(done))
            .unwrap_or((f64::NAN, f64::NAN, f64::NAN));
    let lines = rows_written(agent.port).unwrap_or(0.0) as u64;
    let hwm = memory_kib(agent.pid()).map_or(f64::NAN, |(_, h)| h as f64 / 1024.0);
    let rss_parts = rss_breakdown(agent.pid());
    let units = unit_write_time(agent.port);
    agent.stop();
    rt.block_on(drop_keyspace(&session, &keyspace));
    Max {
        units,
        lines,
        rate,
        cpu,
        rss_max,
        hwm,
        rss_parts,
        secs,
    }
}

/// The sink alone, in the same run against the same node: the same nginx lines, parsed up
/// front, written in units of 1000 with the daemon's pattern (one unit in flight, the
/// next sent when the last is acknowledged; `in_flight` units at once when asked), through
/// the library's `CassandraSink` with the default `[cassandra]` settings.
struct SinkAlone {
    rows: usize,
    /// Rows/s over the middle 80 % of the run's time, the window the max run is measured
    /// over (a run on a fresh keyspace is faster before the node's first flushes).
    rate: f64,
    /// Rows/s over the whole run.
    rate_all: f64,
    cpu: f64,
    /// The run's time per unit written, ms: one unit's write time with one in flight, a
    /// K-th of the time K units took together otherwise.
    unit_ms: f64,
}

fn sink_alone(
    rt: &tokio::runtime::Runtime,
    node: &cassandra::Node,
    records: usize,
    in_flight: usize,
) -> SinkAlone {
    use logship::parsers::{Format, FormatSpec, RecordContext};
    use logship::pipeline::{FileId, FileRecord, Origin, Route, Table};

    let (keyspace, session) = rt.block_on(fresh_keyspace(node, "bench_sink"));
    let parser = FormatSpec {
        format: Format::Nginx,
        log_format: None,
        prefix: None,
        timezone: Some("UTC".into()),
    }
    .build()
    .expect("the nginx parser");
    let ctx = RecordContext::new(SOURCE, HOST);
    let route = Arc::new(Route {
        source: SOURCE.into(),
        table: Table::InfrastructureLogs,
        ttl: None,
        bucket: BUCKET,
    });
    let path: Arc<str> = "/var/log/nginx/access.log".into();
    let file = FileId {
        dev: 1,
        inode: 1,
        fingerprint: 1,
    };
    let mut maker = LineMaker::new(11);
    let mut line = String::new();
    let mut offset = 0_u64;
    let all: Vec<FileRecord> = (0..records)
        .map(|_| {
            line.clear();
            maker.line(&mut line);
            let body = line.trim_end_matches('\n');
            let start = offset;
            offset += line.len() as u64;
            FileRecord {
                record: parser.record(body.as_bytes(), &ctx, jiff::Timestamp::now()),
                origin: Origin {
                    file,
                    path: Arc::clone(&path),
                    start,
                    end: offset,
                },
                route: Arc::clone(&route),
            }
        })
        .collect();
    rt.block_on(async {
        let sink =
            logship::sink::CassandraSink::connect(&node.config(&keyspace), Default::default())
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
        // Warm-up: connections, prepared statements, the catalog's first partitions.
        for unit in all.chunks(1000).take(5) {
            sink.write_file_unit(unit)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
        let cpu0 = cpu_ticks(std::process::id()).unwrap_or(0);
        let t0 = Instant::now();
        let units: Vec<&[FileRecord]> = all.chunks(1000).skip(5).collect();
        // (when, rows written by then), after every write.
        let mut done: Vec<(Instant, usize)> = vec![(t0, 0)];
        for at_once in units.chunks(in_flight) {
            let written =
                futures::future::join_all(at_once.iter().map(|u| sink.write_file_unit(u))).await;
            for w in written {
                w.unwrap_or_else(|e| panic!("{e:#}"));
            }
            let rows =
                done.last().map_or(0, |d| d.1) + at_once.iter().map(|u| u.len()).sum::<usize>();
            done.push((Instant::now(), rows));
        }
        let secs = t0.elapsed().as_secs_f64();
        let (from, to) = middle_window(t0, secs);
        let in_window: Vec<&(Instant, usize)> =
            done.iter().filter(|d| d.0 >= from && d.0 <= to).collect();
        let window_rate = match (in_window.first(), in_window.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) as f64 / (b.0 - a.0).as_secs_f64(),
            _ => f64::NAN,
        };
        let cpu = (cpu_ticks(std::process::id()).unwrap_or(0) - cpu0) as f64
            / clock_ticks_per_sec()
            / secs
            * 100.0;
        let rows = all.len().saturating_sub(5000);
        drop_keyspace(&session, &keyspace).await;
        SinkAlone {
            rows,
            rate: window_rate,
            rate_all: rows as f64 / secs,
            cpu,
            unit_ms: secs * 1000.0 / (rows as f64 / 1000.0),
        }
    })
}

fn cassandra_cpu_note() -> String {
    let out = cassandra::script(&["status"]).ok();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.trim().to_owned()
}

/// The whole path with a backlog must reach this share of the sink's rows/s.
const GOAL_RATIO: f64 = 0.9;
/// RSS goals with the default config (MiB): steady at 10,000 lines/s, and catching up.
const GOAL_RSS_STEADY: f64 = 20.0;
const GOAL_RSS_BACKLOG: f64 = 32.0;

fn main() {
    let a = args();
    let Some(node) = cassandra::default_node() else {
        eprintln!("pipeline bench: no Cassandra; nothing measured");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_before = loadavg();
    println!(
        "pipeline bench: {cores} cores shared by Cassandra ({}), the agent, the writer and the poller; load average {load_before}",
        cassandra_cpu_note()
    );
    println!(
        "agent [buffer] max_bytes: {}",
        a.max_bytes
            .map_or("the default".to_owned(), |b| b.to_string())
    );
    let sink_rows = a.sink_rows.unwrap_or(a.backlog as usize);
    println!(
        "sink alone: {sink_rows} nginx records parsed up front, units of 1000, {} in flight, default [cassandra], right before and right after the max run",
        a.sink_in_flight
    );
    let steady = (!a.skip_steady).then(|| {
        println!(
            "steady run: {} lines/s for {} s (first {} s excluded), nginx combined, bucket 5m, default [buffer]/[batch]",
            a.rate, a.seconds, a.warmup
        );
        steady_run(&rt, &node, &a)
    });
    println!(
        "max run: {} lines written before the agent starts, timed until all are rows",
        a.backlog
    );
    let sink = sink_alone(&rt, &node, sink_rows, a.sink_in_flight);
    let m = max_run(&rt, &node, &a);
    let sink_after = sink_alone(&rt, &node, sink_rows, a.sink_in_flight);

    println!();
    println!(
        "| run | lines | rows/s | CPU (% of a core) | RSS max MiB | VmHWM MiB | write→readable p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let ms = |v: f64| {
        if v.is_finite() {
            format!("{v:.0} ms")
        } else {
            "> 20 s".to_owned()
        }
    };
    for (when, run) in [("before", &sink), ("after", &sink_after)] {
        println!(
            "| sink alone (bench process), {when} | {} (whole run {:.0} rows/s) | {:.0} | {:.1} | – | – | – | – | – |",
            run.rows, run.rate_all, run.rate, run.cpu
        );
    }
    let sink_rate = (sink.rate + sink_after.rate) / 2.0;
    let sink_unit_ms = (sink.unit_ms + sink_after.unit_ms) / 2.0;
    if let Some(s) = &steady {
        println!(
            "| steady {} lines/s | {}{} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            a.rate,
            s.written,
            if s.all_rows { "" } else { " (NOT all written)" },
            s.shipped_rate,
            s.cpu,
            s.rss_max,
            s.hwm,
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        );
    }
    println!(
        "| whole path, backlog | {} in {:.1} s | {:.0} | {:.1} | {:.1} | {:.1} | – | – | – |",
        m.lines, m.secs, m.rate, m.cpu, m.rss_max, m.hwm
    );
    println!();
    if let Some(s) = &steady {
        println!(
            "latency: {} of {} probes of the steady window seen (one every {:?}, polled every {:?}; \
             resolution ≈ the poll interval)",
            s.probes_seen, s.probes, PROBE_EVERY, POLL_EVERY
        );
    }
    let ratio = m.rate / sink_rate;
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "whole path / sink alone (the mean of {:.0} before and {:.0} after): {:.0} / {sink_rate:.0} rows/s = {ratio:.2} (goal ≥ {GOAL_RATIO}): {}",
        sink.rate,
        sink_after.rate,
        m.rate,
        met(ratio >= GOAL_RATIO)
    );
    if let Some(s) = &steady {
        println!(
            "RSS at {} lines/s: VmHWM {:.1} MiB (goal ≤ {GOAL_RSS_STEADY} MiB): {}; p99 {} (goal < 2 s): {}",
            a.rate,
            s.hwm,
            met(s.hwm <= GOAL_RSS_STEADY),
            ms(s.p99),
            met(s.p99 < 2000.0)
        );
        println!("  RSS at the end of the steady window: {}", s.rss_parts);
    }
    if let Some((units, busy)) = m.units {
        println!(
            "where the time goes: the agent wrote {units:.0} units in {busy:.1} s of writing ({:.1} ms per unit, \
             the sink alone {:.1} ms); writing took {:.0} % of the {:.1} s catch-up (the rest: \
             start-up, gathering, acknowledging, waiting for the tailer)",
            busy * 1000.0 / units.max(1.0),
            sink_unit_ms,
            busy / m.secs * 100.0,
            m.secs
        );
    }
    println!(
        "RSS catching up {} lines: VmHWM {:.1} MiB (goal ≤ {GOAL_RSS_BACKLOG} MiB): {}",
        a.backlog,
        m.hwm,
        met(m.hwm <= GOAL_RSS_BACKLOG)
    );
    println!("  RSS at the end of the catch-up: {}", m.rss_parts);
    println!("load average before {load_before}, after {}", loadavg());
}

//! The read path against the local Cassandra (`cargo bench --bench query`), with
//! 10 million rows in `infrastructure_logs` written through the sink: 16 streams (2
//! sources × 8 hosts, 1 h buckets) spread over the last 48 hours.
//!
//! - first page (100 rows) of "the newest rows of one source on one host in the last
//!   hour" and of "errors of all hosts in the last hour", p50/p95, through the read core
//!   and through `logship serve`'s `GET /events`;
//! - a full day (yesterday, UTC) of one stream streamed by `logship query -o json`: rows/s
//!   and peak RSS, beside `cqlsh` paging the same partitions in the same run;
//! - follow latency, a row's write to its print by `logship query -f` and to its arrival
//!   on `GET /events/stream`, p50/p99.
//!
//! Env: `QUERY_BENCH_ROWS` (default 10000000; e.g. 200000 for a quick run),
//! `QUERY_BENCH_KEYSPACE` (reuse a keyspace an earlier run kept: no writing),
//! `QUERY_BENCH_KEEP=1` (keep the keyspace; by default it is dropped at the end),
//! `QUERY_BENCH_ITERATIONS` (timed first pages per query, default 50),
//! `QUERY_BENCH_FOLLOW` (follow samples, default 60).

#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "../tests/support/http_client.rs"]
mod http_client;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fleet::Stream;
use futures::StreamExt as _;
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use logship::parsers::Level;
use logship::query::{Filter, Order, ReadOptions, Reader};
use logship::sink::{CassandraConfig, CassandraSink, SinkOptions};
use support::cassandra::{apply_schema, default_node, repo_root, unique_keyspace};

const SOURCES: [&str; 2] = ["nginx", "haproxy"];
const HOSTS: usize = 8;
const SPAN_HOURS: i64 = 48;
const UNITS_IN_FLIGHT: usize = 4;

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn host(i: usize) -> String {
    format!("web-{:02}", i + 1)
}

fn streams() -> Vec<Stream> {
    let mut out = Vec::new();
    for (s, source) in SOURCES.iter().enumerate() {
        for h in 0..HOSTS {
            let index = (s * HOSTS + h) as u64;
            out.push(Stream::new(
                source,
                &host(h),
                Duration::from_secs(3600),
                index,
            ));
        }
    }
    out
}

/// Writes `total` rows: each stream's share spread evenly over [start, end), in units of
/// 1000 of one stream, `UNITS_IN_FLIGHT` units at a time.
async fn load(sink: &CassandraSink, total: u64, start: Timestamp, end: Timestamp) {
    let streams = streams();
    let per_stream = total / streams.len() as u64;
    let units_per_stream = per_stream.div_ceil(1000);
    let t0 = Instant::now();
    let jobs = (0..units_per_stream).flat_map(|u| streams.iter().map(move |s| (u, s)));
    let mut written = 0u64;
    let mut next_report = 1_000_000u64;
    let mut writes = futures::stream::iter(jobs)
        .map(|(u, stream)| async move {
            let from = u * 1000;
            let to = (from + 1000).min(per_stream);
            // Streams are offset by a few ms so no two share a timestamp.
            let offset = SignedDuration::from_millis(stream.file.inode as i64 % 1000);
            let unit: Vec<_> = (from..to)
                .map(|i| stream.record(i, per_stream, start + offset, end + offset))
                .collect();
            sink.write_file_unit(&unit)
                .await
                .unwrap_or_else(|e| panic!("write: {e:#}"));
            unit.len() as u64
        })
        .buffer_unordered(UNITS_IN_FLIGHT);
    while let Some(n) = writes.next().await {
        written += n;
        if written >= next_report {
            println!(
                "  loaded {written} rows in {:.0} s ({:.0} rows/s), load average {}",
                t0.elapsed().as_secs_f64(),
                written as f64 / t0.elapsed().as_secs_f64(),
                loadavg()
            );
            next_report += 1_000_000;
        }
    }
    println!(
        "loaded {written} rows through the sink in {:.1} s ({:.0} rows/s), load average {}",
        t0.elapsed().as_secs_f64(),
        written as f64 / t0.elapsed().as_secs_f64(),
        loadavg()
    );
}

fn report(label: &str, mut times: Vec<Duration>, rows: usize) {
    times.sort();
    println!(
        "{label:<58} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  ({} rows/page, {} runs)",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.95)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        rows,
        times.len()
    );
}

async fn time_core(reader: &Reader, label: &str, filter: &Filter, n: usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for i in 0..n + 3 {
        let t = Instant::now();
        let page = reader
            .page(filter, Order::Descending, None, 100)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e:#}"));
        if i >= 3 {
            times.push(t.elapsed());
        }
        rows = page.rows.len();
    }
    report(label, times, rows);
}

fn time_http(port: u16, label: &str, query: &str, n: usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for i in 0..n + 3 {
        let t = Instant::now();
        let answer = http_client::get(port, &format!("/events?{query}"), None);
        assert_eq!(answer.status, 200, "{label}: {}", answer.body);
        if i >= 3 {
            times.push(t.elapsed());
        }
        rows = answer.json()["events"].as_array().map_or(0, Vec::len);
    }
    report(label, times, rows);
}

/// What a command printed and took.
struct Output {
    lines: u64,
    bytes: u64,
    /// The sum of cqlsh's `(N rows)` lines.
    cqlsh_rows: u64,
    wall: Duration,
    /// Peak RSS, KiB.
    max_rss: i64,
}

/// Runs `cmd` with stdout counted line by line.
fn run_counting(mut cmd: Command) -> Output {
    let t0 = Instant::now();
    // Reaped below by wait4(2), which also gives its peak RSS; `Child::wait` cannot.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let (mut lines, mut bytes, mut cqlsh_rows) = (0u64, 0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                lines += 1;
                bytes += n as u64;
                if line.starts_with(b"(") {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(n) = text
                        .trim()
                        .strip_prefix('(')
                        .and_then(|t| t.strip_suffix(" rows)"))
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        cqlsh_rows += n;
                    }
                }
            }
        }
    }
    // wait4 for the child's peak RSS (ru_maxrss, KiB).
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t0.elapsed();
    let err = err_thread.join().unwrap_or_default();
    assert!(
        rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed (status {status}): {err}"
    );
    Output {
        lines,
        bytes,
        cqlsh_rows,
        wall,
        max_rss: usage.ru_maxrss,
    }
}

fn write_config(dir: &Path, config: &CassandraConfig, serve_port: u16) -> PathBuf {
    let path = dir.join("logship.toml");
    let text = format!(
        "[cassandra]\ncontact_points = [\"{}\"]\nport = {}\nkeyspace = \"{}\"\n\n[serve]\nlisten = \"127.0.0.1:{serve_port}\"\n",
        config.contact_points[0], config.port, config.keyspace
    );
    std::fs::write(&path, text).expect("write the config");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Lines a child prints, each with the instant it was read.
fn timed_lines(child: &mut std::process::Child) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

fn main() {
    let total = env_usize("QUERY_BENCH_ROWS", 10_000_000) as u64;
    let iterations = env_usize("QUERY_BENCH_ITERATIONS", 50);
    let follow_samples = env_usize("QUERY_BENCH_FOLLOW", 60);
    let Some(node) = default_node() else {
        eprintln!("no Cassandra: nothing to measure");
        std::process::exit(1);
    };
    let reuse = std::env::var("QUERY_BENCH_KEYSPACE").ok();
    let keyspace = reuse
        .clone()
        .unwrap_or_else(|| unique_keyspace("bench_query"));
    let keep = reuse.is_some() || std::env::var("QUERY_BENCH_KEEP").is_ok_and(|v| v == "1");
    let config = node.config(&keyspace);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "query benchmark: keyspace {keyspace}, {total} rows over {SPAN_HOURS} h, {} streams; load average {}",
        SOURCES.len() * HOSTS,
        loadavg()
    );
    let now = Timestamp::now();
    let end = now - SignedDuration::from_secs(5);
    let start = end - SignedDuration::from_hours(SPAN_HOURS);
    let sink = rt.block_on(async {
        let session = apply_schema(&config).await;
        let sink = CassandraSink::with_session(session, &config, SinkOptions::default())
            .await
            .expect("sink");
        if reuse.is_none() {
            load(&sink, total, start, end).await;
        }
        sink
    });
    let reader = rt
        .block_on(Reader::new(
            Arc::new(
                rt.block_on(logship::sink::session::connect(&config))
                    .expect("connect"),
            ),
            &keyspace,
            ReadOptions::default(),
        ))
        .expect("reader");

    // 1. First pages.
    println!("\n-- first page (100 rows), load average {}", loadavg());
    let hour_ago = Timestamp::now() - SignedDuration::from_hours(1);
    let one_stream = Filter {
        names: vec!["nginx".into()],
        hosts: vec![host(0)],
        from: Some(hour_ago),
        ..Filter::default()
    };
    let errors = Filter {
        min_level: Some(Level::Error),
        from: Some(hour_ago),
        ..Filter::default()
    };
    rt.block_on(async {
        time_core(
            &reader,
            "read core: newest 100 of nginx on web-01, last hour",
            &one_stream,
            iterations,
        )
        .await;
        time_core(
            &reader,
            "read core: errors of all hosts, last hour (newest 100)",
            &errors,
            iterations,
        )
        .await;
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let serve_port = free_port();
    let config_path = write_config(dir.path(), &config, serve_port);
    let bin = env!("CARGO_BIN_EXE_logship");
    let mut serve = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start logship serve");
    let t0 = Instant::now();
    while http_client::request(serve_port, "GET", "/health", &[], None)
        .map(|a| a.status)
        .ok()
        != Some(200)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "logship serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    time_http(
        serve_port,
        "GET /events: nginx on web-01, last hour (limit 100)",
        "source=nginx&host=web-01&since=1h+ago&limit=100",
        iterations,
    );
    time_http(
        serve_port,
        "GET /events: level=err, all hosts, last hour (limit 100)",
        "level=err&since=1h+ago&limit=100",
        iterations,
    );

    // 2. A full day of one stream: logship query -o json vs cqlsh paging the same rows.
    let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let yesterday = today.checked_sub(1.day()).expect("a date");
    println!(
        "\n-- a full day ({yesterday}, UTC) of nginx on web-01, load average {}",
        loadavg()
    );
    let mut query = Command::new(bin);
    query.args([
        "query",
        "--source",
        "nginx",
        "--host",
        "web-01",
        "--since",
        &format!("{yesterday}T00:00:00Z"),
        "--until",
        &format!("{today}T00:00:00Z"),
        "-o",
        "json",
        "--utc",
        "--config",
    ]);
    query.arg(&config_path);
    let out = run_counting(query);
    let rows = out.lines;
    println!(
        "logship query -o json: {rows} rows, {:.1} MiB in {:.2} s = {:.0} rows/s, peak RSS {:.1} MiB",
        out.bytes as f64 / 1048576.0,
        out.wall.as_secs_f64(),
        rows as f64 / out.wall.as_secs_f64(),
        out.max_rss as f64 / 1024.0
    );
    let cql = dir.path().join("day.cql");
    let mut script = String::from("PAGING 5000;\n");
    for bucket in (0..86_400).step_by(3600) {
        script.push_str(&format!(
            "SELECT * FROM \"{keyspace}\".infrastructure_logs WHERE source = 'nginx' AND host = 'web-01' AND day = '{yesterday}' AND bucket = {bucket};\n"
        ));
    }
    std::fs::write(&cql, script).expect("write the CQL");
    let mut cqlsh = Command::new(repo_root().join("scripts/cassandra"));
    cqlsh.args(["cqlsh", "-f"]).arg(&cql);
    let out = run_counting(cqlsh);
    println!(
        "cqlsh paged SELECT (24 partitions, PAGING 5000): {} rows, {:.1} MiB in {:.2} s = {:.0} rows/s, peak RSS {:.1} MiB",
        out.cqlsh_rows,
        out.bytes as f64 / 1048576.0,
        out.wall.as_secs_f64(),
        out.cqlsh_rows as f64 / out.wall.as_secs_f64(),
        out.max_rss as f64 / 1024.0
    );
    assert_eq!(out.cqlsh_rows, rows, "cqlsh and logship read the same rows");

    // 3. Follow latency: write one row, time until each follower prints it.
    println!("\n-- follow latency, load average {}", loadavg());
    let mut follow = Command::new(bin)
        .args([
            "query",
            "-f",
            "-o",
            "json",
            "--source",
            "live",
            "--host",
            "bench-live",
            "--config",
        ])
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start logship query -f");
    let printed = timed_lines(&mut follow);
    let mut sse = http_client::EventStream::open(
        serve_port,
        "/events/stream?source=live&host=bench-live",
        None,
    )
    .expect("open /events/stream");
    let (sse_tx, sent) = mpsc::channel();
    std::thread::spawn(move || {
        loop {
            if let Some(ev) = sse.next_event(Duration::from_millis(200)) {
                if sse_tx.send((Instant::now(), ev.data)).is_err() {
                    break;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let live = Stream::new("live", "bench-live", Duration::from_secs(3600), 777);
    let (mut cli_lat, mut sse_lat) = (Vec::new(), Vec::new());
    for k in 0..follow_samples as u64 {
        // Spread writes over the poll interval so samples do not all land at one phase.
        std::thread::sleep(Duration::from_millis(100 + (k * 137) % 400));
        let at = Timestamp::now();
        let record = live.record(k, 1, at, at);
        let marker = format!("/api/item/{k} ");
        let written = Instant::now();
        rt.block_on(sink.write_file_unit(std::slice::from_ref(&record)))
            .expect("write a live row");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got_cli = None;
        while got_cli.is_none() && Instant::now() < deadline {
            if let Ok((t, line)) = printed.recv_timeout(Duration::from_millis(100)) {
                if line.contains(&marker) {
                    got_cli = Some(t - written);
                }
            }
        }
        let mut got_sse = None;
        while got_sse.is_none() && Instant::now() < deadline {
            if let Ok((t, data)) = sent.recv_timeout(Duration::from_millis(100)) {
                if data.contains(&marker) {
                    got_sse = Some(t - written);
                }
            }
        }
        cli_lat.push(got_cli.unwrap_or_else(|| panic!("logship query -f never printed row {k}")));
        sse_lat.push(got_sse.unwrap_or_else(|| panic!("/events/stream never sent row {k}")));
    }
    for (label, mut lat) in [
        ("logship query -f (poll 500 ms): write -> print", cli_lat),
        ("GET /events/stream (poll 500 ms): write -> event", sse_lat),
    ] {
        lat.sort();
        println!(
            "{label:<52} p50 {:>6.0} ms  p99 {:>6.0} ms  max {:>6.0} ms  ({} rows)",
            ms(percentile(&lat, 0.50)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap()),
            lat.len()
        );
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let _ = serve.kill();
    let _ = serve.wait();
    println!("\nload average at the end {}", loadavg());
    if keep {
        println!("kept keyspace {keyspace} (QUERY_BENCH_KEYSPACE={keyspace} reuses it)");
    } else {
        rt.block_on(
            sink.session()
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS \"{keyspace}\""), ()),
        )
        .expect("drop the benchmark keyspace");
    }
}

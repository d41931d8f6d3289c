//! Tail source benchmark (release build): `cargo bench --bench tail_throughput`.
//!
//! 1. Lines/s from one large nginx access log into the queue (a consumer drains and
//!    acknowledges), framing only and with the nginx parser, next to `wc -l` on the same
//!    file in the same run. Size: `TAIL_BENCH_MB` (default 1024).
//! 2. 10,000 files in 10 directories under watch: start-up time, time until every file's
//!    line is delivered, RSS, open descriptors, and CPU used over 10 s of idleness.
//!
//! 3. Raw lines file to file beside Fluent Bit (`peer` part, in `tail_peer.rs`): see there.
//!    `cargo bench --bench tail_throughput -- --peer-only` runs only this part;
//!    `FLUENT_BIT=/path/to/fluent-bit` gives the peer binary.
//!
//! Each part runs in its own process so RSS is not inflated by the other.
//!
//! Part 1 also counts allocations per record on the daemon's path (issue 14's "at most 3
//! per nginx record"): every allocation of the process, on every thread (tailer, queue,
//! the acknowledging consumer), from the tailer's start until the last line is delivered,
//! divided by the lines. `--big-only` runs part 1 alone.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logship::parsers::raw::Raw;
use logship::parsers::{Format, FormatSpec};
use logship::pipeline::queue::{self, RecvError};
use logship::pipeline::{Route, Table};
use logship::tail::{Checkpointer, ParserSpec, SourceSpec, TailConfig, Tailer};

mod tail_peer;

#[path = "../parsers/benches/throughput/alloc_count.rs"]
mod alloc_count;

#[global_allocator]
static ALLOCATOR: alloc_count::CountingAllocator = alloc_count::CountingAllocator;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(part) = args.iter().find_map(|a| a.strip_prefix("--part=")) {
        let dir = PathBuf::from(
            args.iter()
                .find_map(|a| a.strip_prefix("--dir="))
                .expect("--dir"),
        );
        let lines: u64 = args
            .iter()
            .find_map(|a| a.strip_prefix("--lines="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        match part {
            "big-raw" => big_file(&dir, lines, ParserSpec::Custom(Arc::new(Raw))),
            "big-nginx" => big_file(
                &dir,
                lines,
                ParserSpec::Format(FormatSpec::new(Format::Nginx)),
            ),
            "files" => many_files(&dir),
            "peer-logship" => tail_peer::logship_side(&dir),
            other => panic!("unknown part {other}"),
        }
        return;
    }
    let base = std::env::var("TAIL_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let peer_only = args.iter().any(|a| a == "--peer-only");
    if peer_only {
        tail_peer::compare(dir.path());
        return;
    }
    let mb: u64 = std::env::var("TAIL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let file = dir.path().join("big").join("access.log");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let t = Instant::now();
    let lines = generate(&file, mb * 1024 * 1024);
    eprintln!("generated {mb} MiB, {lines} lines in {:.1?}", t.elapsed());

    let me = std::env::current_exe().unwrap();
    let run = |part: &str| {
        let out = Command::new(&me)
            .arg(format!("--part={part}"))
            .arg(format!("--dir={}", dir.path().display()))
            .arg(format!("--lines={lines}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Warm the page cache so every reader below sees the same cached file.
    let _ = Command::new("cat")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status();
    let wc = Command::new("wc").arg("-l").arg(&file).output().unwrap();
    let wc_lines: u64 = String::from_utf8_lossy(&wc.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(wc_lines, lines);

    println!(
        "\n## Tail source benchmark ({} cores, load average {})\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    println!("| what | lines | wall s | lines/s (wall) | MiB/s (wall) | CPU s | lines per CPU s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let cpu0 = children_cpu_time();
    let t = Instant::now();
    Command::new("wc").arg("-l").arg(&file).output().unwrap();
    let wc_time = t.elapsed();
    let wc_cpu = children_cpu_time() - cpu0;
    row(
        "`wc -l` (same file, page cache)",
        lines,
        wc_time,
        wc_cpu,
        mb,
    );
    let (raw, raw_allocs) = split_allocs(run("big-raw"));
    let (nginx, nginx_allocs) = split_allocs(run("big-nginx"));
    print!("{raw}{nginx}");
    println!(
        "\nAllocations per record, tailer → queue → acknowledged (all threads): raw lines {raw_allocs}, nginx {nginx_allocs}\n"
    );
    if args.iter().any(|a| a == "--big-only") {
        return;
    }
    print!("{}", run("files"));
    tail_peer::compare(dir.path());
}

fn row(what: &str, lines: u64, took: Duration, cpu: Duration, mb: u64) {
    let s = took.as_secs_f64();
    let c = cpu.as_secs_f64();
    println!(
        "| {what} | {lines} | {s:.2} | {:.0} | {:.0} | {c:.2} | {:.0} |",
        lines as f64 / s,
        mb as f64 / s,
        lines as f64 / c
    );
}

/// Writes realistic nginx combined lines up to `bytes`; returns the line count.
fn generate(path: &Path, bytes: u64) -> u64 {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let paths = [
        "/",
        "/index.html",
        "/api/v1/users/42",
        "/static/app.3f9a1c.js",
        "/login?next=%2Fadmin",
        "/images/logo.png",
    ];
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "curl/8.5.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    ];
    let statuses = [200, 200, 200, 304, 404, 500, 301];
    let (mut written, mut n) = (0u64, 0u64);
    while written < bytes {
        let line = format!(
            "10.{}.{}.{} - - [24/Nov/2026:10:{:02}:{:02} +0000] \"GET {} HTTP/1.1\" {} {} \"-\" \"{}\"\n",
            n % 250,
            (n / 250) % 250,
            n % 7,
            (n / 60) % 60,
            n % 60,
            paths[(n % 6) as usize],
            statuses[(n % 7) as usize],
            100 + n % 9000,
            agents[(n % 3) as usize],
        );
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        n += 1;
    }
    w.flush().unwrap();
    n
}

fn source(name: &str, include: String, parser: ParserSpec) -> SourceSpec {
    let route = Arc::new(Route {
        source: name.into(),
        table: Table::InfrastructureLogs,
        ttl: None,
        bucket: Duration::from_secs(3600),
    });
    SourceSpec::new(name, vec![include], parser, route, "bench")
}

/// Starts a tailer with a draining, acknowledging consumer; returns a delivered counter.
fn run_tailer(
    data: &Path,
    config: TailConfig,
    spec: SourceSpec,
) -> (
    logship::tail::TailerHandle,
    Arc<AtomicU64>,
    std::thread::JoinHandle<()>,
) {
    let (cp, loaded) = Checkpointer::open(data).unwrap();
    let (tx, rx) = queue::bounded(10_000);
    let handle = Tailer::start(config, vec![spec], cp, loaded, tx).unwrap();
    let acks = handle.acks();
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    let consumer = std::thread::spawn(move || {
        loop {
            match rx.recv_batch(1000, Duration::from_millis(100), Duration::ZERO) {
                Ok(unit) => {
                    acks.ack_records(&unit);
                    c.fetch_add(unit.len() as u64, Ordering::Relaxed);
                    // As the agent's sink thread does (src/app/sink_thread.rs).
                    rx.give_back(unit);
                }
                Err(RecvError::Timeout) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    (handle, count, consumer)
}

fn big_file(dir: &Path, lines: u64, parser: ParserSpec) {
    let file = dir.join("big").join("access.log");
    let bytes = fs::metadata(&file).unwrap().len();
    let label = match &parser {
        ParserSpec::Custom(_) => "tailer → queue, framing only (raw lines)",
        ParserSpec::Format(_) => "tailer → queue, nginx parser",
    };
    let data = tempfile::tempdir().unwrap();
    let cpu0 = cpu_time();
    let t = Instant::now();
    let ((handle, _delivered, consumer), allocs) = alloc_count::count(|| {
        let running = run_tailer(
            data.path(),
            TailConfig::default(),
            source("big", format!("{}/big/*.log", dir.display()), parser),
        );
        while running.1.load(Ordering::Relaxed) < lines {
            std::thread::sleep(Duration::from_millis(5));
        }
        running
    });
    let took = t.elapsed();
    let cpu = cpu_time() - cpu0;
    let mut handle = handle;
    handle.stop_reading();
    consumer.join().unwrap();
    handle.finish().unwrap();
    row(label, lines, took, cpu, bytes / (1024 * 1024));
    println!("allocs {:.2}", allocs as f64 / lines as f64);
}

/// A `big-*` part's output: its table row, and the allocations per record it printed last.
fn split_allocs(out: String) -> (String, String) {
    match out.rsplit_once("allocs ") {
        Some((row, allocs)) => (row.to_owned(), allocs.trim().to_owned()),
        None => (out, "?".into()),
    }
}

fn many_files(dir: &Path) {
    const DIRS: usize = 10;
    const PER_DIR: usize = 1000;
    let root = dir.join("many");
    for d in 0..DIRS {
        let sub = root.join(format!("d{d}"));
        fs::create_dir_all(&sub).unwrap();
        for f in 0..PER_DIR {
            fs::write(
                sub.join(format!("f{f}.log")),
                format!("file {d}/{f} first line\n"),
            )
            .unwrap();
        }
    }
    let total = (DIRS * PER_DIR) as u64;
    let data = tempfile::tempdir().unwrap();
    let config = TailConfig::default();
    let t = Instant::now();
    let (handle, count, consumer) = run_tailer(
        data.path(),
        config.clone(),
        source(
            "many",
            format!("{}/d*/*.log", root.display()),
            ParserSpec::Custom(Arc::new(Raw)),
        ),
    );
    let started = t.elapsed();
    while count.load(Ordering::Relaxed) < total {
        std::thread::sleep(Duration::from_millis(5));
    }
    let all_read = t.elapsed();
    let snap = handle.monitor().snapshot();
    // Let the checkpoint writer and first rescan settle, then measure pure idleness.
    std::thread::sleep(Duration::from_secs(2));
    let cpu0 = cpu_time();
    let wall0 = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu = cpu_time() - cpu0;
    let idle_wall = wall0.elapsed();
    let rss = status_kib("VmRSS:");
    let hwm = status_kib("VmHWM:");
    let fds = fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let mut handle = handle;
    handle.stop_reading();
    consumer.join().unwrap();
    handle.finish().unwrap();

    println!("| 10,000 files ({DIRS} dirs × {PER_DIR}), default settings | value |");
    println!("|---|---:|");
    println!(
        "| start-up (scan, `Tailer::start` returns) | {:.0} ms |",
        started.as_secs_f64() * 1e3
    );
    println!(
        "| every file's line delivered | {:.0} ms |",
        all_read.as_secs_f64() * 1e3
    );
    println!(
        "| files followed | {} |",
        snap.sources.first().map_or(0, |s| s.files)
    );
    println!(
        "| log files open (max_open_files = {}) | {} |",
        config.max_open_files, snap.open_files
    );
    println!("| process descriptors open | {fds} |");
    println!("| inotify watches (one per directory) | {} |", DIRS + 1);
    println!(
        "| RSS after start-up / peak | {:.1} MiB / {:.1} MiB |",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "| idle CPU over {:.0} s (rescan every {} s) | {:.0} ms = {:.2} % of a core |",
        idle_wall.as_secs_f64(),
        config.rescan_interval.as_secs(),
        idle_cpu.as_secs_f64() * 1e3,
        idle_cpu.as_secs_f64() / idle_wall.as_secs_f64() * 100.0
    );
}

fn status_kib(key: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// User + system CPU time of waited-for child processes.
fn children_cpu_time() -> Duration {
    rusage(libc::RUSAGE_CHILDREN)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the struct we pass; all-zero is a valid initial value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

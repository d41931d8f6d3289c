//! The agent's own path without an output's cost: the real `logship` binary tails a file
//! of nginx `combined` lines, parses them, queues them and drains them through the `null`
//! sink (`[sink] type = "null"`), which acknowledges every unit at once. Lines/s and CPU
//! seconds per million lines, printed beside `wc -l` on the same file (the peer: the
//! cheapest possible read of the same bytes), with the load average of the same run.
//!
//! `cargo bench --bench agent_path [-- --lines 1000000]`. No Cassandra needed. The
//! release profile is what `cargo bench` builds.

#[path = "support/agent_metrics.rs"]
mod agent_metrics;
#[path = "support/agent_process.rs"]
mod agent_process;

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_metrics::{free_port, rows_written};
use agent_process::{cpu_secs, loadavg};

fn lines_arg() -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == "--lines")
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn write_log(path: &Path, n: u64) {
    let mut f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create the log"));
    for i in 0..n {
        writeln!(
            f,
            "10.{}.{}.{} - - [30/Nov/2026:12:00:{:02} +0000] \"GET /api/v1/items/{i}?page={} HTTP/1.1\" {} {} \"https://example.org/\" \"Mozilla/5.0 (X11; Linux x86_64) bench\"",
            i % 200,
            (i / 200) % 250,
            i % 250,
            i % 60,
            i % 17,
            if i % 50 == 0 { 404 } else { 200 },
            200 + i % 5000,
        )
        .expect("write the log");
    }
    f.flush().expect("flush the log");
}

fn main() {
    let n = lines_arg();
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    fs::create_dir_all(&logs).expect("logs dir");
    let log = logs.join("access.log");
    write_log(&log, n);
    let bytes = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    println!(
        "agent_path: {n} nginx lines, {:.1} MiB, load average before: {}",
        bytes as f64 / (1 << 20) as f64,
        loadavg()
    );

    // The peer: `wc -l` on the same (page-cached) file, best of three.
    let mut wc_best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new("wc")
            .arg("-l")
            .arg(&log)
            .output()
            .expect("run wc -l");
        assert!(out.status.success());
        wc_best = wc_best.min(t.elapsed().as_secs_f64());
    }

    let port = free_port();
    let config = dir.path().join("logship.toml");
    fs::write(
        &config,
        format!(
            "[agent]\ndata_dir = \"{}\"\nhost = \"bench\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [sink]\ntype = \"null\"\n\n\
             [[source]]\nname = \"bench\"\npaths = [\"{}\"]\nformat = \"nginx\"\n",
            dir.path().join("data").display(),
            log.display()
        ),
    )
    .expect("write the config");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LOGSHIP_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn logship run");
    let pid = child.id();
    let limit = Duration::from_secs(600);
    let mut first: Option<Instant> = None;
    loop {
        let rows = rows_written(port).unwrap_or(0.0);
        if rows > 0.0 && first.is_none() {
            first = Some(Instant::now());
        }
        if rows >= n as f64 {
            break;
        }
        assert!(
            started.elapsed() < limit,
            "only {rows} of {n} lines after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid);
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();

    let agent_rate = n as f64 / elapsed;
    let wc_rate = n as f64 / wc_best;
    println!(
        "{:<28} {:>14} {:>12} {:>22}",
        "", "lines/s", "wall s", "CPU s per 1M lines"
    );
    println!(
        "{:<28} {:>14.0} {:>12.3} {:>22.3}",
        "logship (null sink)",
        agent_rate,
        elapsed,
        cpu / n as f64 * 1e6
    );
    println!(
        "{:<28} {:>14.0} {:>12.3} {:>22}",
        "wc -l (same file)", wc_rate, wc_best, "-"
    );
    println!(
        "logship reads, parses, queues and acknowledges at {:.1}% of the speed wc -l counts newlines; load average after: {}",
        agent_rate / wc_rate * 100.0,
        loadavg()
    );
}

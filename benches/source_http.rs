//! The HTTP events source: events/s accepted by `POST /events` with p50/p99 request
//! latency, the agent's CPU and peak RSS, against the default Cassandra node.
//!
//! One agent, two sources: `ack = "accepted"` (202 once queued) and `ack = "written"` (200
//! once Cassandra acknowledged). Each phase runs `--clients` threads (default 8), each on
//! one keep-alive connection posting NDJSON batches of `--batch` events (default 100) for
//! `--secs` seconds (default 10). A 429 (queue full) counts as a refused request and the
//! client backs off 10 ms, as a real client would. Prints the load average before/after.
//!
//! `cargo bench --bench source_http [-- --secs 10 --clients 8 --batch 100]`

#[allow(dead_code)]
#[path = "support/agent_metrics.rs"]
mod agent_metrics;
#[path = "support/agent_process.rs"]
mod agent_process;
#[allow(dead_code)]
#[path = "../tests/support/cassandra.rs"]
mod cassandra;

use std::fs;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_metrics::free_port;
use agent_process::{arg, cpu_secs, loadavg, status_mib};

/// One keep-alive HTTP/1.1 connection posting NDJSON.
struct Client {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the source");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        Client {
            reader: BufReader::new(s),
            port,
        }
    }

    /// Posts `body`; the status code.
    fn post(&mut self, body: &[u8]) -> std::io::Result<u16> {
        let head = format!(
            "POST /events HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

struct Phase {
    events: u64,
    requests: u64,
    refused: u64,
    latencies: Vec<Duration>,
    wall: f64,
    cpu: f64,
    peak_rss: f64,
}

fn run_phase(port: u16, pid: u32, secs: u64, clients: u64, batch: u64, tag: &str) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let cpu0 = cpu_secs(pid);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (stop, events, refused, latencies) = (
                Arc::clone(&stop),
                Arc::clone(&events),
                Arc::clone(&refused),
                Arc::clone(&latencies),
            );
            let tag = tag.to_owned();
            std::thread::spawn(move || {
                let mut client = Client::connect(port);
                let mut mine = Vec::new();
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut body = Vec::with_capacity(batch as usize * 220);
                    for i in 0..batch {
                        let n = k * batch + i;
                        writeln!(
                            body,
                            r#"{{"service":"bench-{tag}","level":"info","message":"order {n} of client {c} paid","request_id":"req-{c}-{k}","user":"u{}","amount":{}}}"#,
                            n % 1000,
                            n % 5000
                        )
                        .expect("format an event");
                    }
                    k += 1;
                    let t = Instant::now();
                    match client.post(&body) {
                        Ok(200 | 202) => {
                            mine.push(t.elapsed());
                            events.fetch_add(batch, Ordering::Relaxed);
                        }
                        Ok(429 | 503 | 504) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Ok(other) => panic!("unexpected status {other}"),
                        Err(_) => client = Client::connect(port),
                    }
                }
                latencies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(mine);
            })
        })
        .collect();
    let mut peak_rss = 0.0f64;
    while started.elapsed() < Duration::from_secs(secs) {
        peak_rss = peak_rss.max(status_mib(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    let wall = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    latencies.sort();
    Phase {
        events: events.load(Ordering::Relaxed),
        requests: latencies.len() as u64,
        refused: refused.load(Ordering::Relaxed),
        latencies,
        wall,
        cpu: cpu_secs(pid) - cpu0,
        peak_rss,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let secs = arg("--secs", 10);
    let clients = arg("--clients", 8);
    let batch = arg("--batch", 100);
    let Some(node) = cassandra::default_node() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let keyspace = cassandra::unique_keyspace("bench_http");
    let _session = rt.block_on(cassandra::apply_schema(&node.config(&keyspace)));
    let dir = tempfile::tempdir().expect("temp dir");
    let (metrics, accepted_port, written_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("logship.toml");
    fs::write(
        &config,
        format!(
            "[agent]\ndata_dir = \"{}\"\nhost = \"bench\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\n\
             [cassandra]\ncontact_points = [\"{}\"]\nport = {}\nkeyspace = \"{keyspace}\"\n\n\
             [[source]]\nname = \"accepted\"\ntype = \"http\"\nlisten = \"127.0.0.1:{accepted_port}\"\nqueue_capacity = 100000\n\n\
             [[source]]\nname = \"written\"\ntype = \"http\"\nlisten = \"127.0.0.1:{written_port}\"\nack = \"written\"\nqueue_capacity = 100000\n",
            dir.path().join("data").display(),
            node.host,
            node.port
        ),
    )
    .expect("write the config");
    let stderr = fs::File::create(dir.path().join("agent.log")).expect("agent log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LOGSHIP_LOG")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn logship run");
    let pid = child.id();
    let up = Instant::now();
    while TcpStream::connect(("127.0.0.1", written_port)).is_err() {
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "the source never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Warm up: the drain connects on its first unit.
    let mut warm = Client::connect(written_port);
    let status = warm
        .post(b"{\"service\":\"bench-warm\",\"message\":\"warm\"}\n")
        .expect("warm-up post");
    assert_eq!(status, 200, "warm-up");

    println!(
        "source_http: {clients} clients x keep-alive, NDJSON batches of {batch} events, {secs} s per phase, against {}:{}; load average before: {}",
        node.host,
        node.port,
        loadavg()
    );
    println!(
        "{:<26} {:>12} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "phase", "events/s", "requests", "refused", "p50 ms", "p99 ms", "agent CPU", "peak RSS"
    );
    for (name, port) in [
        ("ack=accepted (202)", accepted_port),
        ("ack=written (200)", written_port),
    ] {
        let p = run_phase(port, pid, secs, clients, batch, &name[4..8]);
        println!(
            "{:<26} {:>12.0} {:>10} {:>9} {:>9.2} {:>9.2} {:>9.0}% {:>7.1} MiB",
            name,
            p.events as f64 / p.wall,
            p.requests,
            p.refused,
            pct(&p.latencies, 0.50),
            pct(&p.latencies, 0.99),
            p.cpu / p.wall * 100.0,
            p.peak_rss
        );
        // Let the queue drain before the next phase.
        std::thread::sleep(Duration::from_secs(3));
    }
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    println!("load average after: {}", loadavg());
}

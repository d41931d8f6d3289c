//! Syslog over the network into the real `logship` binary: RFC 5424 messages with RFC 6587
//! octet counting over one TCP connection, timed from the first byte sent until the agent
//! has acknowledged every row, with the null sink (`[sink] type = "null"`: the agent's own
//! cost) and with the local Cassandra node (fresh keyspace). The peer, from the same run:
//! a plain in-process TCP reader that only receives the same bytes (the cheapest possible
//! receive). Then, if asked for (`--udp-rate`), UDP at a fixed send rate into the null
//! sink: the fraction of datagrams that did not become rows.
//!
//! `cargo bench --bench syslog_network [-- --messages 300000 --udp-rate 20000 --udp-seconds 5]`.
//! Prints the agent's CPU (utime+stime) and peak RSS (VmHWM) and the load average.

#[path = "support/agent_metrics.rs"]
mod agent_metrics;
#[path = "support/agent_process.rs"]
mod agent_process;
#[allow(dead_code)]
#[path = "../tests/support/cassandra.rs"]
mod cassandra;

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use agent_metrics::{free_port, rows_written};
use agent_process::{arg, cpu_secs, loadavg, start_agent, status_mib};

const LIMIT: Duration = Duration::from_secs(600);

/// `n` distinct RFC 5424 messages, octet-counted, as one byte stream.
fn tcp_stream(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * 140);
    for i in 0..n {
        let m = format!(
            "<134>1 2026-11-30T12:00:{:02}.{:06}Z web-{} nginx {} - - GET /api/v1/items/{i} status={} bytes={}",
            i % 60,
            i % 1_000_000,
            i % 8,
            1000 + i % 50,
            if i % 50 == 0 { 404 } else { 200 },
            200 + i % 5000
        );
        write!(out, "{} {m}", m.len()).expect("write to a vec");
    }
    out
}

/// The agent process; killed on drop so an aborted bench leaves nothing running.
struct Agent {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &Path, sink: &str, listeners: &str) -> Agent {
        let port = free_port();
        let config = dir.join("logship.toml");
        fs::write(
            &config,
            format!(
                "[agent]\ndata_dir = \"{}\"\nhost = \"bench\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n\
                 {sink}\n[[source]]\nname = \"bench\"\ntype = \"syslog\"\nbucket = \"5m\"\n{listeners}",
                dir.join("data").display(),
            ),
        )
        .expect("write the config");
        let log = dir.join("agent.stderr");
        let child = start_agent(&config, &log);
        Agent { child, port, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn metric(&self, series: &str) -> f64 {
        let mut s = match TcpStream::connect(("127.0.0.1", self.port)) {
            Ok(s) => s,
            Err(_) => return 0.0,
        };
        let _ = write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    /// Waits until `n` rows are acknowledged; the seconds since `from`.
    fn wait_rows(&self, n: u64, from: Instant) -> f64 {
        loop {
            let rows = rows_written(self.port).unwrap_or(0.0);
            if rows >= n as f64 {
                return from.elapsed().as_secs_f64();
            }
            assert!(
                from.elapsed() < LIMIT,
                "only {rows} of {n} rows after {LIMIT:?}:\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer: receives the same bytes over loopback and does nothing with them.
fn peer_secs(bytes: &[u8]) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the peer");
    let addr = listener.local_addr().expect("peer address");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0_u8; 64 * 1024];
        let mut total = 0_usize;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect to the peer");
    s.write_all(bytes).expect("send to the peer");
    drop(s);
    let got = reader.join().expect("peer thread");
    assert_eq!(got, bytes.len());
    t.elapsed().as_secs_f64()
}

struct Run {
    name: String,
    secs: f64,
    cpu: f64,
    hwm: f64,
}

fn tcp_run(name: &str, sink: &str, bytes: &[u8], n: u64) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let tcp = free_port();
    let agent = Agent::start(dir.path(), sink, &format!("tcp = \"127.0.0.1:{tcp}\"\n"));
    let cpu0 = cpu_secs(agent.pid());
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).expect("connect to the agent");
    s.write_all(bytes).expect("send to the agent");
    drop(s);
    let secs = agent.wait_rows(n, t);
    Run {
        name: name.to_owned(),
        secs,
        cpu: cpu_secs(agent.pid()) - cpu0,
        hwm: status_mib(agent.pid(), "VmHWM:"),
    }
}

fn udp_run(rate: u64, seconds: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let udp = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free udp port");
    let agent = Agent::start(
        dir.path(),
        "[sink]\ntype = \"null\"\n",
        &format!("udp = \"127.0.0.1:{udp}\"\n"),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    let total = rate * seconds;
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let m = format!("<134>1 2026-11-30T12:00:00Z web-1 app - - - udp message {i}");
        let _ = socket.send_to(m.as_bytes(), ("127.0.0.1", udp));
    }
    let sent_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rows = rows_written(agent.port).unwrap_or(0.0);
    let received =
        agent.metric("logship_syslog_messages_total{source=\"bench\",transport=\"udp\"}");
    let dropped = agent.metric("logship_syslog_dropped_total{source=\"bench\",transport=\"udp\"}");
    println!(
        "UDP: {total} datagrams at {rate}/s (sent in {sent_secs:.1} s) into the null sink: {rows:.0} rows, \
         {:.2}% lost ({:.0} never read from the socket: the kernel's receive buffer overflowed; {dropped:.0} dropped on a full buffer); load average: {}",
        (1.0 - rows / total as f64) * 100.0,
        total as f64 - received,
        loadavg()
    );
}

fn main() {
    let n = arg("--messages", 300_000);
    let udp_rate = arg("--udp-rate", 20_000);
    let udp_seconds = arg("--udp-seconds", 5);
    let bytes = tcp_stream(n);
    println!(
        "syslog_network: {n} RFC 5424 messages, octet-counted, {:.1} MiB over one TCP connection; {} cores; load average before: {}",
        bytes.len() as f64 / (1 << 20) as f64,
        std::thread::available_parallelism().map_or(0, |c| c.get()),
        loadavg()
    );
    let peer = (0..3).map(|_| peer_secs(&bytes)).fold(f64::MAX, f64::min);
    let mut runs = vec![tcp_run(
        "logship, null sink",
        "[sink]\ntype = \"null\"\n",
        &bytes,
        n,
    )];
    match cassandra::default_node() {
        Some(node) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let ks = cassandra::unique_keyspace("bench_syslog");
            let _session = rt.block_on(cassandra::apply_schema(&node.config(&ks)));
            let sink = format!(
                "[cassandra]\ncontact_points = [\"{}\"]\nport = {}\nkeyspace = \"{ks}\"\n",
                node.host, node.port
            );
            runs.push(tcp_run("logship, Cassandra (local node)", &sink, &bytes, n));
        }
        None => println!("no Cassandra node: the Cassandra run is left out"),
    }
    println!();
    println!("| receiver | messages/s | wall s | agent CPU s per 1M messages | agent VmHWM MiB |");
    println!("|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.1} |",
            r.name,
            n as f64 / r.secs,
            r.secs,
            r.cpu / n as f64 * 1e6,
            r.hwm
        );
    }
    println!(
        "| peer: plain TCP read of the same bytes | {:.0} | {:.3} | - | - |",
        n as f64 / peer,
        peer
    );
    println!("load average after the TCP runs: {}", loadavg());
    if udp_rate > 0 {
        udp_run(udp_rate, udp_seconds);
    }
}

//! Cassandra itself failing under the real `logship run`: the node killed with -9 mid-run
//! and started again, and the agent started while no node exists yet. Rows are counted by
//! content (the `/line/<n>` in each message), never by the agent's own counters.
//!
//! These tests stop and kill the `faults` node (127.0.0.1:9342, commit log synced in group
//! mode, so a write it acknowledged survives its kill -9) and never touch the default node.
//! They run one at a time: they share that node.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent::{Agent, Db, Source, WAIT, Workspace, assert_exactly_once, nginx_line, open_append};
use support::cassandra::{faults_node, script_ok};

/// The tests share the faults node.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// `scripts/cassandra <cmd> --profile faults`.
fn node(cmd: &str) {
    let out = script_ok(&[cmd, "--profile", "faults"]);
    eprintln!("scripts/cassandra {cmd} --profile faults: {}", out.trim());
}

/// Timeouts short enough that an outage shows within seconds, retries quick.
const CASSANDRA_EXTRA: &str = "request_timeout = \"3s\"\nconnect_timeout = \"2s\"\n\n\
    [cassandra.retry]\ninitial_backoff = \"50ms\"\nmax_backoff = \"2s\"\n\
    breaker_threshold = 5\nbreaker_cooldown = \"1s\"\n\n[batch]\nmax_records = 500\nlinger = \"200ms\"\n";

/// Appends `per_tick` lines every `tick` to one file until `total`, like a busy server.
struct Writer {
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(
        path: std::path::PathBuf,
        from: u64,
        total: u64,
        per_tick: u64,
        tick: Duration,
    ) -> Writer {
        let written = Arc::new(AtomicU64::new(from));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (Arc::clone(&written), Arc::clone(&stop));
        let handle = std::thread::spawn(move || {
            let mut f = open_append(&path);
            let mut n = from;
            while n < total && !s.load(Ordering::SeqCst) {
                let end = (n + per_tick).min(total);
                let chunk: String = (n..end).map(nginx_line).collect();
                f.write_all(chunk.as_bytes()).expect("append");
                n = end;
                w.store(n, Ordering::SeqCst);
                std::thread::sleep(tick);
            }
        });
        Writer {
            written,
            stop,
            handle: Some(handle),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    fn finish(mut self) -> u64 {
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
        self.written()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Polls `/health` until `want(code, body)`; returns the body. Fails naming the last answer.
fn wait_health(
    agent: &mut Agent,
    timeout: Duration,
    what: &str,
    want: impl Fn(u16, &str) -> bool,
) -> String {
    let start = Instant::now();
    let mut last = None;
    loop {
        assert!(
            agent.is_running(),
            "the agent exited while waiting for {what}; stderr:\n{}",
            agent.stderr()
        );
        let answer = agent.get("/health");
        if let Some((code, body)) = &answer {
            if want(*code, body) {
                return body.clone();
            }
        }
        last = answer.or(last);
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for /health {what}; last answer {last:?}; stderr:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until every line `0..n` is in Cassandra, then checks each is there exactly once.
fn wait_all_once(db: &Db, ws: &Workspace, source: &str, n: u64, what: &str) {
    db.wait_rows(source, &ws.host, n as usize);
    // Anything still in flight would show up now as a duplicate.
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(&db.rows_of(source, &ws.host), n, what);
}

#[test]
fn cassandra_killed_mid_run_and_restarted_agent_keeps_running_and_ships_every_line_once() {
    let _serial = serial();
    let Some(node_info) = faults_node() else {
        return;
    };
    let address = node_info.contact_point();
    let Some(db) = Db::on(node_info, "fault_kill") else {
        return;
    };
    let ws = Workspace::new("fault-kill");
    let extra = format!("{}{CASSANDRA_EXTRA}", db.cassandra_toml());
    ws.write_config(None, &extra, &[Source::nginx("web", &ws.log("*.log"))]);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let pid = agent.pid();

    const TOTAL: u64 = 15_000;
    let writer = Writer::start(
        ws.log("access.log"),
        0,
        TOTAL,
        100,
        Duration::from_millis(100),
    );
    db.wait_rows("web", &ws.host, 2_000);
    wait_health(&mut agent, WAIT, "200 while Cassandra is up", |c, _| {
        c == 200
    });

    node("kill9");
    let restart_on_failure = NodeBackUp::arm();
    let killed_at = writer.written();
    eprintln!("killed the faults node with {killed_at} lines written");
    // K1: 503 once writes stall, naming the address that cannot be reached. Checked at
    // the end, so the delivery half of this test runs whatever /health says.
    let body = wait_health(&mut agent, Duration::from_secs(60), "503", |c, _| c == 503);
    // Down long enough for the breaker to open and for lines to pile up in the files.
    let mut named = body.contains(&address).then(|| body.clone());
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(10)
        || (named.is_none() && down.elapsed() < Duration::from_secs(30))
    {
        if let Some((503, b)) = agent.get("/health") {
            if named.is_none() && b.contains(&address) {
                named = Some(b);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("/health during the outage: {body}");
    assert!(
        agent.is_running() && agent.pid() == pid,
        "the agent must ride out the outage in the same process; stderr:\n{}",
        agent.stderr()
    );
    node("start");
    restart_on_failure.disarm();
    wait_health(
        &mut agent,
        Duration::from_secs(60),
        "200 after the node is back",
        |c, _| c == 200,
    );
    let n = writer.finish();
    assert_eq!(n, TOTAL);
    assert!(
        killed_at < TOTAL,
        "the kill fell after the last line: no outage mid-stream"
    );
    db.wait_readable();
    wait_all_once(
        &db,
        &ws,
        "web",
        TOTAL,
        "after Cassandra was killed and restarted",
    );
    assert!(
        agent.is_running(),
        "the agent exited; stderr:\n{}",
        agent.stderr()
    );
    assert_eq!(agent.pid(), pid);
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
    assert!(
        named.is_some(),
        "/health never named the unreachable node {address} during the outage (K1); it said: {body}"
    );
}

#[test]
fn agent_started_before_cassandra_ships_everything_once_the_node_starts() {
    let _serial = serial();
    let Some(node_info) = faults_node() else {
        return;
    };
    let address = node_info.contact_point();
    // The schema is applied beforehand (an operator runs `logship schema apply` once);
    // then the node goes away entirely.
    let Some(db) = Db::on(node_info, "fault_late") else {
        return;
    };
    node("stop");
    let restart_on_failure = NodeBackUp::arm();

    let ws = Workspace::new("fault-late");
    let extra = format!("{}{CASSANDRA_EXTRA}", db.cassandra_toml());
    ws.write_config(None, &extra, &[Source::nginx("web", &ws.log("*.log"))]);
    agent::append_lines(&ws.log("access.log"), 0, 3_000);
    let mut agent = ws.spawn(&[]);
    let pid = agent.pid();
    let body = wait_health(
        &mut agent,
        Duration::from_secs(30),
        "503 naming the node",
        |c, b| c == 503 && b.contains(&address),
    );
    eprintln!("/health with no node: {body}");
    agent::append_lines(&ws.log("access.log"), 3_000, 6_000);
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        agent.is_running(),
        "the agent gave up before Cassandra existed; stderr:\n{}",
        agent.stderr()
    );

    node("start");
    restart_on_failure.disarm();
    wait_health(
        &mut agent,
        Duration::from_secs(90),
        "200 once the node is up",
        |c, _| c == 200,
    );
    agent::append_lines(&ws.log("access.log"), 6_000, 8_000);
    db.wait_readable();
    wait_all_once(&db, &ws, "web", 8_000, "after Cassandra started late");
    assert_eq!(agent.pid(), pid);
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

/// Starts the faults node again if the test fails while it is stopped, so the next test
/// (and the next run) finds it up.
struct NodeBackUp {
    armed: bool,
}

impl NodeBackUp {
    fn arm() -> NodeBackUp {
        NodeBackUp { armed: true }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for NodeBackUp {
    fn drop(&mut self) {
        if self.armed {
            let _ = support::cassandra::script(&["start", "--profile", "faults"]);
        }
    }
}

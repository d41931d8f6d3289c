//! The network path to Cassandra failing under the real `logship run`: a node that answers
//! late and one that accepts connections and never answers, played by a TCP proxy in the
//! test in front of the real default node (which stays up). And a keyspace without the
//! schema. Rows are counted by content.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::{
    Agent, Db, Source, WAIT, Workspace, assert_exactly_once, nginx_line, open_append, rss_kib,
};
use proxy::{Mode, Proxy};
use support::cassandra::default_node;

/// The agent's resident memory may not grow past this while Cassandra is slow or gone:
/// the buffer is bounded (`[buffer] capacity`) and the files are the rest of the buffer.
const RSS_LIMIT_KIB: u64 = 256 * 1024;

const SLOW: Mode = Mode::Slow {
    min: Duration::from_millis(200),
    max: Duration::from_millis(2000),
};

/// Appends 100 lines every 50 ms until `total` or until stopped.
fn writer(path: std::path::PathBuf, total: u64) -> (Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let written = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&written);
    let handle = std::thread::spawn(move || {
        let mut f = open_append(&path);
        let mut n = 0;
        while n < total {
            let end = (n + 100).min(total);
            let chunk: String = (n..end).map(nginx_line).collect();
            f.write_all(chunk.as_bytes()).expect("append");
            n = end;
            w.store(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    (written, handle)
}

/// Samples the agent's RSS every 200 ms in the background; `peak()` is the highest seen.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start(pid: i32) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match rss_kib(pid) {
                    Some(kib) => {
                        p.fetch_max(kib, Ordering::SeqCst);
                    }
                    None => break,
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        RssWatch { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The last `/health` answers seen, for failure messages.
fn health(agent: &Agent) -> Option<(u16, String)> {
    agent.get("/health")
}

fn wait_health(agent: &mut Agent, timeout: Duration, what: &str, want: impl Fn(u16, &str) -> bool) {
    let start = Instant::now();
    let mut last = None;
    loop {
        assert!(
            agent.is_running(),
            "the agent exited; stderr:\n{}",
            agent.stderr()
        );
        let answer = health(agent);
        if let Some((code, body)) = &answer {
            if want(*code, body) {
                return;
            }
        }
        last = answer.or(last);
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for /health {what}; last {last:?}; stderr:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Timeouts short enough that a black hole shows within seconds.
fn config_via(db: &Db, ws: &Workspace, proxy: &Proxy) {
    let extra = format!(
        "{}request_timeout = \"3s\"\nconnect_timeout = \"2s\"\n\n[cassandra.retry]\n\
         initial_backoff = \"50ms\"\nmax_backoff = \"2s\"\nbreaker_threshold = 5\n\
         breaker_cooldown = \"1s\"\n\n[buffer]\ncapacity = 5000\n\n\
         [batch]\nmax_records = 500\nlinger = \"200ms\"\n",
        db.cassandra_toml_via(&proxy.address())
    );
    ws.write_config(None, &extra, &[Source::nginx("web", &ws.log("*.log"))]);
}

#[test]
fn slow_cassandra_every_answer_late_by_up_to_2s_ships_every_line_once_in_bounded_memory() {
    let Some(db) = Db::new("fault_slow") else {
        return;
    };
    let proxy = Proxy::start(&db.node.contact_point(), SLOW);
    let ws = Workspace::new("fault-slow");
    config_via(&db, &ws, &proxy);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let rss = RssWatch::start(agent.pid());
    const TOTAL: u64 = 10_000;
    let (_, handle) = writer(ws.log("access.log"), TOTAL);
    handle.join().expect("writer");
    db.wait_rows("web", &ws.host, TOTAL as usize);
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly_once(&db.rows_of("web", &ws.host), TOTAL, "through a slow proxy");
    assert!(
        proxy.delayed() > 0,
        "the proxy held back no answer: the test tested nothing"
    );
    let peak = rss.peak();
    eprintln!(
        "slow: peak RSS {peak} KiB, {} answers delayed",
        proxy.delayed()
    );
    assert!(peak > 0 && peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    assert!(agent.is_running(), "stderr:\n{}", agent.stderr());
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

#[test]
fn black_hole_cassandra_accepts_and_never_answers_then_recovers_nothing_lost() {
    let Some(db) = Db::new("fault_hole") else {
        return;
    };
    let proxy = Proxy::start(&db.node.contact_point(), Mode::Pass);
    let ws = Workspace::new("fault-hole");
    config_via(&db, &ws, &proxy);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let pid = agent.pid();
    let rss = RssWatch::start(pid);
    const TOTAL: u64 = 20_000;
    let (written, handle) = writer(ws.log("access.log"), TOTAL);
    db.wait_rows("web", &ws.host, 1_000);
    wait_health(&mut agent, WAIT, "200 before the black hole", |c, _| {
        c == 200
    });

    proxy.set(Mode::BlackHole);
    let holed_at = written.load(Ordering::SeqCst);
    // K1: writes stall (stall_after, 5 s by default), /health says so.
    let seen: Arc<Mutex<Option<String>>> = Arc::default();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(25) {
        if let Some((503, body)) = health(&agent) {
            seen.lock().unwrap().get_or_insert(body);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        proxy.swallowed() > 0,
        "nothing reached the black hole: the test tested nothing"
    );
    assert!(
        agent.is_running() && agent.pid() == pid,
        "stderr:\n{}",
        agent.stderr()
    );
    let during = seen.lock().unwrap().clone();
    eprintln!("black hole from line {holed_at} on; /health said {during:?}");

    proxy.set(Mode::Pass);
    handle.join().expect("writer");
    wait_health(
        &mut agent,
        Duration::from_secs(60),
        "200 after the black hole",
        |c, _| c == 200,
    );
    db.wait_rows("web", &ws.host, TOTAL as usize);
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly_once(&db.rows_of("web", &ws.host), TOTAL, "after a black hole");
    let peak = rss.peak();
    eprintln!(
        "black hole: peak RSS {peak} KiB, {} bytes swallowed",
        proxy.swallowed()
    );
    assert!(peak > 0 && peak < RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
    let during = during.expect("/health never answered 503 while Cassandra was a black hole");
    assert!(
        during.contains("writes stalled for"),
        "K1: /health during a black hole says the writes stalled: {during}"
    );
}

#[test]
fn schema_missing_exits_1_telling_to_run_schema_apply() {
    let Some(node) = default_node() else {
        return;
    };
    let ws = Workspace::new("fault-schema");
    // A keyspace nobody created; then an existing keyspace without the tables.
    for (keyspace, create) in [
        (support::cassandra::unique_keyspace("noschema"), false),
        (support::cassandra::unique_keyspace("notables"), true),
    ] {
        if create {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                let session = logship::sink::session::connect(&node.config(&keyspace))
                    .await
                    .expect("connect");
                session
                    .query_unpaged(
                        format!(
                            "CREATE KEYSPACE {keyspace} WITH replication = \
                             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
                        ),
                        (),
                    )
                    .await
                    .expect("create keyspace");
            });
        }
        let cassandra = format!(
            "[cassandra]\ncontact_points = [\"{}\"]\nkeyspace = \"{keyspace}\"\n",
            node.contact_point()
        );
        ws.write_config(None, &cassandra, &[Source::nginx("web", &ws.log("*.log"))]);
        agent::append_lines(&ws.log("access.log"), 0, 10);
        let mut agent = ws.spawn(&[]);
        let status = agent.wait_exit(Duration::from_secs(60));
        let stderr = agent.stderr();
        assert_eq!(
            status.code(),
            Some(1),
            "keyspace {keyspace}: {status}; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("logship schema apply"),
            "keyspace {keyspace}: the message must say to run `logship schema apply`:\n{stderr}"
        );
        assert!(
            stderr.contains(&keyspace),
            "keyspace {keyspace}: the message names the keyspace:\n{stderr}"
        );
        // One clear line, not a crash: no panic, no backtrace.
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

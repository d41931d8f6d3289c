//! The HTTP events source end to end: the real agent binary, the default Cassandra node,
//! rows read back and counted by content.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use agent::{Db, rss_kib, wait_until};
use proxy::{Mode, Proxy};
use serde_json::json;
use source_http_support::{
    HttpAgent, app_rows, message_counts, ndjson, post, request_bytes, try_post, wait_app_rows,
};

const NDJSON: &str = "application/x-ndjson";
const JSON: &str = "application/json";

/// Event `i` of `service` with a client id and a fixed timestamp, as a retry resends it.
/// The 10,000-connection test takes the machine's sockets, file descriptors and much of
/// its two cores: it runs alone (write lock), the other tests of this file beside each
/// other (read locks), so their Cassandra requests do not time out behind it.
fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    HEAVY.write().unwrap_or_else(|p| p.into_inner())
}

fn beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    HEAVY.read().unwrap_or_else(|p| p.into_inner())
}

static HEAVY: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn event(service: &str, i: usize) -> serde_json::Value {
    json!({
        "id": format!("ev-{i}"),
        "timestamp": format!("2026-11-30T12:00:{:02}.{:06}Z", i % 60, i),
        "service": service,
        "level": if i % 10 == 0 { "warn" } else { "info" },
        "message": format!("event {i}"),
        "request_id": format!("req-{}", i % 7),
        "n": i,
        "user": format!("u{}", i % 3),
    })
}

#[test]
fn ack_written_with_client_retries_lands_every_event_exactly_once() {
    let _heavy = beside_others();
    let Some(db) = Db::new("http_once") else {
        return;
    };
    let service = "shop";
    let setup = HttpAgent::config("h1", &db.cassandra_toml(), "", "ack = \"written\"\n");
    let token_file = setup.ws.path().join("token");
    std::fs::write(&token_file, "t0ken-123\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut text = std::fs::read_to_string(setup.ws.config()).unwrap();
    text.push_str(&format!("token_file = \"{}\"\n", token_file.display()));
    std::fs::write(setup.ws.config(), text).unwrap();
    let mut agent = setup.spawn();
    let port = setup.port;
    let token = Some("t0ken-123");

    let batch = |range: std::ops::Range<usize>| -> Vec<serde_json::Value> {
        range.map(|i| event(service, i)).collect()
    };
    // Without a token, or with a wrong one: 401 and nothing written.
    let body = ndjson(&batch(1000..1001));
    assert_eq!(post(port, &body, NDJSON, None).status, 401);
    let wrong = post(port, &body, NDJSON, Some("t0ken-124"));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("www-authenticate").as_deref(), Some("Bearer"));

    // Batch 0: sent, then the connection is cut before the answer (the client cannot know
    // whether it was written), then sent again.
    let first = ndjson(&batch(0..100));
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&request_bytes(port, &first, NDJSON, token))
            .unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let again = post(port, &first, NDJSON, token);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.ids().len(), 100);
    // Batch 1: answered, then resent anyway (a client that timed out on its side).
    let second = ndjson(&batch(100..200));
    for _ in 0..2 {
        let p = post(port, &second, NDJSON, token);
        assert_eq!(p.status, 200, "{}", p.body);
    }
    // Batch 2: a JSON array; and one single object.
    let third = serde_json::to_vec(&batch(200..299)).unwrap();
    assert_eq!(post(port, &third, JSON, token).status, 200);
    let one = serde_json::to_vec(&event(service, 299)).unwrap();
    let p = post(port, &one, JSON, token);
    assert_eq!(p.status, 200, "{}", p.body);

    // 200 means written: read at once, no waiting.
    let rows = app_rows(&db, service);
    let counts = message_counts(&rows);
    for i in 0..300 {
        assert_eq!(
            counts.get(&format!("event {i}")).copied(),
            Some(1),
            "event {i} is not in Cassandra exactly once (rows: {})",
            rows.len()
        );
    }
    assert_eq!(rows.len(), 300, "rows of {service}");
    for r in &rows {
        let i: usize = r.message["event ".len()..].parse().unwrap();
        let fields = r.fields.clone().unwrap_or_default();
        assert_eq!(
            fields.get("n").map(String::as_str),
            Some(i.to_string().as_str())
        );
        assert_eq!(
            fields.get("user").map(String::as_str),
            Some(format!("u{}", i % 3).as_str())
        );
        assert_eq!(
            r.request_id.as_deref(),
            Some(format!("req-{}", i % 7).as_str())
        );
        assert_eq!(r.level, if i % 10 == 0 { "WARN" } else { "INFO" });
        assert_eq!(r.host, "h1");
        assert_eq!(r.target, "http:events");
    }
    // The event refused for want of a token never landed.
    assert!(!counts.contains_key("event 1000"));
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn ack_written_events_resent_after_an_agent_crash_land_exactly_once() {
    let _heavy = beside_others();
    let Some(db) = Db::new("http_crash") else {
        return;
    };
    let service = "crashy";
    let setup = HttpAgent::config("h6", &db.cassandra_toml(), "", "ack = \"written\"\n");
    let port = setup.port;
    let mut agent = setup.spawn();
    let batch = |range: std::ops::Range<usize>| {
        ndjson(&range.map(|i| event(service, i)).collect::<Vec<_>>())
    };
    assert_eq!(post(port, &batch(0..200), NDJSON, None).status, 200);
    // The second batch is in flight when the agent is killed: the client gets no answer.
    let body = batch(200..400);
    let sender = {
        let body = body.clone();
        std::thread::spawn(move || try_post(port, &body, NDJSON, None).map(|p| p.status))
    };
    std::thread::sleep(Duration::from_millis(20));
    agent.kill9();
    let first = sender.join().unwrap();
    // Restarted, the client resends the batch it has no 200 for (and the first one too,
    // as a client unsure of both would).
    let mut agent = setup.spawn();
    if first.ok() != Some(200) {
        assert_eq!(post(port, &body, NDJSON, None).status, 200);
    }
    assert_eq!(post(port, &batch(0..200), NDJSON, None).status, 200);
    assert_eq!(post(port, &body, NDJSON, None).status, 200);
    let rows = app_rows(&db, service);
    let counts = message_counts(&rows);
    for i in 0..400 {
        assert_eq!(counts.get(&format!("event {i}")), Some(&1), "event {i}");
    }
    assert_eq!(rows.len(), 400);
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_clean_stop_writes_what_ack_accepted_queued() {
    let _heavy = beside_others();
    let Some(db) = Db::new("http_stop") else {
        return;
    };
    let service = "stopping";
    let proxy = Proxy::start(&db.node.contact_point(), Mode::Pass);
    let setup = HttpAgent::config("h7", &db.cassandra_toml_via(&proxy.address()), "", "");
    let port = setup.port;
    let mut agent = setup.spawn();
    let one = |i: usize| json!({"service": service, "message": format!("queued {i}")});
    assert_eq!(post(port, &ndjson(&[one(0)]), NDJSON, None).status, 202);
    wait_app_rows(&db, service, 1);
    // Every answer from Cassandra late by 300 ms: the events are still queued when the
    // agent is told to stop.
    proxy.set(Mode::Slow {
        min: Duration::from_millis(300),
        max: Duration::from_millis(300),
    });
    let events: Vec<_> = (1..3000).map(one).collect();
    assert_eq!(post(port, &ndjson(&events), NDJSON, None).status, 202);
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(40)).success());
    proxy.set(Mode::Pass);
    let rows = app_rows(&db, service);
    let counts = message_counts(&rows);
    let missing: Vec<usize> = (0..3000)
        .filter(|i| counts.get(&format!("queued {i}")) != Some(&1))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of 3000 not written once: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        agent.stderr().contains("http source drained"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn bad_requests_are_refused_with_their_reason_and_slow_or_many_clients_do_not_hold_it() {
    let _heavy = alone();
    let Some(db) = Db::new("http_bad") else {
        return;
    };
    let service = "api";
    let setup = HttpAgent::config(
        "h2",
        &db.cassandra_toml(),
        "",
        "max_body_bytes = 4096\nheader_timeout = \"1s\"\nmax_connections = 64\n",
    );
    let mut agent = setup.spawn();
    let port = setup.port;

    // Not JSON.
    let p = post(port, b"{\"service\": \"api\", ", JSON, None);
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(
        p.json()["invalid"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not JSON"),
        "{}",
        p.body
    );
    // One invalid event in an array: every bad one named, none of the request accepted.
    let arr = json!([
        {"service": service, "message": "should-not-land"},
        {"service": service},
        {"service": service, "message": "x", "timestamp": "yesterday"},
    ]);
    let p = post(port, arr.to_string().as_bytes(), JSON, None);
    assert_eq!(p.status, 400, "{}", p.body);
    let invalid = p.json()["invalid"].as_array().unwrap().clone();
    assert_eq!(invalid.len(), 2, "{}", p.body);
    assert_eq!(invalid[0]["index"], 1);
    assert!(
        invalid[0]["reason"]
            .as_str()
            .unwrap()
            .contains("`message` is required")
    );
    assert_eq!(invalid[1]["index"], 2);
    assert!(invalid[1]["reason"].as_str().unwrap().contains("RFC 3339"));
    // Too large: 413 with the limit named.
    let huge = ndjson(&vec![
        json!({"service": service, "message": "x".repeat(100)});
        100
    ]);
    let p = post(port, &huge, NDJSON, None);
    assert_eq!(p.status, 413, "{}", p.body);
    assert!(p.body.contains("max_body_bytes = 4096"), "{}", p.body);
    // Not a type this source reads.
    assert_eq!(post(port, b"service=api", "text/plain", None).status, 415);

    // A client sending its headers a byte every 200 ms is cut by the 1 s header timeout
    // (the whole head would take 20 s).
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n",
        "a".repeat(80)
    );
    let started = Instant::now();
    let mut cut = None;
    for b in head.bytes() {
        if slow.write_all(&[b]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        slow.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(_) => {
                cut = Some(started.elapsed());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                cut = Some(started.elapsed());
                break;
            }
        }
        slow.set_nonblocking(false).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut = cut.expect("the slow client was never cut off");
    assert!(cut < Duration::from_secs(5), "cut after {cut:?}");

    // 10,000 connections opened and held: over max_connections they are closed at
    // accept; the agent keeps answering and its memory stays bounded.
    raise_fd_limit(10_500);
    let rss_before = rss_kib(agent.pid()).unwrap();
    let mut held = Vec::with_capacity(10_000);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut failed_connects = 0;
    for _ in 0..10_000 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => held.push(s),
            Err(_) => failed_connects += 1,
        }
    }
    assert!(
        held.len() >= 9_000,
        "only {} of 10000 connected ({failed_connects} failed)",
        held.len()
    );
    // Connections past the limit are closed at accept, so a client retries until the
    // held ones have been cut by the header timeout.
    let flood_body = ndjson(&[json!({"service": service, "message": "after the flood"})]);
    let p = wait_until(
        Duration::from_secs(15),
        "an answer while 10,000 connections are held",
        || try_post(port, &flood_body, NDJSON, None).ok(),
    );
    assert_eq!(p.status, 202, "{}", p.body);
    let rss_during = rss_kib(agent.pid()).expect("the agent is alive");
    // Over the limit, connections were closed by the agent: it holds at most 64.
    let open_on_agent = count_fds(agent.pid());
    assert!(
        open_on_agent < 300,
        "the agent holds {open_on_agent} file descriptors"
    );
    drop(held);
    assert!(agent.is_running(), "the agent died:\n{}", agent.stderr());
    // The agent's /metrics counts the connections it closed at accept (10,000 held
    // against a limit of 64: most of them).
    let refused = agent
        .metric("logship_http_connections_refused_total{source=\"events\"}")
        .expect("the refused-connections series");
    assert!(refused >= 5_000.0, "only {refused} connections refused");
    assert!(
        rss_during < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB"
    );

    // What was accepted lands; what was refused did not.
    let rows = wait_app_rows(&db, service, 1);
    std::thread::sleep(Duration::from_secs(1));
    let counts = message_counts(&app_rows(&db, service));
    assert_eq!(counts.get("after the flood"), Some(&1), "{rows:?}");
    assert!(!counts.contains_key("should-not-land"));
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(30)).success());
}

fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with a valid pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            assert!(
                lim.rlim_max >= want,
                "the hard fd limit {} is below {want}: raise it (ulimit -Hn)",
                lim.rlim_max
            );
            lim.rlim_cur = want;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}

fn count_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_full_queue_answers_429_storage_down_answers_503_and_nothing_accepted_is_lost() {
    let _heavy = beside_others();
    let Some(db) = Db::new("http_full") else {
        return;
    };
    let service = "queue";
    let proxy = Proxy::start(&db.node.contact_point(), Mode::Pass);
    let cassandra = format!(
        "{}request_timeout = \"4s\"\nconnect_timeout = \"2s\"\n\n[cassandra.retry]\n\
         initial_backoff = \"50ms\"\nmax_backoff = \"1s\"\nbreaker_threshold = 3\n\
         breaker_cooldown = \"1s\"\n\n[batch]\nmax_records = 50\nlinger = \"100ms\"\n",
        db.cassandra_toml_via(&proxy.address())
    );
    let setup = HttpAgent::config("h3", &cassandra, "", "queue_capacity = 200\n");
    let mut agent = setup.spawn();
    let port = setup.port;
    let body = |tag: &str, n: usize| {
        let events: Vec<_> = (0..n)
            .map(|i| json!({"service": service, "message": format!("{tag}-{i}")}))
            .collect();
        ndjson(&events)
    };
    // Connected and writing first.
    assert_eq!(post(port, &body("warm", 1), NDJSON, None).status, 202);
    wait_app_rows(&db, service, 1);

    // Cassandra stops answering: the unit in hand hangs, the queue fills, 429.
    proxy.set(Mode::BlackHole);
    let mut accepted: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    let mut saw_429 = false;
    let started = Instant::now();
    let mut k = 0;
    while !saw_429 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no 429 within 30 s"
        );
        let tag = format!("full{k}");
        k += 1;
        let p = post(port, &body(&tag, 40), NDJSON, None);
        match p.status {
            202 => accepted.push(tag),
            429 => {
                assert_eq!(p.header("retry-after").as_deref(), Some("1"), "{}", p.head);
                assert!(p.body.contains("queue is full"), "{}", p.body);
                saw_429 = true;
                refused.push(tag);
            }
            503 => refused.push(tag),
            other => panic!("unexpected {other}: {}", p.body),
        }
    }
    // Cassandra down: once the breaker opens, 503 with Retry-After.
    proxy.set(Mode::Refuse);
    let p = wait_until(
        Duration::from_secs(90),
        "a 503 while Cassandra is down",
        || {
            let tag = format!("down{k}");
            k += 1;
            let p = post(port, &body(&tag, 1), NDJSON, None);
            match p.status {
                503 => {
                    refused.push(tag);
                    Some(p)
                }
                202 => {
                    accepted.push(tag);
                    std::thread::sleep(Duration::from_millis(200));
                    None
                }
                _ => {
                    refused.push(tag);
                    std::thread::sleep(Duration::from_millis(200));
                    None
                }
            }
        },
    );
    assert!(p.header("retry-after").is_some(), "{}", p.head);
    assert!(p.body.contains("circuit open"), "{}", p.body);

    // The agent's own endpoints tell it: /health 503 naming the source, /metrics its
    // breaker open. The source's port serves only /events.
    let health = wait_until(
        Duration::from_secs(30),
        "/health 503 naming the stalled http source",
        || match agent.get("/health") {
            Some((503, body)) if body.contains("http source events: writes stalled") => Some(body),
            _ => None,
        },
    );
    let health: serde_json::Value = serde_json::from_str(&health).expect("/health is JSON");
    assert_eq!(health["http_sources"][0]["name"], "events", "{health}");
    assert_eq!(health["http_sources"][0]["stalled"], true, "{health}");
    assert_eq!(
        agent.metric("logship_http_circuit_state{source=\"events\"}"),
        Some(2.0)
    );
    assert_eq!(
        agent::http_get(port, "/metrics").map(|(status, _)| status),
        Some(404)
    );

    // Back: every accepted event lands exactly once, no refused one does.
    proxy.set(Mode::Pass);
    let want: Vec<String> = accepted
        .iter()
        .flat_map(|tag| {
            let n = if tag.starts_with("full") { 40 } else { 1 };
            (0..n).map(move |i| format!("{tag}-{i}"))
        })
        .collect();
    let rows = wait_app_rows(&db, service, want.len() + 1);
    std::thread::sleep(Duration::from_secs(1));
    let counts = message_counts(&app_rows(&db, service));
    for m in &want {
        assert_eq!(
            counts.get(m),
            Some(&1),
            "{m} not exactly once ({} rows)",
            rows.len()
        );
    }
    for tag in &refused {
        assert!(
            !counts.keys().any(|m| m.starts_with(&format!("{tag}-"))),
            "an event of refused request {tag} landed"
        );
    }
    assert_eq!(counts.values().sum::<usize>(), want.len() + 1);

    // Written again: /health 200, and the agent's /metrics agrees with what the client saw.
    wait_until(
        Duration::from_secs(30),
        "/health 200 after the outage",
        || matches!(agent.get("/health"), Some((200, _))).then_some(()),
    );
    let m = agent.metrics();
    let series = |s: &str| agent::metric_value(&m, s).unwrap_or(0.0) as usize;
    assert_eq!(
        series("logship_http_requests_total{source=\"events\",status=\"202\"}"),
        accepted.len() + 1,
        "{m}"
    );
    assert!(series("logship_http_requests_total{source=\"events\",status=\"429\"}") >= 1);
    assert!(series("logship_http_requests_total{source=\"events\",status=\"503\"}") >= 1);
    let answered: usize = m
        .lines()
        .filter(|l| l.starts_with("logship_http_requests_total{source=\"events\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    // + the warm-up request and the 404 from the source's port.
    assert_eq!(answered, accepted.len() + refused.len() + 2, "{m}");
    assert_eq!(
        series("logship_http_events_total{source=\"events\",outcome=\"accepted\"}"),
        want.len() + 1,
        "{m}"
    );
    let refused_events: usize = refused
        .iter()
        .map(|tag| if tag.starts_with("full") { 40 } else { 1 })
        .sum();
    assert_eq!(
        series("logship_http_events_total{source=\"events\",outcome=\"rejected\"}"),
        refused_events,
        "{m}"
    );
    assert_eq!(
        series("logship_http_circuit_state{source=\"events\"}"),
        0,
        "{m}"
    );
    assert_eq!(
        series("logship_http_queue_capacity{source=\"events\"}"),
        200
    );
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(40)).success());
}

#[test]
fn with_tls_the_source_speaks_https_only() {
    let _heavy = beside_others();
    let Some(db) = Db::new("http_tls") else {
        return;
    };
    let (Some(openssl), Some(curl)) = (
        support::prereq::require(support::prereq::find_tool("openssl")),
        support::prereq::require(support::prereq::find_tool("curl")),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = std::process::Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let setup = HttpAgent::config("h5", &db.cassandra_toml(), "", &keys);
    let mut agent = setup.spawn();
    let url = format!("https://127.0.0.1:{}/events", setup.port);
    let out = std::process::Command::new(curl)
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(&cert)
        .args(["-H", "Content-Type: application/json", "--data"])
        .arg(r#"{"service":"tls-app","message":"over tls"}"#)
        .arg(&url)
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.ends_with("\n202"),
        "{answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(try_post(setup.port, b"{}", JSON, None).is_err());
    let rows = wait_app_rows(&db, "tls-app", 1);
    assert_eq!(rows[0].message, "over tls");
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(30)).success());
}

/// The Python script the handler tests run: logs `N` records through the handler, half
/// with the request id in a contextvar and half in `extra=`, then exits (the atexit hook
/// flushes) printing the handler's counters as JSON.
const PY_SCRIPT: &str = r#"
import json, logging, sys
sys.path.insert(0, sys.argv[1])
from logship_handler import LogshipHandler, request_id

url, n, capacity = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
handler = LogshipHandler(url, service="py-app", capacity=capacity, batch_size=100,
                         flush_interval=0.2, timeout=2.0, max_retries=2, exit_timeout=3.0)
log = logging.getLogger("py.app")
log.setLevel(logging.DEBUG)
log.addHandler(handler)
for i in range(n):
    if i % 2 == 0:
        request_id.set(f"ctx-{i % 5}")
        log.info("record %d", i, extra={"order": i, "tags": ["a", "b"]})
    else:
        request_id.set(None)
        log.warning("record %d", i, extra={"order": i, "request_id": f"extra-{i % 3}"})
print(json.dumps({"dropped": handler.dropped}), flush=True)
handler.close()
print(json.dumps({"dropped": handler.dropped, "sent": handler.sent, "failed": handler.failed}))
"#;

fn python() -> Option<std::path::PathBuf> {
    support::prereq::require(support::prereq::find_tool("python3"))
}

fn run_python(url: &str, n: usize, capacity: usize) -> (std::process::Output, serde_json::Value) {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(PY_SCRIPT)
        .arg(&examples)
        .arg(url)
        .arg(n.to_string())
        .arg(capacity.to_string())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or("{}").to_owned();
    let stats = serde_json::from_str(&last).unwrap_or_else(|e| {
        panic!(
            "python printed no counters ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, stats)
}

#[test]
fn the_python_handler_ships_every_record_with_its_extra_fields_and_request_id() {
    let _heavy = beside_others();
    let Some(db) = Db::new("http_py") else {
        return;
    };
    if python().is_none() {
        return;
    }
    let setup = HttpAgent::config("h4", &db.cassandra_toml(), "", "");
    let mut agent = setup.spawn();
    let url = format!("http://127.0.0.1:{}/events", setup.port);
    let n = 1000;
    let (out, stats) = run_python(&url, n, 10_000);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats["dropped"], 0, "{stats}");
    assert_eq!(stats["sent"], n, "{stats}");
    wait_app_rows(&db, "py-app", n);
    std::thread::sleep(Duration::from_secs(1));
    let rows = app_rows(&db, "py-app");
    let counts = message_counts(&rows);
    assert_eq!(rows.len(), n);
    for r in &rows {
        let i: usize = r.message["record ".len()..].parse().unwrap();
        assert_eq!(counts[&r.message], 1, "{} twice", r.message);
        let fields = r.fields.clone().unwrap_or_default();
        assert_eq!(fields.get("order"), Some(&i.to_string()), "{r:?}");
        assert_eq!(fields.get("logger").map(String::as_str), Some("py.app"));
        if i % 2 == 0 {
            assert_eq!(r.request_id, Some(format!("ctx-{}", i % 5)), "{r:?}");
            assert_eq!(fields.get("tags").map(String::as_str), Some(r#"["a","b"]"#));
            assert_eq!(r.level, "INFO");
        } else {
            assert_eq!(r.request_id, Some(format!("extra-{}", i % 3)), "{r:?}");
            assert_eq!(r.level, "WARN");
        }
    }
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn the_python_handler_never_blocks_the_caller_when_the_agent_is_gone() {
    let _heavy = beside_others();
    if python().is_none() {
        return;
    }
    // Nothing listens here: the worker's posts fail, the bounded queue fills, records are
    // dropped and counted, and exit waits for at most exit_timeout (3 s) plus one attempt.
    let url = format!("http://127.0.0.1:{}/events", agent::free_port());
    let started = Instant::now();
    let (out, stats) = run_python(&url, 5000, 100);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let during: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    // The worker holds at most one batch of 100 and the queue 100: the rest was dropped.
    assert!(during["dropped"].as_u64().unwrap() >= 4800, "{during}");
    assert_eq!(stats["sent"], 0, "{stats}");
    assert_eq!(
        stats["dropped"].as_u64().unwrap() + stats["failed"].as_u64().unwrap(),
        5000,
        "every record is either dropped or failed, counted: {stats}"
    );
    assert!(took < Duration::from_secs(30), "the script took {took:?}");
}

/// What the HTTP source tests share: an agent with one `type = "http"` source, a raw
/// HTTP/1.1 POST (the tests need to cut connections and send byte by byte, which a client
/// library hides), and the `application_logs` rows of one service read back.
#[allow(dead_code)]
mod source_http_support {

    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Duration;

    use crate::agent::{Agent, Db, Workspace, free_port, wait_until};
    use crate::support::records::{APP_COLUMNS, AppRow, query_app};

    /// One answer: status, raw head and body.
    #[derive(Debug, Clone)]
    pub(crate) struct Post {
        pub(crate) status: u16,
        pub(crate) head: String,
        pub(crate) body: String,
    }

    impl Post {
        pub(crate) fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap_or_else(|e| {
                panic!("answer {} is not JSON ({e}): {}", self.status, self.body)
            })
        }

        /// The value of header `name` (case-insensitive).
        pub(crate) fn header(&self, name: &str) -> Option<String> {
            self.head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        }

        /// The ids the source assigned.
        pub(crate) fn ids(&self) -> Vec<String> {
            self.json()["ids"]
                .as_array()
                .unwrap_or_else(|| panic!("no ids in {}", self.body))
                .iter()
                .map(|v| v.as_str().expect("id string").to_owned())
                .collect()
        }
    }

    /// The bytes of `POST /events` with `body`.
    pub(crate) fn request_bytes(
        port: u16,
        body: &[u8],
        content_type: &str,
        token: Option<&str>,
    ) -> Vec<u8> {
        let mut head = format!(
            "POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// Sends `POST /events` and reads the whole answer.
    pub(crate) fn post(port: u16, body: &[u8], content_type: &str, token: Option<&str>) -> Post {
        try_post(port, body, content_type, token)
            .unwrap_or_else(|e| panic!("POST /events on 127.0.0.1:{port}: {e}"))
    }

    pub(crate) fn try_post(
        port: u16,
        body: &[u8],
        content_type: &str,
        token: Option<&str>,
    ) -> std::io::Result<Post> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(&request_bytes(port, body, content_type, token))?;
        let mut raw = Vec::new();
        // The server may answer (413) and close before reading the whole body: keep what came.
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
        Ok(Post {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }

    /// NDJSON of `events`.
    pub(crate) fn ndjson(events: &[serde_json::Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            out.extend_from_slice(e.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// A workspace whose agent has one http source on a free port with `keys` added.
    pub(crate) struct HttpAgent {
        pub(crate) ws: Workspace,
        pub(crate) port: u16,
    }

    impl HttpAgent {
        /// Writes the config: `cassandra` section, `extra` sections, the http source.
        pub(crate) fn config(host: &str, cassandra: &str, extra: &str, keys: &str) -> HttpAgent {
            let ws = Workspace::new(host);
            let port = free_port();
            let text = format!(
                "{}{cassandra}{extra}\n[[source]]\nname = \"events\"\ntype = \"http\"\n\
                 listen = \"127.0.0.1:{port}\"\n{keys}",
                ws.agent_toml()
            );
            std::fs::write(ws.config(), text).expect("write config");
            HttpAgent { ws, port }
        }

        /// Starts the agent and waits until it is ready and the source listens.
        pub(crate) fn spawn(&self) -> Agent {
            let mut agent = self.ws.spawn(&[]);
            agent.wait_ready();
            agent.wait_log("http source listening", Duration::from_secs(10));
            agent
        }
    }

    /// Every `application_logs` row of `service` in `db`.
    pub(crate) fn app_rows(db: &Db, service: &str) -> Vec<AppRow> {
        let cql = format!("SELECT {APP_COLUMNS} FROM {}.application_logs", db.keyspace);
        db.rt
            .block_on(query_app(&db.session, &cql, ()))
            .into_iter()
            .filter(|r| r.service == service)
            .collect()
    }

    /// Waits until `service` has at least `n` rows; returns them.
    pub(crate) fn wait_app_rows(db: &Db, service: &str, n: usize) -> Vec<AppRow> {
        wait_until(
            crate::agent::WAIT,
            &format!("{n} rows of service {service}"),
            || {
                let rows = app_rows(db, service);
                (rows.len() >= n).then_some(rows)
            },
        )
    }

    /// The messages of `rows`, each with how often it occurs.
    pub(crate) fn message_counts(rows: &[AppRow]) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for r in rows {
            *m.entry(r.message.clone()).or_default() += 1;
        }
        m
    }
}

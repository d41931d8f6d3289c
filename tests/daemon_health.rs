//! Health that tells the truth during an outage (K1), with the real binary and the real
//! Cassandra: the keyspace's replication is raised to 3 on the single test node, so every
//! `LOCAL_QUORUM` write is refused as `Unavailable` (a stall without killing a node), then
//! set back to 1.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;
use std::time::{Duration, Instant};

use agent::{Db, Source, WAIT, Workspace, append_lines, assert_exactly_once, wait_until};

fn health(agent: &agent::Agent) -> Option<(u16, serde_json::Value)> {
    let (code, body) = agent.get("/health")?;
    Some((code, serde_json::from_str(&body).ok()?))
}

fn set_replication(db: &Db, rf: u32) {
    let cql = format!(
        "ALTER KEYSPACE {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}",
        db.keyspace
    );
    db.rt
        .block_on(db.session.query_unpaged(cql, ()))
        .expect("alter keyspace");
}

#[test]
fn writes_refused_as_unavailable_make_health_503_with_the_reason_then_200_when_they_resume() {
    let Some(db) = Db::new("stall") else {
        return;
    };
    let ws = Workspace::new("stall");
    ws.write_config(Some(&db), "", &[Source::nginx("web", &ws.log("*.log"))]);
    fs::write(ws.dropin("stall.toml"), "[agent]\nstall_after = \"2s\"\n").unwrap();
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let log = ws.log("access.log");
    append_lines(&log, 0, 100);
    db.wait_rows("web", &ws.host, 100);
    let (code, body) = health(&agent).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(agent.metric("logship_sink_connected{}"), Some(1.0));

    set_replication(&db, 3);
    let stalled_at = Instant::now();
    append_lines(&log, 100, 200);
    let (_, body) = wait_until(WAIT, "/health 503", || {
        health(&agent).filter(|(c, _)| *c == 503)
    });
    let took = stalled_at.elapsed();
    let reason = body["reasons"][0].as_str().unwrap_or_default().to_owned();
    assert!(reason.starts_with("writes stalled for"), "{body}");
    assert!(
        reason.to_lowercase().contains("unavailable"),
        "names Cassandra's reason: {body}"
    );
    // stall_after is 2 s: 503 comes from the stall, not after the breaker's attempts.
    assert!(took < Duration::from_secs(15), "503 after {took:?}");
    // A node answers (refusing): connected, with records waiting unacknowledged.
    assert_eq!(agent.metric("logship_sink_connected{}"), Some(1.0));
    let age = agent
        .metric("logship_oldest_unacked_age_seconds{}")
        .unwrap();
    assert!(age >= 2.0, "oldest unacknowledged age {age}");
    agent.wait_log("writes stopped making progress", WAIT);

    // Let it stall a few seconds, then let the cluster take writes again.
    std::thread::sleep(Duration::from_secs(3));
    set_replication(&db, 1);
    let back = Instant::now();
    wait_until(WAIT, "/health 200 again", || {
        health(&agent).filter(|(c, _)| *c == 200)
    });
    let resumed_in = back.elapsed();
    // The open breaker probes at most 2 s apart.
    assert!(
        resumed_in < Duration::from_secs(10),
        "resumed after {resumed_in:?}"
    );
    agent.wait_log("writes resumed after", WAIT);
    let rows = db.wait_rows("web", &ws.host, 200);
    assert_exactly_once(&rows, 200, "through the stall");
    let stderr = agent.stderr();
    assert_eq!(
        stderr.matches("writes stopped making progress").count(),
        1,
        "one WARN: {stderr}"
    );
    assert_eq!(
        stderr.matches("writes resumed after").count(),
        1,
        "one INFO: {stderr}"
    );
    // The outage is measured from the last acknowledgement: at least the 3 s waited.
    let line = stderr
        .lines()
        .find(|l| l.contains("writes resumed after"))
        .unwrap();
    let secs: f64 = line
        .split("writes resumed after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {line}"));
    assert!(secs >= 5.0, "outage of {secs} s in {line}");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

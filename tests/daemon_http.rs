//! `/metrics` and `/health` of the running agent: counters follow the lines written, health
//! is 200 while Cassandra takes writes and 503 with the reason while it cannot be reached.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::time::Duration;

use agent::{Db, Source, WAIT, Workspace, append_lines, metric_value, wait_until};

fn health_json(agent: &agent::Agent) -> Option<(u16, serde_json::Value)> {
    let (code, body) = agent.get("/health")?;
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/health body is not JSON ({e}): {body:?}"));
    Some((code, json))
}

#[test]
fn metrics_follow_the_lines_and_health_is_200_while_writing() {
    let Some(db) = Db::new("http") else {
        return;
    };
    let ws = Workspace::new("http");
    ws.write_config(Some(&db), "", &[Source::nginx("web", &ws.log("*.log"))]);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();

    let (code, body) = wait_until(WAIT, "/health 200", || {
        health_json(&agent).filter(|(c, _)| *c == 200)
    });
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["reasons"], serde_json::json!([]), "{body}");

    let m = agent.metrics();
    let v = |m: &str, s: &str| metric_value(m, s);
    assert_eq!(v(&m, "logship_sink_connected{}"), Some(1.0), "{m}");
    assert_eq!(
        v(&m, "logship_lines_read_total{source=\"web\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        v(
            &m,
            "logship_rows_written_total{table=\"infrastructure_logs\"}"
        ),
        Some(0.0),
        "{m}"
    );
    assert_eq!(v(&m, "logship_buffer_capacity{}"), Some(10_000.0), "{m}");
    assert_eq!(v(&m, "logship_circuit_state{}"), Some(0.0), "{m}");

    // 1000 good lines and one that is not nginx: shipped with a parse error, counted.
    let log = ws.log("access.log");
    append_lines(&log, 0, 1000);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"this is not an access log line\n"))
        .unwrap();
    let m = wait_until(WAIT, "1001 rows written", || {
        let m = agent.metrics();
        (v(
            &m,
            "logship_rows_written_total{table=\"infrastructure_logs\"}",
        )? >= 1001.0)
            .then_some(m)
    });
    assert_eq!(
        v(
            &m,
            "logship_rows_written_total{table=\"infrastructure_logs\"}"
        ),
        Some(1001.0),
        "{m}"
    );
    assert_eq!(
        v(&m, "logship_lines_read_total{source=\"web\"}"),
        Some(1001.0),
        "{m}"
    );
    assert_eq!(
        v(&m, "logship_records_total{source=\"web\"}"),
        Some(1001.0),
        "{m}"
    );
    assert_eq!(
        v(&m, "logship_parse_errors_total{source=\"web\"}"),
        Some(1.0),
        "{m}"
    );
    let bytes = std::fs::metadata(&log).unwrap().len() as f64;
    assert_eq!(
        v(&m, "logship_bytes_read_total{source=\"web\"}"),
        Some(bytes),
        "{m}"
    );
    assert_eq!(
        v(&m, "logship_files_watched{source=\"web\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(
        v(&m, "logship_buffer_high_water{}").is_some_and(|h| h >= 1.0),
        "{m}"
    );
    assert!(
        v(&m, "logship_units_written_total{}").is_some_and(|u| u >= 1.0),
        "{m}"
    );
    assert!(
        v(&m, "logship_write_unit_duration_seconds_count").is_some_and(|c| c >= 1.0),
        "{m}"
    );
    // Acknowledged rows move the checkpoint: the lag drops to zero.
    let lag_series = format!(
        "logship_checkpoint_lag_bytes{{source=\"web\",file=\"{}\"}}",
        log.display()
    );
    wait_until(WAIT, "checkpoint lag 0", || {
        (agent.metric(&lag_series)? == 0.0).then_some(())
    });
    let rows = db.rows_of("web", &ws.host);
    assert_eq!(rows.len(), 1001);
    assert_eq!(rows.iter().filter(|r| r.parse_error.is_some()).count(), 1);
    assert_eq!(health_json(&agent).map(|(c, _)| c), Some(200));

    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

#[test]
fn unreachable_cassandra_gives_503_naming_the_contact_point_and_the_agent_keeps_retrying() {
    // No Cassandra needed: nothing listens on port 1.
    let ws = Workspace::new("http-down");
    ws.write_config(
        None,
        "[cassandra]\ncontact_points = [\"127.0.0.1:1\"]\nkeyspace = \"nowhere\"\n\n",
        &[Source::nginx("web", &ws.log("*.log"))],
    );
    append_lines(&ws.log("access.log"), 0, 10);
    let mut agent = ws.spawn(&[]);
    let (_, body) = wait_until(WAIT, "/health 503", || {
        health_json(&agent).filter(|(c, _)| *c == 503)
    });
    assert_eq!(body["status"], "unhealthy", "{body}");
    let reasons = body["reasons"].to_string();
    assert!(
        reasons.contains("127.0.0.1:1"),
        "the reason names the contact point: {body}"
    );
    agent.wait_log("cannot reach Cassandra; retrying", WAIT);
    let m = agent.metrics();
    assert_eq!(
        metric_value(&m, "logship_sink_connected{}"),
        Some(0.0),
        "{m}"
    );

    // Past start-up's wait for the sink (30 s) it reports ready anyway and keeps running,
    // still unhealthy, the lines kept in the file (read, never acknowledged).
    agent.wait_ready();
    assert!(agent.is_running(), "{}", agent.stderr());
    let (code, body) = health_json(&agent).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(
        body["reasons"].to_string().contains("127.0.0.1:1"),
        "{body}"
    );
    assert_eq!(
        agent
            .stderr()
            .matches("cannot reach Cassandra; retrying")
            .count(),
        1,
        "the agent logs the state change once, not once per attempt:\n{}",
        agent.stderr()
    );

    // SIGTERM while still retrying: exits within the drain deadline.
    agent.signal(libc::SIGTERM);
    let status = agent.wait_exit(Duration::from_secs(45));
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
}

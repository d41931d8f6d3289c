//! SIGTERM drains: every line read is written to Cassandra before the agent exits 0, and
//! the final checkpoints make the next start read nothing twice.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::time::Duration;

use agent::{Db, Source, WAIT, Workspace, append_lines, assert_exactly_once, wait_until};

const N: u64 = 20_000;

#[test]
fn sigterm_drains_every_buffered_line_then_exits_0() {
    let Some(db) = Db::new("drain") else {
        return;
    };
    let ws = Workspace::new("drain");
    let source = Source::nginx("web", &ws.log("*.log"));
    // Units never fill (max_records > N) and never linger out before SIGTERM, so every
    // row must come from the drain itself.
    ws.write_config(
        Some(&db),
        "[buffer]\ncapacity = 50000\n\n[batch]\nmax_records = 25000\nlinger = \"10m\"\n\n",
        std::slice::from_ref(&source),
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    append_lines(&ws.log("access.log"), 0, N);
    wait_until(WAIT, "every line read into the buffer", || {
        (agent.metric("logship_lines_read_total{source=\"web\"}")? >= N as f64).then_some(())
    });
    let before = agent.metrics();
    agent.signal(libc::SIGTERM);
    assert_eq!(
        agent::metric_value(
            &before,
            "logship_rows_written_total{table=\"infrastructure_logs\"}"
        ),
        Some(0.0),
        "rows were written before SIGTERM: the drain is not what is tested"
    );
    // The default drain deadline is 20 s.
    let status = agent.wait_exit(Duration::from_secs(45));
    let stderr = agent.stderr();
    assert_eq!(status.code(), Some(0), "exit code; stderr:\n{stderr}");
    assert!(stderr.contains("stopping: draining"), "{stderr}");
    assert!(stderr.contains("final checkpoints written"), "{stderr}");
    assert!(!stderr.contains("shutdown deadline passed"), "{stderr}");
    let rows = db.rows_of("web", &ws.host);
    assert_exactly_once(&rows, N, "after the drain");

    // The final checkpoints cover every line: a restart reads only what is new.
    ws.write_config(Some(&db), "[batch]\nlinger = \"200ms\"\n\n", &[source]);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    append_lines(&ws.log("access.log"), N, N + 1);
    let rows = db.wait_rows("web", &ws.host, N as usize + 1);
    assert_exactly_once(&rows, N + 1, "after the restart");
    assert_eq!(
        agent.metric("logship_lines_read_total{source=\"web\"}"),
        Some(1.0),
        "the restart read lines again that the drain had checkpointed"
    );
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

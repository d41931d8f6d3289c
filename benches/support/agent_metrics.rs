//! The agent's `/metrics` as the benchmarks read it: a free port for `[metrics] listen` and
//! the rows the agent had acknowledged. Included with
//! `#[path = "support/agent_metrics.rs"] mod agent_metrics;`.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

pub(crate) fn rows_written(port: u16) -> Option<f64> {
    metric(
        &scrape(port)?,
        "logship_rows_written_total{table=\"infrastructure_logs\"}",
    )
}

/// Flush units written and the seconds spent writing them (the drain loop's
/// `write_unit_duration_seconds`), to tell time writing from time between units.
#[allow(dead_code)] // Not every bench that includes this file reads it.
pub(crate) fn unit_write_time(port: u16) -> Option<(f64, f64)> {
    let text = scrape(port)?;
    let series = |name: &str| {
        metric(
            &text,
            &format!("logship_write_unit_duration_seconds_{name}"),
        )
        .or_else(|| {
            metric(
                &text,
                &format!("logship_write_unit_duration_seconds_{name}{{}}"),
            )
        })
    };
    Some((series("count")?, series("sum")?))
}

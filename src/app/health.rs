//! What the agent says about itself: `/health` and `/metrics` on the HTTP endpoint, and
//! `STATUS=` for `systemctl status`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use logship::config::Config;
use logship::pipeline::heartbeat;
use logship::pipeline::progress::Progress;
use logship::pipeline::queue::QueueStats;
use logship::sink::CircuitState;
use logship::sink::output::SinkKind;
use logship::source::http::HttpSnapshot;
use logship::tail::TailMonitor;
use logship::telemetry::{http, metrics};
use tracing::error;

use super::STUCK_AFTER;
use super::sink_state::SinkState;

/// Binds `[metrics] listen` and serves `/metrics` and `/health` on the runtime.
pub(super) fn start_http(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    probes: metrics::Probes,
    state: Arc<SinkState>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = config.metrics.listen;
    let listener = runtime
        .block_on(http::bind(addr))
        .with_context(|| format!("cannot listen on {addr} for /metrics ([metrics] listen)"))?;
    let progress = Arc::clone(&probes.sink);
    let queue = Arc::clone(&probes.queue);
    let http_sources = probes.http.clone();
    let registry = Arc::new(metrics::registry(probes));
    let render: http::RenderMetrics = Arc::new(move || metrics::render(&registry));
    let health: http::CheckHealth =
        Arc::new(move || health(&state, &progress, queue(), &http_sources.snapshot()));
    Ok(runtime.spawn(async move {
        if let Err(e) = http::serve(listener, render, health).await {
            error!(error = %e, "the metrics endpoint stopped");
        }
    }))
}

/// 200 when the sink is open, every record handed to it is acknowledged within
/// `stall_after` (by the file pipeline and by every HTTP source) and every thread is
/// alive; 503 with the reasons otherwise.
fn health(
    state: &SinkState,
    progress: &Progress,
    q: QueueStats,
    http_sources: &[HttpSnapshot],
) -> Result<serde_json::Value, serde_json::Value> {
    let mut reasons = Vec::new();
    if !state.ready() {
        reasons.push(
            state
                .problem()
                .unwrap_or_else(|| format!("the {} sink is not open yet", progress.sink())),
        );
    } else if let Some(stall) = progress.stall() {
        // One truth for an outage: records waiting too long, with the output's reason.
        // The breaker's state is the means of waiting, shown in `/metrics`.
        reasons.push(stall);
    }
    for source in http_sources {
        if let Some(stall) = &source.stall {
            reasons.push(format!("http source {}: {stall}", source.name));
        }
    }
    for (thread, silent) in heartbeat::stuck(STUCK_AFTER) {
        reasons.push(format!(
            "the {thread} thread has not run for {} s",
            silent.as_secs()
        ));
    }
    let body = serde_json::json!({
        "status": if reasons.is_empty() { "ok" } else { "unhealthy" },
        "reasons": reasons,
        "sink": progress.sink(),
        "buffer_depth": q.depth,
        "buffer_capacity": q.capacity,
        "oldest_unacked_age_seconds": progress.oldest_unacked_age().map(|a| a.as_secs_f64()),
        "http_sources": http_sources.iter().map(|s| serde_json::json!({
            "name": s.name,
            "circuit": format!("{:?}", s.circuit).to_lowercase(),
            "stalled": s.stall.is_some(),
            "queue_depth": s.queue_depth,
            "queue_capacity": s.queue_capacity,
        })).collect::<Vec<_>>(),
    });
    if reasons.is_empty() {
        Ok(body)
    } else {
        Err(body)
    }
}

/// `STATUS=` for `systemctl status`: rate, lag and the sink's state.
pub(super) struct StatusLine {
    tail: TailMonitor,
    /// When the line was last rendered, and the lines read by then (for the rate).
    last: Option<(Instant, u64)>,
}

impl StatusLine {
    pub(super) fn new(tail: TailMonitor) -> Self {
        StatusLine { tail, last: None }
    }

    /// The line now; the rate is lines read per second since the previous call.
    pub(super) fn render(
        &mut self,
        state: &SinkState,
        progress: &Progress,
        config: &Config,
    ) -> String {
        let snap = self.tail.snapshot();
        let lines: u64 = snap.sources.iter().map(|s| s.lines).sum();
        let lag: u64 = snap.files.iter().map(|f| f.lag).sum();
        let now = Instant::now();
        let rate = match self.last {
            Some((t, l)) if now > t => (lines.saturating_sub(l)) as f64 / (now - t).as_secs_f64(),
            _ => 0.0,
        };
        self.last = Some((now, lines));
        let name = progress.sink();
        let sink = if !state.ready() {
            match config.sink.kind {
                SinkKind::Cassandra => format!(
                    "waiting for Cassandra at {}",
                    config.cassandra.endpoints_display()
                ),
                _ => format!("opening the {name} sink"),
            }
        } else if let Some(stall) = progress.stall() {
            format!("{name}: {stall}")
        } else if progress.circuit() == CircuitState::Closed {
            format!("{name} ok")
        } else {
            format!("{name} circuit {:?}", progress.circuit())
        };
        format!(
            "{:.0} lines/s, lag {} bytes, {} files, {}",
            rate,
            lag,
            snap.files.len(),
            sink
        )
    }
}

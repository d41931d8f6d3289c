//! The Prometheus view of the agent: read from the tailer's, the queue's and the sink's
//! own counters at scrape time, so the hot paths pay for plain atomics only.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::pipeline::progress::Progress;
use crate::pipeline::queue::QueueStats;
use crate::sink::LATENCY_BOUNDS_SECONDS;
use crate::tail::TailMonitor;

/// Everything a scrape reads.
#[derive(Clone)]
pub struct Probes {
    /// The tailer's per-source and per-file counters.
    pub tail: TailMonitor,
    /// The queue's depth and capacity now (a closure over a receiver, so holding it
    /// never keeps the queue open).
    pub queue: Arc<dyn Fn() -> QueueStats + Send + Sync>,
    /// The drain loop's progress: write counters, breaker, reachability.
    pub sink: Arc<Progress>,
    /// Records of the agent's own logs read back from a syslog file and not shipped.
    pub own_records_skipped: Arc<std::sync::atomic::AtomicU64>,
    /// The syslog listeners' message and drop counters.
    pub syslog: crate::source::syslog::SyslogStats,
    /// The HTTP sources' request, event and connection counters and their drain loops.
    pub http: crate::source::http::HttpProbes,
}

impl fmt::Debug for Probes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probes").finish_non_exhaustive()
    }
}

/// A registry holding the agent's collector.
pub fn registry(probes: Probes) -> Registry {
    let mut registry = Registry::with_prefix("logship");
    registry.register_collector(Box::new(AgentCollector(probes)));
    registry
}

/// Renders the registry as OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[derive(Debug)]
struct AgentCollector(Probes);

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, &str)>, u64)],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        let metric = ConstCounter::new(*value);
        metric.encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, &str)>, i64)],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        let metric = ConstGauge::new(*value);
        metric.encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for AgentCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let tail = self.0.tail.snapshot();
        let per_source =
            |f: fn(&crate::tail::SourceStats) -> u64| -> Vec<(Vec<(&str, &str)>, u64)> {
                tail.sources
                    .iter()
                    .map(|s| (vec![("source", &*s.name)], f(s)))
                    .collect()
            };
        counter(
            &mut enc,
            "lines_read",
            "Lines read from files.",
            &per_source(|s| s.lines),
        )?;
        counter(
            &mut enc,
            "bytes_read",
            "Bytes read from files.",
            &per_source(|s| s.bytes),
        )?;
        counter(
            &mut enc,
            "records",
            "Records produced by the parsers.",
            &per_source(|s| s.records),
        )?;
        counter(
            &mut enc,
            "parse_errors",
            "Records whose entry did not parse (shipped with parse_error set).",
            &per_source(|s| s.parse_errors),
        )?;
        gauge(
            &mut enc,
            "files_watched",
            "Files each source follows.",
            &tail
                .sources
                .iter()
                .map(|s| (vec![("source", &*s.name)], s.files as i64))
                .collect::<Vec<_>>(),
        )?;
        gauge(
            &mut enc,
            "open_files",
            "Log files open now.",
            &[(vec![], tail.open_files as i64)],
        )?;
        let lag: Vec<(Vec<(&str, &str)>, i64)> = tail
            .files
            .iter()
            .map(|f| {
                let source = f.source.as_deref().unwrap_or("");
                (vec![("source", source), ("file", &*f.path)], f.lag as i64)
            })
            .collect();
        gauge(
            &mut enc,
            "checkpoint_lag_bytes",
            "Bytes written to a file that Cassandra has not acknowledged yet.",
            &lag,
        )?;

        let q = (self.0.queue)();
        gauge(
            &mut enc,
            "buffer_depth",
            "Records waiting in the buffer.",
            &[(vec![], q.depth as i64)],
        )?;
        gauge(
            &mut enc,
            "buffer_capacity",
            "Records the buffer holds.",
            &[(vec![], q.capacity as i64)],
        )?;
        gauge(
            &mut enc,
            "buffer_high_water",
            "Highest buffer depth since start.",
            &[(vec![], q.high_water as i64)],
        )?;
        counter(
            &mut enc,
            "own_records_skipped",
            "The agent's own log lines read back from a syslog file and not shipped.",
            &[(
                vec![],
                self.0
                    .own_records_skipped
                    .load(std::sync::atomic::Ordering::Relaxed),
            )],
        )?;
        let syslog = self.0.syslog.snapshot();
        let (mut received, mut dropped) = (Vec::new(), Vec::new());
        for l in &syslog {
            let labels = vec![("source", l.source.as_str()), ("transport", l.transport)];
            received.push((labels.clone(), l.received));
            dropped.push((labels, l.dropped));
        }
        counter(
            &mut enc,
            "syslog_messages",
            "Syslog messages received.",
            &received,
        )?;
        counter(
            &mut enc,
            "syslog_dropped",
            "Syslog messages dropped: UDP ones that found the buffer full; any held at shutdown while the buffer stayed full.",
            &dropped,
        )?;

        http_sources(&mut enc, &self.0.http.snapshot())?;

        let sink = &self.0.sink;
        gauge(
            &mut enc,
            "sink_connected",
            "1 while the sink's output can be reached (the last write attempt reached a node), 0 before and during an outage.",
            &[(vec![], i64::from(sink.connected()))],
        )?;
        let mut family = enc.encode_descriptor(
            "oldest_unacked_age_seconds",
            "Age of the oldest record handed to the sink and not acknowledged yet (0 when none waits).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(sink.oldest_unacked_age().map_or(0.0, |a| a.as_secs_f64()))
            .encode(family.encode_family(&Vec::<(&str, &str)>::new())?)?;
        let m = sink.metrics();
        counter(
            &mut enc,
            "rows_written",
            "Rows Cassandra acknowledged.",
            &[
                (
                    vec![("table", "infrastructure_logs")],
                    m.rows_written_infrastructure,
                ),
                (
                    vec![("table", "application_logs")],
                    m.rows_written_application,
                ),
            ],
        )?;
        counter(
            &mut enc,
            "units_written",
            "Flush units fully written.",
            &[(vec![], m.units_written)],
        )?;
        counter(
            &mut enc,
            "write_retries",
            "Flush-unit attempts repeated after a failure.",
            &[(vec![], m.retries)],
        )?;
        counter(
            &mut enc,
            "write_failed_requests",
            "Write requests that failed.",
            &[(vec![], m.failed_requests)],
        )?;
        counter(
            &mut enc,
            "rows_truncated",
            "Rows shortened to max_record_bytes.",
            &[(vec![], m.rows_truncated)],
        )?;
        counter(
            &mut enc,
            "rows_dead_lettered",
            "Records Cassandra refused, written to the dead-letter file.",
            &[(vec![], m.rows_dead_lettered)],
        )?;
        gauge(
            &mut enc,
            "circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            &[(vec![], i64::from(m.circuit.as_gauge()))],
        )?;
        // prometheus-client sums the per-bucket counts into `le` buckets itself.
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_SECONDS
            .iter()
            .copied()
            // The encoder writes `le="+Inf"` for f64::MAX, as its own Histogram does.
            .chain(std::iter::once(f64::MAX))
            .zip(m.unit_latency_counts.iter().copied())
            .collect();
        let count = m.unit_latency_counts.iter().sum();
        let mut family = enc.encode_descriptor(
            "write_unit_duration_seconds",
            "Time to write one flush unit, retries included.",
            None,
            MetricType::Histogram,
        )?;
        family.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            m.unit_latency_sum.as_secs_f64(),
            count,
            &buckets,
            None,
        )
    }
}

/// The HTTP sources' series, labelled `source`: each source has its own queue and drain
/// loop, so its breaker and queue are its own (the agent-wide series describe the file
/// pipeline's).
fn http_sources(
    enc: &mut DescriptorEncoder,
    sources: &[crate::source::http::HttpSnapshot],
) -> fmt::Result {
    let statuses: Vec<Vec<String>> = sources
        .iter()
        .map(|s| {
            s.requests
                .iter()
                .map(|(code, _)| code.to_string())
                .collect()
        })
        .collect();
    let mut requests = Vec::new();
    for (s, codes) in sources.iter().zip(&statuses) {
        for ((_, n), code) in s.requests.iter().zip(codes) {
            requests.push((
                vec![("source", s.name.as_str()), ("status", code.as_str())],
                *n,
            ));
        }
    }
    counter(
        enc,
        "http_requests",
        "Requests an HTTP source answered, by status code.",
        &requests,
    )?;
    let mut events = Vec::new();
    for s in sources {
        events.push((
            vec![("source", s.name.as_str()), ("outcome", "accepted")],
            s.accepted,
        ));
        events.push((
            vec![("source", s.name.as_str()), ("outcome", "rejected")],
            s.rejected,
        ));
    }
    counter(
        enc,
        "http_events",
        "Events an HTTP source queued (accepted) or refused (rejected: invalid, or their request refused with 429/503).",
        &events,
    )?;
    let per = |f: fn(&crate::source::http::HttpSnapshot) -> i64| -> Vec<(Vec<(&str, &str)>, i64)> {
        sources
            .iter()
            .map(|s| (vec![("source", s.name.as_str())], f(s)))
            .collect()
    };
    let refused: Vec<_> = sources
        .iter()
        .map(|s| (vec![("source", s.name.as_str())], s.refused_connections))
        .collect();
    counter(
        enc,
        "http_connections_refused",
        "Connections an HTTP source closed at accept because max_connections were open.",
        &refused,
    )?;
    let written: Vec<_> = sources
        .iter()
        .map(|s| (vec![("source", s.name.as_str())], s.rows_written))
        .collect();
    counter(
        enc,
        "http_rows_written",
        "Rows of an HTTP source's events the sink acknowledged.",
        &written,
    )?;
    gauge(
        enc,
        "http_queue_depth",
        "Events waiting in an HTTP source's queue.",
        &per(|s| s.queue_depth as i64),
    )?;
    gauge(
        enc,
        "http_queue_capacity",
        "An HTTP source's queue capacity (queue_capacity).",
        &per(|s| s.queue_capacity as i64),
    )?;
    gauge(
        enc,
        "http_circuit_state",
        "An HTTP source's circuit breaker: 0 closed, 1 half-open, 2 open.",
        &per(|s| i64::from(s.circuit.as_gauge())),
    )?;
    gauge(
        enc,
        "http_stalled",
        "1 while an HTTP source's writes are stalled past stall_after.",
        &per(|s| i64::from(s.stall.is_some())),
    )
}

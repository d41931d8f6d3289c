//! `logship run`: wiring and the shutdown order.
//!
//! sources (one thread each) → bounded queue → drain loop on the sink thread
//! ([`logship::pipeline::drain`]) → the configured sink → acknowledgements → checkpoints.
//! The main thread owns the tailer, answers signals and feeds the systemd watchdog while
//! every long-running thread beats its heartbeat; the tokio runtime carries the Cassandra
//! driver, the HTTP endpoint and nothing that blocks.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::RecvTimeoutError;
use logship::config::Config;
use logship::pipeline::FileRecord;
use logship::pipeline::Table;
use logship::pipeline::drain::{self, Drain, Ended, Policy, Stop};
use logship::pipeline::heartbeat::{self, Heartbeat};
use logship::pipeline::progress::Progress;
use logship::pipeline::queue::{self, QueueReceiver, QueueStats};
use logship::signals::{self, Signal};
use logship::sink::cassandra::{CassandraFiles, until_stopped};
use logship::sink::deadletter::{DeadLetter, DeadLetterEntry};
use logship::sink::file::FileSink;
use logship::sink::null::NullSink;
use logship::sink::output::SinkKind;
use logship::sink::retry::{Backoff, RowFailure};
use logship::sink::stdout::StdoutSink;
use logship::sink::{CircuitState, Sink, SinkError, SinkOptions};
use logship::tail::{AckHandle, Checkpointer, TailMonitor, Tailer, TailerHandle};
use logship::telemetry::{http, logging, metrics, sdnotify};
use tracing::{error, info, warn};

/// Exit codes (documented in the README).
pub mod exit {
    /// Stopped cleanly (SIGTERM/SIGINT), or the command succeeded.
    pub const OK: u8 = 0;
    /// A runtime failure: Cassandra refused the login or TLS, the schema is missing, the
    /// data directory is not writable.
    pub const FAILURE: u8 = 1;
    /// The configuration is invalid (also `check-config`).
    pub const CONFIG: u8 = 3;
}

/// How long start-up waits for the sink before telling systemd it is ready anyway (and
/// `/health` says why it is not); well below the default `TimeoutStartSec` of 90 s.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How often the main thread refreshes `STATUS=`.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);
/// A thread silent this long (not waiting, not beating) is stuck: the watchdog ping stops
/// and systemd restarts the agent after `WatchdogSec` (30 s in the unit).
const STUCK_AFTER: Duration = Duration::from_secs(20);
/// The agent's own journald lines come back through rsyslog into syslog files: they are
/// acknowledged without shipping, or shipping would log about itself.
const OWN_APP: &str = "logship";

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logship: invalid configuration: {e}");
            return Ok(ExitCode::from(exit::CONFIG));
        }
    };
    let target = logging::init(&config.agent.log_level);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config_path.display(),
        sources = config.sources.len(),
        sink = config.sink.kind.name(),
        logs = ?target,
        "logship starting"
    );
    for warning in &config.warnings {
        warn!(error_kind = "config", "{warning}");
    }
    let signals = signals::listen().context("cannot install signal handlers")?;
    let data_dir = config.agent.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("logship-rt")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;

    let (checkpointer, loaded) =
        Checkpointer::open(&data_dir).context("cannot open the checkpoint file")?;
    let (tx, rx) = queue::bounded_in_bytes::<FileRecord>(
        config.buffer.capacity,
        config.buffer.max_bytes,
        queue::file_record_bytes,
    );
    // A receiver, not a sender: a sender kept here would keep the queue open forever and
    // the drain at shutdown would never see its end.
    let queue_stats = {
        let rx = rx.clone();
        Arc::new(move || rx.stats())
    };
    let mut tailer = Tailer::start(
        config.tail.clone(),
        config.sources.clone(),
        checkpointer,
        loaded,
        tx,
    )
    .context("cannot start the sources")?;

    let policy = Policy {
        retry: config.cassandra.retry.clone(),
        stall_after: config.agent.stall_after,
    };
    let progress = Arc::new(Progress::new(
        config.sink.kind.name(),
        policy.stall_after,
        policy.breaker(),
    ));
    let shared = Arc::new(Shared::default());
    let stop = Stop::new();
    let probes = metrics::Probes {
        tail: tailer.monitor(),
        queue: queue_stats,
        sink: Arc::clone(&progress),
        own_records_skipped: Arc::clone(&shared.own_skipped),
    };
    let _http = if config.metrics.enabled {
        Some(start_http(
            &runtime,
            &config,
            probes.clone(),
            Arc::clone(&shared),
        )?)
    } else {
        None
    };

    let sink_thread = SinkThread {
        runtime: runtime.handle().clone(),
        config: config.clone(),
        rx,
        acks: tailer.acks(),
        drain: Drain {
            batch: config.batch,
            policy,
            stop: stop.clone(),
            heartbeat: Heartbeat::register("sink"),
            progress: Arc::clone(&progress),
            dead_letter: DeadLetter::new(Some(data_dir.clone())),
            table: Table::InfrastructureLogs,
        },
        shared: Arc::clone(&shared),
    }
    .spawn()?;

    // READY=1 once the sink is up (or has been tried for READY_WAIT: a cluster that is
    // down at boot must not fail the unit's start; /health tells why nothing ships).
    let ready_by = Instant::now() + READY_WAIT;
    while !shared.ready() && Instant::now() < ready_by && !shared.fatal() {
        match signals.recv_timeout(Duration::from_millis(100)) {
            Ok(Signal::Shutdown) => {
                return Ok(shutdown(tailer, sink_thread, &stop, &shared, &config));
            }
            Ok(Signal::Reload) | Err(_) => {}
        }
    }
    if shared.fatal() {
        return Ok(fail(tailer, sink_thread));
    }
    let mut status = StatusLine::new(probes.tail.clone());
    sdnotify::ready(&status.render(&shared, &progress, &config));
    info!("logship ready");

    let watchdog = sdnotify::watchdog_interval();
    let tick = watchdog.map_or(STATUS_INTERVAL, |w| w.min(STATUS_INTERVAL));
    let mut last_status = Instant::now();
    let mut config = config;
    let mut reported_stuck = false;
    loop {
        match signals.recv_timeout(tick) {
            Ok(Signal::Shutdown) => break,
            Ok(Signal::Reload) => {
                reload(config_path, &mut config, &mut tailer);
                sdnotify::ready(&status.render(&shared, &progress, &config));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if shared.fatal() {
            return Ok(fail(tailer, sink_thread));
        }
        // The ping proves every long-running thread alive, not just this one.
        let stuck = heartbeat::stuck(STUCK_AFTER);
        if stuck.is_empty() {
            sdnotify::watchdog();
            reported_stuck = false;
        } else if !reported_stuck {
            reported_stuck = true;
            error!(threads = ?stuck, "threads are stuck; the systemd watchdog ping stops");
        }
        if last_status.elapsed() >= STATUS_INTERVAL {
            sdnotify::status(&status.render(&shared, &progress, &config));
            last_status = Instant::now();
        }
    }
    Ok(shutdown(tailer, sink_thread, &stop, &shared, &config))
}

/// The sink cannot be used (login, TLS, schema, an unwritable output): stop and exit 1.
fn fail(mut tailer: TailerHandle, sink_thread: JoinHandle<()>) -> ExitCode {
    tailer.stop_reading();
    let _ = sink_thread.join();
    let _ = tailer.finish();
    ExitCode::from(exit::FAILURE)
}

/// SIGHUP: validate the new config first; keep the running one when it is bad.
fn reload(path: &Path, current: &mut Config, tailer: &mut TailerHandle) {
    sdnotify::reloading();
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, error_kind = "config", "reload refused: the new config is invalid; the running config stays");
            return;
        }
    };
    for warning in &new.warnings {
        warn!(error_kind = "config", "{warning}");
    }
    let restart_only: Vec<&str> = [
        ("agent", current.agent != new.agent),
        ("cassandra", current.cassandra != new.cassandra),
        ("buffer", current.buffer != new.buffer),
        ("batch", current.batch != new.batch),
        ("metrics", current.metrics != new.metrics),
        ("tail", current.tail != new.tail),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect();
    if !restart_only.is_empty() {
        warn!(sections = ?restart_only, "changes to these sections take effect at the next restart");
    }
    match tailer.reconfigure(new.sources.clone()) {
        Ok(summary) => {
            info!(
                added = ?summary.added,
                removed = ?summary.removed,
                restarted = ?summary.restarted,
                unchanged = summary.unchanged.len(),
                "config reloaded"
            );
            current.adopt_sources(new);
        }
        Err(e) => {
            error!(error = %format!("{e:#}"), error_kind = "config", "reload refused; the running sources stay");
        }
    }
}

/// Stop reading, drain the queue to the sink within the deadline, write the final
/// checkpoints from what the sink acknowledged.
fn shutdown(
    mut tailer: TailerHandle,
    sink_thread: JoinHandle<()>,
    stop: &Stop,
    shared: &Shared,
    config: &Config,
) -> ExitCode {
    sdnotify::stopping();
    let timeout = config.agent.shutdown_timeout;
    info!(timeout = ?timeout, sink = config.sink.kind.name(), "stopping: draining the buffer to the sink");
    stop.at(Instant::now() + timeout);
    tailer.stop_reading();
    if sink_thread.join().is_err() {
        error!("the sink thread panicked");
    }
    let unacked = shared.unacked.load(Ordering::Relaxed);
    if unacked > 0 {
        warn!(
            records = unacked,
            "shutdown deadline passed: these records were not acknowledged and will be read again at the next start"
        );
    }
    match tailer.finish() {
        Ok(()) => info!("final checkpoints written; stopped"),
        Err(e) => {
            error!(error = %format!("{e:#}"), "cannot write the final checkpoints; the last ones written stay")
        }
    }
    ExitCode::from(exit::OK)
}

/// State the main thread, the sink thread and `/health` share besides [`Progress`].
#[derive(Debug, Default)]
struct Shared {
    /// The sink is open (connected, for Cassandra).
    ready: AtomicBool,
    fatal: AtomicBool,
    /// Records left unacknowledged by a shutdown that ran out of time.
    unacked: AtomicU64,
    own_skipped: Arc<AtomicU64>,
    /// Why the sink could not be opened, for `/health` before it is.
    problem: Mutex<Option<String>>,
}

impl Shared {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn fatal(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }

    fn set_problem(&self, p: Option<String>) {
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = p;
    }

    fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The sink thread: opens the configured sink, then runs the drain loop on the queue.
struct SinkThread {
    runtime: tokio::runtime::Handle,
    config: Config,
    rx: QueueReceiver<FileRecord>,
    acks: AckHandle,
    drain: Drain,
    shared: Arc<Shared>,
}

impl SinkThread {
    fn spawn(self) -> anyhow::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("sink".into())
            .spawn(move || self.run())
            .context("cannot start the sink thread")
    }

    fn run(self) {
        let Some(sink) = self.open() else {
            return;
        };
        self.drain.progress.set_connected(true);
        self.shared.set_problem(None);
        self.shared.ready.store(true, Ordering::Relaxed);
        let mut sink = SkipOwn(sink);
        let own_skipped = &self.shared.own_skipped;
        let ended = self.drain.run(&self.rx, &mut sink, |unit| {
            let own = unit.iter().filter(|r| is_own(r)).count();
            own_skipped.fetch_add(own as u64, Ordering::Relaxed);
            self.acks.ack_records(unit.iter());
        });
        if let Ended::Stopped { unacked } = ended {
            self.count_unacked(unacked);
        }
    }

    fn count_unacked(&self, in_hand: usize) {
        let left = in_hand + self.rx.stats().depth;
        self.shared
            .unacked
            .fetch_add(left as u64, Ordering::Relaxed);
    }

    /// Opens the configured sink; `None` when it cannot be used (fatal) or shutdown came
    /// first.
    fn open(&self) -> Option<Box<dyn drain::Sink<Item = FileRecord>>> {
        let sink = &self.config.sink;
        match sink.kind {
            SinkKind::File => match FileSink::open(sink) {
                Ok(s) => Some(Box::new(s)),
                Err(e) => {
                    self.fatal(&e);
                    None
                }
            },
            SinkKind::Stdout => Some(Box::new(StdoutSink::new(sink.format))),
            SinkKind::Null => Some(Box::new(NullSink::default())),
            _ => self.connect().map(|s| {
                Box::new(CassandraFiles::new(
                    s,
                    self.runtime.clone(),
                    Arc::clone(&self.drain.progress),
                )) as Box<_>
            }),
        }
    }

    fn fatal(&self, e: &SinkError) {
        let reason = format!("{e:#}");
        error!(error = %reason, error_kind = "sink", "cannot use the sink; stopping");
        eprintln!("logship: {reason}");
        self.shared.set_problem(Some(reason));
        self.shared.fatal.store(true, Ordering::Relaxed);
    }

    /// Connects, retrying while the cluster is unreachable; gives up at once on what
    /// retrying cannot fix (login, TLS, schema), which ends the agent with a clear error.
    fn connect(&self) -> Option<Sink> {
        let options = SinkOptions {
            dead_letter_dir: Some(self.config.agent.data_dir.clone()),
        };
        let cassandra = &self.config.cassandra;
        let (stop, heartbeat) = (&self.drain.stop, &self.drain.heartbeat);
        let mut backoff = Backoff::new(&cassandra.retry);
        let mut logged = false;
        loop {
            heartbeat.waiting_until(Instant::now() + cassandra.connect_timeout * 2);
            let attempt = self.runtime.block_on(until_stopped(
                stop,
                Sink::connect(cassandra, options.clone()),
            ));
            match attempt {
                None => break,
                Some(Ok(sink)) => {
                    info!(contact_points = %cassandra.endpoints_display(), "connected to Cassandra");
                    sink.set_request_fields(self.config.request_fields());
                    return Some(sink);
                }
                Some(Err(e @ SinkError::Unreachable { .. })) => {
                    let reason = format!("{e:#}");
                    if !logged {
                        error!(error = %reason, error_kind = "cassandra", "cannot reach Cassandra; retrying");
                        logged = true;
                    }
                    self.drain.progress.set_error(Some(reason.clone()));
                    self.shared.set_problem(Some(reason));
                }
                Some(Err(e)) => {
                    self.fatal(&e);
                    return None;
                }
            }
            let delay = backoff.next_delay().min(drain::MAX_PROBE_INTERVAL);
            if stop.deadline().is_some() || !stop.sleep(delay, heartbeat) {
                break;
            }
        }
        self.count_unacked(0);
        None
    }
}

fn is_own(r: &FileRecord) -> bool {
    r.record.fields.get("appname").is_some_and(|a| a == OWN_APP)
}

/// Passes to the sink only records that are not the agent's own log lines.
struct SkipOwn(Box<dyn drain::Sink<Item = FileRecord>>);

impl drain::Sink for SkipOwn {
    type Item = FileRecord;

    fn write(&mut self, unit: &[FileRecord], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        if !unit.iter().any(is_own) {
            return self.0.write(unit, pending, stop);
        }
        let ship: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&i| !is_own(&unit[i]))
            .collect();
        if ship.is_empty() {
            return Vec::new();
        }
        self.0.write(unit, &ship, stop)
    }

    fn dead_letter(&self, item: &FileRecord, reason: &str) -> DeadLetterEntry {
        self.0.dead_letter(item, reason)
    }

    fn attempt_bound(&self) -> Duration {
        self.0.attempt_bound()
    }
}

fn start_http(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    probes: metrics::Probes,
    shared: Arc<Shared>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = config.metrics.listen;
    let listener = runtime
        .block_on(http::bind(addr))
        .with_context(|| format!("cannot listen on {addr} for /metrics ([metrics] listen)"))?;
    let progress = Arc::clone(&probes.sink);
    let queue = Arc::clone(&probes.queue);
    let registry = Arc::new(metrics::registry(probes));
    let render: http::RenderMetrics = Arc::new(move || metrics::render(&registry));
    let health: http::CheckHealth = Arc::new(move || health(&shared, &progress, queue()));
    Ok(runtime.spawn(async move {
        if let Err(e) = http::serve(listener, render, health).await {
            error!(error = %e, "the metrics endpoint stopped");
        }
    }))
}

/// 200 when the sink is open, every record handed to it is acknowledged within
/// `stall_after` and every thread is alive; 503 with the reasons otherwise.
fn health(
    shared: &Shared,
    progress: &Progress,
    q: QueueStats,
) -> Result<serde_json::Value, serde_json::Value> {
    let mut reasons = Vec::new();
    if !shared.ready() {
        reasons.push(
            shared
                .problem()
                .unwrap_or_else(|| format!("the {} sink is not open yet", progress.sink())),
        );
    } else if let Some(stall) = progress.stall() {
        // One truth for an outage: records waiting too long, with the output's reason.
        // The breaker's state is the means of waiting, shown in `/metrics`.
        reasons.push(stall);
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
    });
    if reasons.is_empty() {
        Ok(body)
    } else {
        Err(body)
    }
}

/// `STATUS=` for `systemctl status`: rate, lag and the sink's state.
struct StatusLine {
    tail: TailMonitor,
    last: Option<(Instant, u64)>,
}

impl StatusLine {
    fn new(tail: TailMonitor) -> Self {
        StatusLine { tail, last: None }
    }

    fn render(&mut self, shared: &Shared, progress: &Progress, config: &Config) -> String {
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
        let sink = if !shared.ready() {
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

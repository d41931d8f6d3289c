//! `logship run`: wiring and the shutdown order.
//!
//! sources (one thread each) → bounded queue → sink thread (flush units, Cassandra) →
//! acknowledgements → checkpoints. The main thread owns the tailer and answers signals;
//! the tokio runtime carries the driver, the HTTP endpoint and nothing that blocks.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::RecvTimeoutError;
use logship::config::Config;
use logship::pipeline::FileRecord;
use logship::pipeline::batch::{self, Next, Received, UnitSource};
use logship::pipeline::queue::{self, QueueReceiver};
use logship::signals::{self, Signal};
use logship::sink::{CircuitState, Sink, SinkError, SinkOptions};
use logship::tail::{Checkpointer, TailMonitor, Tailer, TailerHandle};
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

/// How long start-up waits for Cassandra before telling systemd it is ready anyway (and
/// `/health` says why it is not); well below the default `TimeoutStartSec` of 90 s.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How often the main thread refreshes `STATUS=`.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);
/// The sink thread beats at least this often, even while Cassandra is down.
const HEARTBEAT: Duration = Duration::from_secs(1);

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logship: invalid configuration: {e}");
            return Ok(ExitCode::from(exit::CONFIG));
        }
    };
    let target = logging::init(&config.raw.agent.log_level);
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config_path.display(),
        sources = config.sources.len(),
        logs = ?target,
        "logship starting"
    );
    let signals = signals::listen().context("cannot install signal handlers")?;
    let data_dir = config.raw.agent.data_dir.clone();
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
    let (tx, rx) = queue::bounded::<FileRecord>(config.raw.buffer.capacity);
    // A receiver, not a sender: a sender kept here would keep the queue open forever and
    // the drain at shutdown would never see its end.
    let queue_stats = {
        let rx = rx.clone();
        Arc::new(move || rx.stats())
    };
    let mut tailer = Tailer::start(
        config.raw.tail.clone(),
        config.sources.clone(),
        checkpointer,
        loaded,
        tx,
    )
    .context("cannot start the sources")?;

    let shared = Arc::new(Shared::new());
    let sink_slot: Arc<OnceLock<Sink>> = Arc::new(OnceLock::new());
    let probes = metrics::Probes {
        tail: tailer.monitor(),
        queue: queue_stats,
        sink: Arc::clone(&sink_slot),
        own_records_skipped: Arc::clone(&shared.own_skipped),
    };
    let _http = if config.raw.metrics.enabled {
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
        slot: Arc::clone(&sink_slot),
        shared: Arc::clone(&shared),
    }
    .spawn()?;

    // READY=1 once the sink is up (or has been tried for READY_WAIT: a cluster that is
    // down at boot must not fail the unit's start; /health tells why nothing ships).
    let ready_by = Instant::now() + READY_WAIT;
    while sink_slot.get().is_none() && Instant::now() < ready_by && !shared.fatal() {
        match signals.recv_timeout(Duration::from_millis(100)) {
            Ok(Signal::Shutdown) => {
                return Ok(shutdown(tailer, sink_thread, &sink_slot, &shared, &config));
            }
            Ok(Signal::Reload) | Err(_) => {}
        }
    }
    if shared.fatal() {
        tailer.stop_reading();
        let _ = sink_thread.join();
        let _ = tailer.finish();
        return Ok(ExitCode::from(exit::FAILURE));
    }
    let mut status = StatusLine::new(probes.tail.clone());
    sdnotify::ready(&status.render(&sink_slot, &config));
    info!("logship ready");

    let watchdog = sdnotify::watchdog_interval();
    let tick = watchdog.map_or(STATUS_INTERVAL, |w| w.min(STATUS_INTERVAL));
    let mut last_status = Instant::now();
    let mut config = config;
    loop {
        match signals.recv_timeout(tick) {
            Ok(Signal::Shutdown) => break,
            Ok(Signal::Reload) => {
                reload(config_path, &mut config, &mut tailer);
                sdnotify::ready(&status.render(&sink_slot, &config));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if shared.fatal() {
            tailer.stop_reading();
            let _ = sink_thread.join();
            let _ = tailer.finish();
            return Ok(ExitCode::from(exit::FAILURE));
        }
        if watchdog.is_some() && shared.heartbeat_age() < HEARTBEAT * 10 {
            sdnotify::watchdog();
        }
        if last_status.elapsed() >= STATUS_INTERVAL {
            sdnotify::status(&status.render(&sink_slot, &config));
            last_status = Instant::now();
        }
    }
    Ok(shutdown(tailer, sink_thread, &sink_slot, &shared, &config))
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
    let restart_only: Vec<&str> = [
        ("agent", current.raw.agent != new.raw.agent),
        ("cassandra", current.raw.cassandra != new.raw.cassandra),
        ("buffer", current.raw.buffer != new.raw.buffer),
        ("batch", current.raw.batch != new.raw.batch),
        ("metrics", current.raw.metrics != new.raw.metrics),
        ("tail", current.raw.tail != new.raw.tail),
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
            current.sources = new.sources;
            current.raw.sources = new.raw.sources;
        }
        Err(e) => {
            error!(error = %format!("{e:#}"), error_kind = "config", "reload refused; the running sources stay");
        }
    }
}

/// Stop reading, drain the queue to Cassandra within the deadline, write the final
/// checkpoints from what Cassandra acknowledged.
fn shutdown(
    mut tailer: TailerHandle,
    sink_thread: JoinHandle<()>,
    sink: &OnceLock<Sink>,
    shared: &Shared,
    config: &Config,
) -> ExitCode {
    sdnotify::stopping();
    let timeout = config.raw.agent.shutdown_timeout;
    info!(timeout = ?timeout, "stopping: draining the buffer to Cassandra");
    let deadline = Instant::now() + timeout;
    shared.set_deadline(deadline);
    if let Some(sink) = sink.get() {
        sink.stop_at(deadline);
    }
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

/// State the main thread, the sink thread and `/health` share.
struct Shared {
    started: Instant,
    heartbeat_ms: AtomicU64,
    fatal: AtomicBool,
    /// Records left unacknowledged by a shutdown that ran out of time.
    unacked: AtomicU64,
    own_skipped: Arc<AtomicU64>,
    deadline: Mutex<Option<Instant>>,
    /// Why the sink cannot write right now, for `/health`.
    problem: Mutex<Option<String>>,
    last_written_ms: AtomicU64,
}

impl Shared {
    fn new() -> Self {
        Shared {
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            fatal: AtomicBool::new(false),
            unacked: AtomicU64::new(0),
            own_skipped: Arc::new(AtomicU64::new(0)),
            deadline: Mutex::new(None),
            problem: Mutex::new(None),
            last_written_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn beat(&self) {
        self.heartbeat_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn heartbeat_age(&self) -> Duration {
        Duration::from_millis(
            self.now_ms()
                .saturating_sub(self.heartbeat_ms.load(Ordering::Relaxed)),
        )
    }

    fn fatal(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }

    fn set_deadline(&self, d: Instant) {
        *lock(&self.deadline) = Some(d);
    }

    fn deadline(&self) -> Option<Instant> {
        *lock(&self.deadline)
    }

    fn set_problem(&self, p: Option<String>) {
        *lock(&self.problem) = p;
    }

    fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The thread that turns the queue into Cassandra rows.
struct SinkThread {
    runtime: tokio::runtime::Handle,
    config: Config,
    rx: QueueReceiver<FileRecord>,
    acks: logship::tail::AckHandle,
    slot: Arc<OnceLock<Sink>>,
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
        let Some(sink) = self.connect() else {
            return;
        };
        let batch = self.config.raw.batch;
        let own_app = "logship";
        loop {
            self.shared.beat();
            let unit = match batch::next_unit(
                &QueueSource {
                    rx: &self.rx,
                    shared: &self.shared,
                },
                &batch,
                HEARTBEAT,
            ) {
                Next::Unit(unit) => unit,
                Next::Idle => continue,
                Next::Closed => return,
            };
            // The agent's own journald lines come back through rsyslog into syslog files:
            // acknowledge them without shipping, or shipping would log about itself.
            let (own, ship): (Vec<_>, Vec<_>) = unit
                .into_iter()
                .partition(|r| r.record.fields.get("appname").is_some_and(|a| a == own_app));
            if !own.is_empty() {
                self.shared
                    .own_skipped
                    .fetch_add(own.len() as u64, Ordering::Relaxed);
            }
            match self.write(&sink, &ship) {
                Ok(()) => {
                    self.acks.ack_records(ship.iter().chain(own.iter()));
                    self.shared
                        .last_written_ms
                        .store(self.shared.now_ms(), Ordering::Relaxed);
                    self.shared.set_problem(None);
                }
                Err(SinkError::Stopped { .. }) => {
                    self.count_unacked(ship.len() + own.len());
                    return;
                }
                Err(e) => {
                    // Refused for a reason an operator must fix (permissions, schema): keep
                    // the unit and try again, so nothing is lost; the files are the buffer.
                    let reason = format!("{e:#}");
                    if self.shared.problem().as_deref() != Some(reason.as_str()) {
                        error!(error = %reason, error_kind = "cassandra", "cannot write to Cassandra; retrying");
                    }
                    self.shared.set_problem(Some(reason));
                    if !self.retry_unit(&sink, ship, own) {
                        return;
                    }
                }
            }
        }
    }

    /// Retries a refused unit every few seconds until written or shutdown's deadline.
    fn retry_unit(&self, sink: &Sink, ship: Vec<FileRecord>, own: Vec<FileRecord>) -> bool {
        loop {
            if self.sleep_or_deadline(Duration::from_secs(5)) {
                self.count_unacked(ship.len() + own.len());
                return false;
            }
            match self.write(sink, &ship) {
                Ok(()) => {
                    self.acks.ack_records(ship.iter().chain(own.iter()));
                    self.shared.set_problem(None);
                    info!("writing to Cassandra again");
                    return true;
                }
                Err(SinkError::Stopped { .. }) => {
                    self.count_unacked(ship.len() + own.len());
                    return false;
                }
                Err(e) => self.shared.set_problem(Some(format!("{e:#}"))),
            }
        }
    }

    fn count_unacked(&self, n: usize) {
        let left = n + self.rx.stats().depth;
        self.shared
            .unacked
            .fetch_add(left as u64, Ordering::Relaxed);
    }

    /// Sleeps in heartbeat steps; true when shutdown's deadline passed.
    fn sleep_or_deadline(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.shared.beat();
            if self
                .shared
                .deadline()
                .is_some_and(|dl| Instant::now() >= dl)
            {
                return true;
            }
            std::thread::sleep(HEARTBEAT.min(until.saturating_duration_since(Instant::now())));
        }
        false
    }

    fn write(&self, sink: &Sink, unit: &[FileRecord]) -> Result<(), SinkError> {
        if unit.is_empty() {
            return Ok(());
        }
        let shared = &self.shared;
        self.runtime.block_on(async {
            let write = sink.write_file_unit(unit);
            let mut write = std::pin::pin!(write);
            let mut beat = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    r = &mut write => return r.map(|_| ()),
                    _ = beat.tick() => shared.beat(),
                }
            }
        })
    }

    /// Connects, retrying while the cluster is unreachable; gives up at once on what
    /// retrying cannot fix (login, TLS, schema), which ends the agent with a clear error.
    fn connect(&self) -> Option<Sink> {
        let options = SinkOptions {
            dead_letter_dir: Some(self.config.raw.agent.data_dir.clone()),
        };
        let mut delay = Duration::from_millis(500);
        let mut logged = false;
        loop {
            self.shared.beat();
            let attempt = self
                .runtime
                .block_on(Sink::connect(&self.config.raw.cassandra, options.clone()));
            match attempt {
                Ok(sink) => {
                    info!(contact_points = %self.config.raw.cassandra.endpoints_display(), "connected to Cassandra");
                    self.shared.set_problem(None);
                    sink.set_request_fields(
                        (self.config.raw.sources.iter())
                            .map(|s| (s.name.clone(), s.request_fields()))
                            .collect(),
                    );
                    let _ = self.slot.set(sink.clone());
                    return Some(sink);
                }
                Err(e @ SinkError::Unreachable { .. }) => {
                    let reason = format!("{e:#}");
                    if !logged {
                        error!(error = %reason, error_kind = "cassandra", "cannot reach Cassandra; retrying");
                        logged = true;
                    }
                    self.shared.set_problem(Some(reason));
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    error!(error = %reason, error_kind = "cassandra", "cannot use Cassandra; stopping");
                    eprintln!("logship: {reason}");
                    self.shared.set_problem(Some(reason));
                    self.shared.fatal.store(true, Ordering::Relaxed);
                    return None;
                }
            }
            if self.sleep_or_deadline(delay) || self.shared.deadline().is_some() {
                let left = self.rx.stats().depth;
                self.shared
                    .unacked
                    .fetch_add(left as u64, Ordering::Relaxed);
                return None;
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
}

fn start_http(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    probes: metrics::Probes,
    shared: Arc<Shared>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr = config.raw.metrics.listen;
    let listener = runtime
        .block_on(http::bind(addr))
        .with_context(|| format!("cannot listen on {addr} for /metrics ([metrics] listen)"))?;
    let sink = Arc::clone(&probes.sink);
    let queue = Arc::clone(&probes.queue);
    let registry = Arc::new(metrics::registry(probes));
    let render: http::RenderMetrics = Arc::new(move || metrics::render(&registry));
    let health: http::CheckHealth = Arc::new(move || health(&shared, &sink, &*queue));
    Ok(runtime.spawn(async move {
        if let Err(e) = http::serve(listener, render, health).await {
            error!(error = %e, "the metrics endpoint stopped");
        }
    }))
}

/// 200 when the sink is connected, its circuit closed, the sink thread alive and records
/// that are waiting get written; 503 with the reason otherwise.
fn health(
    shared: &Shared,
    sink: &OnceLock<Sink>,
    queue: &(dyn Fn() -> logship::pipeline::queue::QueueStats + Send + Sync),
) -> Result<serde_json::Value, serde_json::Value> {
    let q = queue();
    let mut reasons = Vec::new();
    match sink.get() {
        None => reasons.push(
            shared
                .problem()
                .unwrap_or_else(|| "not connected to Cassandra yet".into()),
        ),
        Some(s) => {
            if s.circuit() != CircuitState::Closed {
                reasons.push(format!(
                    "circuit breaker {:?}: {}",
                    s.circuit(),
                    shared
                        .problem()
                        .unwrap_or_else(|| "writes are failing".into())
                ));
            } else if let Some(p) = shared.problem() {
                reasons.push(p);
            }
        }
    }
    if shared.heartbeat_age() > HEARTBEAT * 10 {
        reasons.push(format!(
            "the sink thread has not run for {:?}",
            shared.heartbeat_age()
        ));
    }
    let since_write = shared
        .now_ms()
        .saturating_sub(shared.last_written_ms.load(Ordering::Relaxed));
    if q.depth >= q.capacity && since_write > 30_000 {
        reasons.push(format!(
            "the buffer is full and nothing was written for {} s",
            since_write / 1000
        ));
    }
    let body = serde_json::json!({
        "status": if reasons.is_empty() { "ok" } else { "unhealthy" },
        "reasons": reasons,
        "buffer_depth": q.depth,
        "buffer_capacity": q.capacity,
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

    fn render(&mut self, sink: &OnceLock<Sink>, config: &Config) -> String {
        let snap = self.tail.snapshot();
        let lines: u64 = snap.sources.iter().map(|s| s.lines).sum();
        let lag: u64 = snap.files.iter().map(|f| f.lag).sum();
        let now = Instant::now();
        let rate = match self.last {
            Some((t, l)) if now > t => (lines.saturating_sub(l)) as f64 / (now - t).as_secs_f64(),
            _ => 0.0,
        };
        self.last = Some((now, lines));
        let sink = match sink.get() {
            None => format!(
                "waiting for Cassandra at {}",
                config.raw.cassandra.endpoints_display()
            ),
            Some(s) if s.circuit() == CircuitState::Closed => "Cassandra ok".to_owned(),
            Some(s) => format!("Cassandra circuit {:?}", s.circuit()),
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

/// Lets the flush-unit gatherer read the bounded queue, beating the heartbeat while it
/// waits, so a long `batch.linger` never looks like a stuck sink to the watchdog.
struct QueueSource<'a> {
    rx: &'a QueueReceiver<FileRecord>,
    shared: &'a Shared,
}

impl UnitSource for QueueSource<'_> {
    type Item = FileRecord;

    fn recv_timeout(&self, timeout: Duration) -> Received<FileRecord> {
        let until = Instant::now() + timeout;
        loop {
            let step = until
                .saturating_duration_since(Instant::now())
                .min(HEARTBEAT);
            match UnitSource::recv_timeout(self.rx, step) {
                Received::Timeout => {
                    self.shared.beat();
                    if Instant::now() >= until {
                        return Received::Timeout;
                    }
                }
                other => return other,
            }
        }
    }
}

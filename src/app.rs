//! `logship run`: wiring and the shutdown order.
//!
//! sources (one thread each) → bounded queue → drain loop on the sink thread
//! ([`logship::pipeline::drain`]) → the configured sink → acknowledgements → checkpoints.
//! The main thread owns the tailer, answers signals and feeds the systemd watchdog while
//! every long-running thread beats its heartbeat; the tokio runtime carries the Cassandra
//! driver, the HTTP endpoint and nothing that blocks.
//!
//! What is not wiring lives beside it: the sink thread (opening or connecting the sink,
//! then the drain loop) in `sink_thread`, the sink's shared state in `sink_state`,
//! `/health` and `STATUS=` in `health`, SIGHUP in `reload`, and the filter that keeps the
//! agent's own log lines from being shipped in `own_events`.

mod health;
mod own_events;
mod reload;
mod sink_state;
mod sink_thread;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::RecvTimeoutError;
use logship::config::Config;
use logship::pipeline::FileRecord;
use logship::pipeline::Table;
use logship::pipeline::drain::{Drain, Policy, Stop};
use logship::pipeline::heartbeat::{self, Heartbeat};
use logship::pipeline::progress::Progress;
use logship::pipeline::queue;
use logship::signals::{self, Signal};
use logship::sink::deadletter::DeadLetter;
use logship::tail::{Checkpointer, Tailer, TailerHandle};
use logship::telemetry::{logging, metrics, sdnotify};
use tracing::{error, info, warn};

use health::{StatusLine, start_http};
use reload::reload;
use sink_state::SinkState;
use sink_thread::SinkThread;

/// Exit codes (documented in the README).
pub(crate) mod exit {
    /// Stopped cleanly (SIGTERM/SIGINT), or the command succeeded.
    pub(crate) const OK: u8 = 0;
    /// A runtime failure: Cassandra refused the login or TLS, the schema is missing, the
    /// data directory is not writable.
    pub(crate) const FAILURE: u8 = 1;
    /// The configuration is invalid (also `check-config`).
    pub(crate) const CONFIG: u8 = 3;
}

/// How long start-up waits for the sink before telling systemd it is ready anyway (and
/// `/health` says why it is not); well below the default `TimeoutStartSec` of 90 s.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How often the main thread refreshes `STATUS=`.
const STATUS_INTERVAL: Duration = Duration::from_secs(5);
/// A thread silent this long (not waiting, not beating) is stuck: the watchdog ping stops
/// and systemd restarts the agent after `WatchdogSec` (30 s in the unit).
const STUCK_AFTER: Duration = Duration::from_secs(20);

/// Runs the agent: load the config, start logging, open the checkpoints and the queue,
/// start the sources, the HTTP endpoint and the sink thread, tell systemd it is ready,
/// answer signals and feed the watchdog, then shut down in order ([`shutdown`]).
/// Returns the exit code ([`exit`]); `Err` only for what fails before anything runs.
pub(crate) fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
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
    let syslog = logship::source::syslog::spawn(&config.syslog, &tx)
        .context("cannot start the syslog sources")?;
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
    let state = Arc::new(SinkState::default());
    let stop = Stop::new();
    let probes = metrics::Probes {
        tail: tailer.monitor(),
        queue: queue_stats,
        sink: Arc::clone(&progress),
        own_records_skipped: Arc::clone(&state.own_skipped),
        syslog: syslog.stats(),
        http: logship::source::http::HttpProbes::default(),
    };
    let _http = if config.metrics.enabled {
        Some(start_http(
            &runtime,
            &config,
            probes.clone(),
            Arc::clone(&state),
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
        state: Arc::clone(&state),
    }
    .spawn()?;

    // HTTP sources: their own queue and drain loop into application_logs; dropped (and
    // drained, within shutdown_timeout) when run returns, before the runtime.
    let _http_sources = logship::source::http::spawn_all(
        &config.http_sources,
        &logship::source::http::AgentOutputs::from_config(&config, runtime.handle()),
        &probes.http,
    )
    .context("cannot start the http sources")?;

    // READY=1 once the sink is up (or has been tried for READY_WAIT: a cluster that is
    // down at boot must not fail the unit's start; /health tells why nothing ships).
    let ready_by = Instant::now() + READY_WAIT;
    while !state.ready() && Instant::now() < ready_by && !state.fatal() {
        match signals.recv_timeout(Duration::from_millis(100)) {
            Ok(Signal::Shutdown) => {
                syslog.stop();
                return Ok(shutdown(tailer, sink_thread, &stop, &state, &config));
            }
            Ok(Signal::Reload) | Err(_) => {}
        }
    }
    if state.fatal() {
        syslog.stop();
        return Ok(fail(tailer, sink_thread));
    }
    let mut status = StatusLine::new(probes.tail.clone());
    sdnotify::ready(&status.render(&state, &progress, &config));
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
                sdnotify::ready(&status.render(&state, &progress, &config));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if state.fatal() {
            syslog.stop();
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
            sdnotify::status(&status.render(&state, &progress, &config));
            last_status = Instant::now();
        }
    }
    syslog.stop(); // listeners stop first: their queue senders go, then the queue drains
    Ok(shutdown(tailer, sink_thread, &stop, &state, &config))
}

/// The sink cannot be used (login, TLS, schema, an unwritable output): stop and exit 1.
fn fail(mut tailer: TailerHandle, sink_thread: JoinHandle<()>) -> ExitCode {
    tailer.stop_reading();
    let _ = sink_thread.join();
    let _ = tailer.finish();
    ExitCode::from(exit::FAILURE)
}

/// Stop reading, drain the queue to the sink within the deadline, write the final
/// checkpoints from what the sink acknowledged.
fn shutdown(
    mut tailer: TailerHandle,
    sink_thread: JoinHandle<()>,
    stop: &Stop,
    state: &SinkState,
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
    let unacked = state.unacked();
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

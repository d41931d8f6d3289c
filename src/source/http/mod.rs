//! The HTTP events source: `POST /events` on its own listener, events queued in the
//! source's own bounded queue and written to `application_logs` by an instance of the one
//! drain loop ([`Drain::run`]) through the app-event Cassandra sink
//! ([`crate::sink::cassandra::CassandraApps`]).
//!
//! Answers and guarantees are in docs/sources.md. In short: validation is all-or-nothing
//! (one invalid event → 400 naming each bad one, none queued); a request is queued whole
//! or not at all (429 when the queue lacks room for all of it); 503 while the sink's
//! circuit is open; `ack = "accepted"` answers 202 once queued, `ack = "written"` answers
//! 200 once the drain loop acknowledged every event of the request.

pub mod config;
mod event;
mod server;
mod written;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::{Ack, HttpSourceSpec};

use crate::pipeline::Table;
use crate::pipeline::batch::BatchConfig;
use crate::pipeline::drain::{self, Drain, Policy, Stop};
use crate::pipeline::heartbeat::Heartbeat;
use crate::pipeline::progress::Progress;
use crate::pipeline::queue::{self, QueueSender};
use crate::sink::cassandra::{CassandraApps, connect_failure, until_stopped};
use crate::sink::deadletter::{DeadLetter, DeadLetterEntry};
use crate::sink::retry::{Failure, RowFailure};
use crate::sink::{AppEvent, AppRoute, CassandraConfig, SinkOptions};

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSourceError {
    /// The listen address cannot be bound.
    #[error("http source {name}: cannot listen on {addr}: {source}")]
    Bind {
        /// The source.
        name: String,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("http source {name}: {message}")]
    Tls {
        /// The source.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The drain thread cannot be started.
    #[error("http source {name}: cannot start its drain thread: {source}")]
    Thread {
        /// The source.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What every HTTP source of the agent shares: where rows go and how the drain retries.
#[derive(Debug, Clone)]
pub struct AgentOutputs {
    /// The agent's runtime: the listener and the Cassandra driver run on it.
    pub runtime: tokio::runtime::Handle,
    /// `[cassandra]`.
    pub cassandra: CassandraConfig,
    /// `[batch]`: flush units of the drain loop.
    pub batch: BatchConfig,
    /// `[agent] stall_after`.
    pub stall_after: Duration,
    /// `[agent] data_dir`: dead letters.
    pub data_dir: std::path::PathBuf,
    /// `[agent] host`: events that name no `host`.
    pub host: String,
    /// How long a stopping source may take to write what it queued.
    pub shutdown_timeout: Duration,
}

impl AgentOutputs {
    /// The settings a validated config gives.
    pub fn from_config(
        config: &crate::config::Config,
        runtime: &tokio::runtime::Handle,
    ) -> AgentOutputs {
        AgentOutputs {
            runtime: runtime.clone(),
            cassandra: config.cassandra.clone(),
            batch: config.batch,
            stall_after: config.agent.stall_after,
            data_dir: config.agent.data_dir.clone(),
            host: config.host.clone(),
            // The sources stop after the file pipeline has used up to shutdown_timeout:
            // together they must stay within the unit's TimeoutStopSec (30 s).
            shutdown_timeout: config.agent.shutdown_timeout.min(STOP_BUDGET),
        }
    }
}

/// The longest a stopping HTTP source waits for its queue to be written.
pub const STOP_BUDGET: Duration = Duration::from_secs(5);

/// Counters of one source, read by the agent's `/metrics` through [`HttpProbes`].
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Requests answered, by status code.
    by_status: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    /// Events queued.
    accepted: std::sync::atomic::AtomicU64,
    /// Events refused (invalid, or their request refused for lack of room or storage).
    rejected: std::sync::atomic::AtomicU64,
    /// Connections closed at accept because `max_connections` were open.
    refused_connections: std::sync::atomic::AtomicU64,
}

impl HttpStats {
    fn answered(&self, status: u16) {
        let mut m = self.by_status.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(status).or_default() += 1;
    }

    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        let m = self.by_status.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&status).copied().unwrap_or(0)
    }

    /// Events queued so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Events refused so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connections closed at accept so far.
    pub fn refused_connections(&self) -> u64 {
        self.refused_connections
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests answered so far, by status code.
    pub fn requests_by_status(&self) -> Vec<(u16, u64)> {
        let m = self.by_status.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(s, n)| (*s, *n)).collect()
    }
}

/// The running HTTP sources as the agent's `/metrics` and `/health` see them: filled by
/// [`spawn_all`], read at scrape time (the endpoint starts before the sources do).
#[derive(Debug, Clone, Default)]
pub struct HttpProbes(Arc<std::sync::Mutex<Vec<HttpProbe>>>);

#[derive(Debug)]
struct HttpProbe {
    name: String,
    stats: Arc<HttpStats>,
    progress: Arc<Progress>,
    queue: queue::QueueReceiver<AppEvent>,
}

/// One HTTP source's state at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpSnapshot {
    /// The source's name.
    pub name: String,
    /// Requests answered, by status code.
    pub requests: Vec<(u16, u64)>,
    /// Events queued.
    pub accepted: u64,
    /// Events refused.
    pub rejected: u64,
    /// Connections closed at accept because `max_connections` were open.
    pub refused_connections: u64,
    /// Its drain loop's breaker.
    pub circuit: crate::sink::CircuitState,
    /// `Some(reason)` while its writes are stalled past `stall_after`.
    pub stall: Option<String>,
    /// Events queued now.
    pub queue_depth: usize,
    /// Its queue's capacity.
    pub queue_capacity: usize,
    /// Rows its sink acknowledged.
    pub rows_written: u64,
}

impl HttpProbes {
    fn add(&self, probe: HttpProbe) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(probe);
    }

    /// Every registered source now, in start order.
    pub fn snapshot(&self) -> Vec<HttpSnapshot> {
        let probes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        probes
            .iter()
            .map(|p| {
                let q = p.queue.stats();
                let m = p.progress.metrics();
                HttpSnapshot {
                    name: p.name.clone(),
                    requests: p.stats.requests_by_status(),
                    accepted: p.stats.accepted(),
                    rejected: p.stats.rejected(),
                    refused_connections: p.stats.refused_connections(),
                    circuit: p.progress.circuit(),
                    stall: p.progress.stall(),
                    queue_depth: q.depth,
                    queue_capacity: q.capacity,
                    rows_written: m.rows_written_application,
                }
            })
            .collect()
    }
}

/// A running HTTP source. Dropping it stops the listener and gives the drain loop up to
/// `shutdown_timeout` to write what is queued.
#[derive(Debug)]
pub struct HttpSource {
    name: String,
    state: Arc<server::State>,
    progress: Arc<Progress>,
    listener: tokio::task::JoinHandle<()>,
    drain: Option<JoinHandle<drain::Ended>>,
    /// Reads the queue's depth after the senders are gone (a receiver does not keep the
    /// queue open).
    queue: queue::QueueReceiver<AppEvent>,
    stop: Stop,
    shutdown_timeout: Duration,
    local_addr: std::net::SocketAddr,
}

impl HttpSource {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// Its counters.
    pub fn stats(&self) -> &HttpStats {
        &self.state.stats
    }

    /// Stops accepting, then waits (up to the shutdown timeout) for the queued events.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.listener.abort();
        self.state.close();
        self.stop.at(Instant::now() + self.shutdown_timeout);
        if let Some(thread) = self.drain.take() {
            match thread.join() {
                Ok(drain::Ended::Stopped { unacked }) => tracing::warn!(
                    source = %self.name,
                    events = unacked + self.queue.stats().depth,
                    "http source stopped before its queued events were written: they are lost"
                ),
                Ok(_) => tracing::info!(source = %self.name, "http source drained"),
                Err(_) => tracing::error!(source = %self.name, "http source drain thread panicked"),
            }
        }
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Starts every configured HTTP source.
pub fn spawn_all(
    specs: &[HttpSourceSpec],
    shared: &AgentOutputs,
    probes: &HttpProbes,
) -> Result<Vec<HttpSource>, HttpSourceError> {
    specs
        .iter()
        .map(|s| {
            let source = spawn(s.clone(), shared)?;
            probes.add(HttpProbe {
                name: source.name.clone(),
                stats: Arc::clone(&source.state.stats),
                progress: Arc::clone(&source.progress),
                queue: source.queue.clone(),
            });
            Ok(source)
        })
        .collect()
}

/// Binds `spec.listen`, starts its drain thread and its accept loop.
pub fn spawn(spec: HttpSourceSpec, shared: &AgentOutputs) -> Result<HttpSource, HttpSourceError> {
    let std_listener =
        std::net::TcpListener::bind(spec.listen).map_err(|source| HttpSourceError::Bind {
            name: spec.name.clone(),
            addr: spec.listen,
            source,
        })?;
    let bind_err = |source| HttpSourceError::Bind {
        name: spec.name.clone(),
        addr: spec.listen,
        source,
    };
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let local_addr = std_listener.local_addr().map_err(bind_err)?;
    let tls = match &spec.tls {
        Some(files) => {
            Some(
                server::tls_acceptor(files).map_err(|message| HttpSourceError::Tls {
                    name: spec.name.clone(),
                    message,
                })?,
            )
        }
        None => None,
    };
    let policy = Policy {
        retry: shared.cassandra.retry.clone(),
        stall_after: shared.stall_after,
    };
    let progress = Arc::new(Progress::new(
        "cassandra",
        policy.stall_after,
        policy.breaker(),
    ));
    let stop = Stop::new();
    let drain = Drain {
        batch: BatchConfig {
            max_records: shared.batch.max_records,
            linger: spec.linger,
        },
        policy,
        stop: stop.clone(),
        heartbeat: Heartbeat::register(format!("http:{}", spec.name)),
        progress: Arc::clone(&progress),
        dead_letter: DeadLetter::new(Some(shared.data_dir.clone())),
        table: Table::ApplicationLogs,
    };
    let (tx, rx) = queue::bounded::<AppEvent>(spec.queue_capacity);
    let stats_rx = rx.clone();
    let waiters = Arc::new(written::Waiters::default());
    let mut sink = LazyApps {
        config: shared.cassandra.clone(),
        options: SinkOptions {
            dead_letter_dir: Some(shared.data_dir.clone()),
        },
        runtime: shared.runtime.clone(),
        route: AppRoute {
            ttl: spec.ttl,
            bucket: spec.bucket,
        },
        inner: None,
        progress: Arc::clone(&progress),
    };
    let acked = Arc::clone(&waiters);
    let thread = std::thread::Builder::new()
        .name(format!("http-{}", spec.name))
        .spawn(move || drain.run(&rx, &mut sink, |unit| acked.written(&unit)))
        .map_err(|source| HttpSourceError::Thread {
            name: spec.name.clone(),
            source,
        })?;
    let state = Arc::new(server::State::new(
        spec.clone(),
        tx,
        Arc::clone(&progress),
        waiters,
        &shared.host,
    ));
    let listener = {
        let _enter = shared.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
        shared
            .runtime
            .spawn(server::accept_loop(listener, Arc::clone(&state), tls))
    };
    tracing::info!(source = %spec.name, listen = %local_addr, ack = ?spec.ack, "http source listening");
    Ok(HttpSource {
        name: spec.name,
        state,
        progress,
        listener,
        drain: Some(thread),
        queue: stats_rx,
        stop,
        shutdown_timeout: shared.shutdown_timeout,
        local_addr,
    })
}

/// [`CassandraApps`] connected on the drain thread at the first attempt, so a cluster
/// that is down at start opens the breaker (503s) instead of failing the agent.
struct LazyApps {
    config: CassandraConfig,
    options: SinkOptions,
    runtime: tokio::runtime::Handle,
    route: AppRoute,
    inner: Option<CassandraApps>,
    progress: Arc<Progress>,
}

impl drain::Sink for LazyApps {
    type Item = AppEvent;

    fn write(&mut self, unit: &[AppEvent], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        if self.inner.is_none() {
            let connect = crate::sink::CassandraSink::connect(&self.config, self.options.clone());
            match self.runtime.block_on(until_stopped(stop, connect)) {
                Some(Ok(sink)) => {
                    self.progress.set_connected(true);
                    self.inner = Some(CassandraApps::new(
                        sink,
                        self.runtime.clone(),
                        self.route.clone(),
                    ));
                }
                Some(Err(e)) => {
                    return RowFailure::all(pending.iter().copied(), &connect_failure(&e));
                }
                None => {
                    return RowFailure::all(
                        pending.iter().copied(),
                        &Failure::Retry("stopping".into()),
                    );
                }
            }
        }
        match self.inner.as_mut() {
            Some(inner) => inner.write(unit, pending, stop),
            None => RowFailure::all(
                pending.iter().copied(),
                &Failure::Retry("not connected".into()),
            ),
        }
    }

    fn dead_letter(&self, item: &AppEvent, reason: &str) -> DeadLetterEntry {
        match &self.inner {
            Some(inner) => inner.dead_letter(item, reason),
            None => crate::sink::dead_letter_entry(
                &crate::sink::row::Row::app(item, &self.route, self.config.max_record_bytes),
                reason.to_owned(),
            ),
        }
    }

    fn attempt_bound(&self) -> Duration {
        self.config.request_timeout.max(self.config.connect_timeout) * 2
    }
}

/// Keeps `QueueSender` named where the server holds it.
type Sender = QueueSender<AppEvent>;

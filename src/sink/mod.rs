//! Writing records to Apache Cassandra (issue 4).
//!
//! [`CassandraSink`] holds the session and the prepared inserts; [`cassandra`] makes it a sink of
//! the pipeline's drain loop, which retries, backs off, breaks the circuit and stops.
//! [`CassandraSink::write_file_unit`] and [`CassandraSink::write_app_unit`] run that same drain step for
//! callers on a tokio runtime (tests, benchmarks). Rows have deterministic ids, so
//! re-sending a unit never duplicates a row. The table design is in docs/schema.md.
//! The other outputs (file, stdout, null) and how to write one: docs/sinks.md.

pub mod breaker;
pub mod cassandra;
pub mod catalog;
pub mod config;
pub mod deadletter;
pub mod error;
pub mod file;
pub mod metrics;
pub mod null;
pub mod output;
pub mod retry;
pub mod row;
pub mod schema;
pub mod session;
pub mod stdout;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session::Session;

pub use breaker::CircuitState;
pub use config::{CassandraConfig, Consistency, Replication, RetryConfig, TlsConfig, WriteMode};
pub use deadletter::DeadLetterEntry;
pub use error::SinkError;
pub use metrics::{LATENCY_BOUNDS_SECONDS, MetricsSnapshot, SinkMetrics};
pub use row::{AppEvent, AppRoute, Placement, RequestFields, file_row_id};

use crate::pipeline::drain::{self, Drain, Policy, Stop};
use crate::pipeline::heartbeat::Heartbeat;
use crate::pipeline::progress::Progress;
use crate::pipeline::{FileRecord, Table};
use deadletter::DeadLetter;
use retry::{Failure, RowFailure};
use row::Row;
use writer::Statements;

/// Settings of the sink that are not the `[cassandra]` section.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Directory for `dead-letter.jsonl` (the agent's data directory). Without one,
    /// refused records are logged at ERROR in full instead.
    pub dead_letter_dir: Option<PathBuf>,
}

/// What writing one flush unit took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitReport {
    /// Rows Cassandra acknowledged.
    pub written: usize,
    /// Rows refused for good and written to the dead-letter file (or log).
    pub dead_lettered: usize,
    /// Rows shortened to `max_record_bytes` (and flagged) before writing.
    pub truncated: usize,
    /// Attempts made (1 when nothing failed).
    pub attempts: u32,
    /// Wall time of the whole write, retries and backoff waits included.
    pub elapsed: Duration,
}

/// The Cassandra sink: cheap to clone, all clones share the session, the breaker and the
/// metrics.
#[derive(Clone)]
pub struct CassandraSink {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    statements: Statements,
    config: CassandraConfig,
    /// The write helpers' drain state: breaker and counters.
    progress: Arc<Progress>,
    policy: Policy,
    dead_letter: DeadLetter,
    stop: Stop,
    catalog: catalog::Catalog,
    /// Per-source request/trace id fields (`[[source]] request_id_field`).
    request_fields: std::sync::RwLock<Arc<std::collections::HashMap<String, RequestFields>>>,
}

impl std::fmt::Debug for CassandraSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CassandraSink")
            .field("contact_points", &self.inner.config.endpoints_display())
            .field("keyspace", &self.inner.config.keyspace)
            .field("circuit", &self.inner.progress.circuit())
            .finish()
    }
}

impl CassandraSink {
    /// Connects and prepares the inserts. Fails with a one-line error when the cluster is
    /// unreachable, refuses the login or TLS, or the tables are missing.
    pub async fn connect(
        config: &CassandraConfig,
        options: SinkOptions,
    ) -> Result<CassandraSink, SinkError> {
        let session = session::connect(config).await?;
        CassandraSink::with_session(session, config, options).await
    }

    /// A sink over an open session (after `schema::apply`, say).
    pub async fn with_session(
        session: Session,
        config: &CassandraConfig,
        options: SinkOptions,
    ) -> Result<CassandraSink, SinkError> {
        let statements = Statements::prepare(&session, &config.keyspace).await?;
        let catalog = catalog::Catalog::prepare(&session, &config.keyspace).await?;
        let policy = Policy {
            retry: config.retry.clone(),
            stall_after: Duration::from_secs(5),
        };
        Ok(CassandraSink {
            inner: Arc::new(Inner {
                session,
                statements,
                config: config.clone(),
                progress: Arc::new(Progress::new(
                    "cassandra",
                    policy.stall_after,
                    policy.breaker(),
                )),
                policy,
                dead_letter: DeadLetter::new(options.dead_letter_dir),
                stop: Stop::new(),
                catalog,
                request_fields: Default::default(),
            }),
        })
    }

    /// Writes a flush unit of file records to `infrastructure_logs`. Returns once every
    /// record is written (or dead-lettered); until then it retries, so file sources wait.
    /// Errors: `Deadline` after [`stop_at`](Self::stop_at)'s deadline. On error the unit
    /// must not be acknowledged.
    ///
    /// For tests, benchmarks and tools on a tokio runtime: it runs the pipeline's drain
    /// step ([`Drain::deliver`]) on a blocking thread, the same retries, backoff and
    /// breaker as the agent.
    pub async fn write_file_unit(&self, records: &[FileRecord]) -> Result<UnitReport, SinkError> {
        let max = self.inner.config.max_record_bytes;
        let truncated = records
            .iter()
            .filter(|r| Row::file(r, max, &RequestFields::default()).truncated())
            .count();
        let sink = cassandra::CassandraFiles::new(
            self.clone(),
            tokio::runtime::Handle::current(),
            Arc::clone(&self.inner.progress),
        );
        self.deliver(sink, records.to_vec(), Table::InfrastructureLogs, truncated)
            .await
    }

    /// Writes a flush unit of application events to `application_logs`, like
    /// [`write_file_unit`](Self::write_file_unit).
    pub async fn write_app_unit(
        &self,
        events: &[AppEvent],
        route: &AppRoute,
    ) -> Result<UnitReport, SinkError> {
        let max = self.inner.config.max_record_bytes;
        let truncated = events
            .iter()
            .filter(|e| Row::app(e, route, max).truncated())
            .count();
        self.inner.progress.metrics.add_truncated(truncated as u64);
        let sink = cassandra::CassandraApps::new(
            self.clone(),
            tokio::runtime::Handle::current(),
            route.clone(),
        );
        self.deliver(sink, events.to_vec(), Table::ApplicationLogs, truncated)
            .await
    }

    async fn deliver<S>(
        &self,
        mut sink: S,
        unit: Vec<S::Item>,
        table: Table,
        truncated: usize,
    ) -> Result<UnitReport, SinkError>
    where
        S: drain::Sink + 'static,
        S::Item: Send + 'static,
    {
        let inner = &self.inner;
        let drain = Drain {
            batch: crate::pipeline::batch::BatchConfig::default(),
            policy: inner.policy.clone(),
            stop: inner.stop.clone(),
            heartbeat: Heartbeat::register("sink-write"),
            progress: Arc::clone(&inner.progress),
            dead_letter: inner.dead_letter.clone(),
            table,
        };
        let total = unit.len();
        let started = Instant::now();
        let delivered = tokio::task::spawn_blocking(move || drain.deliver(&mut sink, &unit))
            .await
            .map_err(|e| SinkError::Refused {
                what: "a write".to_owned(),
                reason: format!("the write thread failed: {e}"),
            })?;
        match delivered {
            Some(d) => Ok(UnitReport {
                written: total - d.dead_lettered,
                dead_lettered: d.dead_lettered,
                truncated,
                attempts: d.attempts,
                elapsed: started.elapsed(),
            }),
            None => Err(SinkError::Deadline {
                unwritten: total,
                total,
            }),
        }
    }

    /// From `deadline` on, writes in progress and new ones give up with
    /// `SinkError::Deadline` instead of retrying (shutdown's drain deadline).
    pub fn stop_at(&self, deadline: Instant) {
        self.inner.stop.at(deadline);
    }

    /// The counters and histogram for `/metrics`.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.progress.metrics()
    }

    /// Which fields fill `request_id`/`trace_id` of each file source's rows; sources not
    /// named use [`RequestFields::default`]. Takes effect for the next unit.
    pub fn set_request_fields(&self, by_source: std::collections::HashMap<String, RequestFields>) {
        *self
            .inner
            .request_fields
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(by_source);
    }

    /// The request/trace id fields of every file source (see [`Self::set_request_fields`]).
    pub(crate) fn request_fields(&self) -> Arc<std::collections::HashMap<String, RequestFields>> {
        Arc::clone(
            &self
                .inner
                .request_fields
                .read()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The state of the write helpers' circuit breaker.
    pub fn circuit(&self) -> CircuitState {
        self.inner.progress.circuit()
    }

    /// One attempt at writing `rows[i]` for each `i` in `pending`, without retrying: the
    /// drain loop's step (it owns the retries, the backoff and the breaker).
    pub(crate) async fn attempt(&self, rows: &[Row<'_>], pending: &[usize]) -> Vec<RowFailure> {
        let inner = &*self.inner;
        // The catalog learns of new partitions before their rows are written, so a reader
        // that finds rows can always find their partition; a partition whose catalog row
        // failed keeps its rows back for the next attempt.
        let (ready, mut failures) = inner.catalog.note(&inner.session, rows, pending).await;
        failures.extend(
            writer::write(
                &inner.session,
                &inner.statements,
                inner.config.write_mode,
                inner.config.request_concurrency,
                rows,
                &ready,
            )
            .await,
        );
        self.refused_for_a_missing_table(&mut failures);
        // A request that reached no node (a closed pool, an empty plan) is told by the
        // driver without an address: name the contact points, so `/health` and the logs
        // say which cluster cannot be reached.
        for f in &mut failures {
            if let Failure::Unreachable(reason) = &mut f.failure {
                if !reason.starts_with("cannot reach Cassandra at ") {
                    *reason = format!(
                        "cannot reach Cassandra at {}: {reason}",
                        inner.config.endpoints_display()
                    );
                }
            }
        }
        failures
    }

    /// A table that vanished makes Cassandra refuse every row as invalid: that is an
    /// operator's problem (`logship schema apply`), not a reason to dead-letter the
    /// stream. Decided from the driver's schema metadata, not from the error's text.
    fn refused_for_a_missing_table(&self, failures: &mut [RowFailure]) {
        if !failures
            .iter()
            .any(|f| matches!(f.failure, Failure::Reject(_)))
        {
            return;
        }
        let ks = &self.inner.config.keyspace;
        let state = self.inner.session.get_cluster_state();
        let present = state.get_keyspace(ks).is_some_and(|k| {
            ["infrastructure_logs", "application_logs"]
                .iter()
                .all(|t| k.tables.contains_key(*t))
        });
        if present {
            return;
        }
        for f in failures.iter_mut() {
            if let Failure::Reject(reason) = &f.failure {
                f.failure = Failure::Fatal(format!(
                    "keyspace {ks} or one of its tables is missing (run `logship schema apply`): {reason}"
                ));
            }
        }
    }

    /// The `[cassandra] request_timeout`.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout
    }

    /// The `[cassandra] max_record_bytes` rows are cut to.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.inner.config.max_record_bytes
    }

    /// The driver session, for queries of one's own (tests, `logship schema apply`).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }
}

pub(crate) fn dead_letter_entry(row: &Row<'_>, reason: String) -> DeadLetterEntry {
    let refused_at = jiff::Timestamp::now().to_string();
    match row {
        Row::Infra(r) => DeadLetterEntry {
            refused_at,
            table: "infrastructure_logs",
            id: r.id.to_string(),
            reason,
            record: serde_json::json!({
                "record": &r.record.record,
                "file_path": &*r.record.origin.path,
                "file_offset": r.record.origin.start,
            }),
        },
        Row::App(r) => {
            let e = r.event;
            DeadLetterEntry {
                refused_at,
                table: "application_logs",
                id: e.id.to_string(),
                reason,
                record: serde_json::json!({
                    "timestamp": e.timestamp.to_string(),
                    "level": e.level.as_str(),
                    "service": &*e.service,
                    "host": &*e.host,
                    "target": &*e.target,
                    "module": e.module.as_deref(),
                    "file": e.file.as_deref(),
                    "line": e.line,
                    "message": &e.message,
                    "fields": &e.fields,
                    "span_fields": &e.span_fields,
                    "request_id": &e.request_id,
                    "trace_id": &e.trace_id,
                }),
            }
        }
    }
}

//! Writing records to Apache Cassandra (issue 4).
//!
//! [`Sink`] takes a flush unit (file records or application events), writes every row,
//! retrying transient failures with backoff behind a circuit breaker, and returns only
//! when the whole unit is in Cassandra, when a row was refused for good (dead-lettered),
//! or when the shutdown deadline passes. Rows have deterministic ids, so re-sending a unit
//! never duplicates a row. The table design is in docs/schema.md.

pub mod breaker;
pub mod catalog;
pub mod config;
pub mod deadletter;
pub mod error;
pub mod metrics;
pub mod retry;
pub mod row;
pub mod schema;
pub mod session;
pub mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use tokio::sync::watch;

pub use breaker::CircuitState;
pub use config::{CassandraConfig, Consistency, Replication, RetryConfig, TlsConfig, WriteMode};
pub use deadletter::DeadLetterEntry;
pub use error::SinkError;
pub use metrics::{LATENCY_BOUNDS_SECONDS, MetricsSnapshot, SinkMetrics};
pub use row::{AppEvent, AppRoute, Placement, RequestFields, file_row_id};

use crate::pipeline::FileRecord;
use breaker::{Breaker, Permit};
use deadletter::DeadLetter;
use retry::{Backoff, Failure};
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
    pub elapsed: Duration,
}

/// The Cassandra sink: cheap to clone, all clones share the session, the breaker and the
/// metrics.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    statements: Statements,
    config: CassandraConfig,
    metrics: SinkMetrics,
    breaker: Breaker,
    dead_letter: DeadLetter,
    deadline: watch::Sender<Option<Instant>>,
    catalog: catalog::Catalog,
    /// Per-source request/trace id fields (`[[source]] request_id_field`).
    request_fields: std::sync::RwLock<Arc<std::collections::HashMap<String, RequestFields>>>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("contact_points", &self.inner.config.endpoints_display())
            .field("keyspace", &self.inner.config.keyspace)
            .field("circuit", &self.inner.breaker.state())
            .finish()
    }
}

impl Sink {
    /// Connects and prepares the inserts. Fails with a one-line error when the cluster is
    /// unreachable, refuses the login or TLS, or the tables are missing.
    pub async fn connect(
        config: &CassandraConfig,
        options: SinkOptions,
    ) -> Result<Sink, SinkError> {
        let session = session::connect(config).await?;
        Sink::with_session(session, config, options).await
    }

    /// A sink over an open session (after `schema::apply`, say).
    pub async fn with_session(
        session: Session,
        config: &CassandraConfig,
        options: SinkOptions,
    ) -> Result<Sink, SinkError> {
        let statements = Statements::prepare(&session, &config.keyspace).await?;
        let catalog = catalog::Catalog::prepare(&session, &config.keyspace).await?;
        let retry = &config.retry;
        Ok(Sink {
            inner: Arc::new(Inner {
                session,
                statements,
                config: config.clone(),
                metrics: SinkMetrics::default(),
                breaker: Breaker::new(
                    retry.breaker_threshold,
                    retry.breaker_cooldown,
                    retry.max_backoff.saturating_mul(6),
                ),
                dead_letter: DeadLetter::new(options.dead_letter_dir),
                deadline: watch::Sender::new(None),
                catalog,
                request_fields: Default::default(),
            }),
        })
    }

    /// Writes a flush unit of file records to `infrastructure_logs`. Returns once every
    /// record is written (or dead-lettered); until then it retries, so file sources wait.
    /// Errors: `Stopped` after [`stop_at`](Self::stop_at)'s deadline, `Refused`/`Schema`
    /// when nothing can be written until an operator acts. On error the unit must not be
    /// acknowledged.
    pub async fn write_file_unit(&self, records: &[FileRecord]) -> Result<UnitReport, SinkError> {
        let max = self.inner.config.max_record_bytes;
        let fields = self.request_fields();
        let default = RequestFields::default();
        let ids = |r: &FileRecord| fields.get(&*r.route.source).unwrap_or(&default);
        let rows: Vec<Row<'_>> = records.iter().map(|r| Row::file(r, max, ids(r))).collect();
        self.write_rows(&rows).await
    }

    /// Writes a flush unit of application events to `application_logs`, like
    /// [`write_file_unit`](Self::write_file_unit).
    pub async fn write_app_unit(
        &self,
        events: &[AppEvent],
        route: &AppRoute,
    ) -> Result<UnitReport, SinkError> {
        let max = self.inner.config.max_record_bytes;
        let rows: Vec<Row<'_>> = events.iter().map(|e| Row::app(e, route, max)).collect();
        self.write_rows(&rows).await
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

    fn request_fields(&self) -> Arc<std::collections::HashMap<String, RequestFields>> {
        Arc::clone(
            &self
                .inner
                .request_fields
                .read()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// From `deadline` on, writes in progress and new ones give up with
    /// `SinkError::Stopped` instead of retrying (shutdown's drain deadline).
    pub fn stop_at(&self, deadline: Instant) {
        self.inner.deadline.send_replace(Some(deadline));
    }

    /// The counters and histogram for `/metrics`.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(self.inner.breaker.state())
    }

    pub fn circuit(&self) -> CircuitState {
        self.inner.breaker.state()
    }

    /// The driver session, for queries of one's own (tests, `logship schema apply`).
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    async fn write_rows(&self, rows: &[Row<'_>]) -> Result<UnitReport, SinkError> {
        let inner = &*self.inner;
        let started = Instant::now();
        let truncated = rows.iter().filter(|r| r.truncated()).count();
        inner.metrics.add_truncated(truncated as u64);
        let mut pending: Vec<usize> = (0..rows.len()).collect();
        let mut dead = Vec::new();
        let mut attempts = 0_u32;
        let mut backoff = Backoff::new(&inner.config.retry);
        let stopped = |pending: &[usize]| SinkError::Stopped {
            unwritten: pending.len(),
            total: rows.len(),
        };
        while !pending.is_empty() {
            let probe = match inner.breaker.permit() {
                Permit::Full => false,
                Permit::Probe => true,
                Permit::Wait(d) => {
                    if self.until_deadline(tokio::time::sleep(d)).await.is_none() {
                        return Err(stopped(&pending));
                    }
                    continue;
                }
            };
            if attempts > 0 {
                inner.metrics.add_retry();
            }
            attempts += 1;
            let batch: &[usize] = if probe { &pending[..1] } else { &pending };
            // The catalog learns of new partitions before their rows are written.
            let attempt = async {
                let (ready, mut failures) = inner.catalog.note(&inner.session, rows, batch).await;
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
                failures
            };
            let Some(failures) = self.until_deadline(attempt).await else {
                if probe {
                    inner
                        .breaker
                        .on_failure("shutdown deadline passed during a probe");
                }
                return Err(stopped(&pending));
            };
            inner.metrics.add_failed_requests(failures.len() as u64);
            let mut retry_reason = None;
            let mut failed = Vec::with_capacity(failures.len());
            for f in failures {
                match f.failure {
                    Failure::Retry(reason) => {
                        retry_reason.get_or_insert(reason);
                        failed.push(f.index);
                    }
                    Failure::Reject(reason) => dead.push((f.index, reason)),
                    Failure::Fatal(reason) => {
                        if probe {
                            inner.breaker.on_failure(&reason);
                        }
                        return Err(SinkError::Refused {
                            what: "a write".to_owned(),
                            reason,
                        });
                    }
                }
            }
            let mut not_written = vec![false; rows.len()];
            for &i in failed.iter().chain(dead.iter().map(|(i, _)| i)) {
                not_written[i] = true;
            }
            let written_now: Vec<usize> =
                batch.iter().copied().filter(|&i| !not_written[i]).collect();
            let sent_ok = written_now.len();
            self.count_written(rows, &written_now);
            // Rows not in this attempt (after a probe) stay pending.
            let untouched = pending.len() - batch.len();
            let mut next: Vec<usize> = pending[batch.len()..].to_vec();
            next.extend(failed.iter().copied());
            next.sort_unstable();
            pending = next;
            match retry_reason {
                None => {
                    inner.breaker.on_success();
                    backoff = Backoff::new(&inner.config.retry);
                }
                Some(reason) => {
                    if sent_ok > 0 && !probe {
                        // Partial progress: the cluster answers; keep going without
                        // counting towards the breaker, but still pace the retry.
                        tracing::debug!(failed = failed.len(), error = %reason, "some rows failed; retrying them");
                    } else {
                        inner.breaker.on_failure(&reason);
                    }
                    let delay = backoff.next_delay();
                    tracing::debug!(pending = pending.len(), untouched, ?delay, error = %reason, "write attempt failed; retrying");
                    if self
                        .until_deadline(tokio::time::sleep(delay))
                        .await
                        .is_none()
                    {
                        return Err(stopped(&pending));
                    }
                }
            }
        }
        let dead_lettered = dead.len();
        if !dead.is_empty() {
            let entries = dead
                .into_iter()
                .map(|(i, reason)| dead_letter_entry(&rows[i], reason))
                .collect();
            inner.dead_letter.write(entries).await?;
            inner.metrics.add_dead_lettered(dead_lettered as u64);
        }
        let elapsed = started.elapsed();
        inner.metrics.add_unit(elapsed);
        Ok(UnitReport {
            written: rows.len() - dead_lettered,
            dead_lettered,
            truncated,
            attempts,
            elapsed,
        })
    }

    fn count_written(&self, rows: &[Row<'_>], written: &[usize]) {
        let infra = written
            .iter()
            .filter(|&&i| matches!(rows[i], Row::Infra(_)))
            .count() as u64;
        self.inner
            .metrics
            .add_rows(infra, written.len() as u64 - infra);
    }

    /// Runs `fut` unless the stop deadline passes first (`None` then).
    async fn until_deadline<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut rx = self.inner.deadline.subscribe();
        let mut fut = std::pin::pin!(fut);
        loop {
            let deadline = *rx.borrow_and_update();
            let expire = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                out = &mut fut => return Some(out),
                () = expire => return None,
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Some(fut.await);
                    }
                }
            }
        }
    }
}

fn dead_letter_entry(row: &Row<'_>, reason: String) -> DeadLetterEntry {
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

//! The layer's Cassandra output: a drain-loop sink over the agent's own [`CassandraSink`], driven
//! from the worker thread by a small runtime of its own. It connects on the first attempt,
//! so building the layer never waits for Cassandra; the drain loop retries the rest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use logship_parsers::Level;

use super::worker::LayerSink;
use super::{CapturedEvent, LayerError};
use crate::pipeline::drain::{self, Stop};
use crate::sink::cassandra::{connect_failure, stopped, until_stopped};
use crate::sink::deadletter::DeadLetterEntry;
use crate::sink::retry::{Failure, RowFailure};
use crate::sink::row::Row;
use crate::sink::{AppEvent, AppRoute, CassandraSink, SinkOptions, schema};

pub use crate::sink::CassandraConfig;

/// Connects lazily, on the worker thread: building the layer never waits for Cassandra.
pub(crate) struct CassandraWriter {
    config: CassandraConfig,
    service: Arc<str>,
    host: Arc<str>,
    route: AppRoute,
    apply_schema: bool,
    runtime: Option<tokio::runtime::Runtime>,
    sink: Option<CassandraSink>,
}

pub(crate) struct Settings<'a> {
    pub config: CassandraConfig,
    pub service: &'a str,
    pub host: &'a str,
    pub ttl: Option<Duration>,
    pub bucket: Duration,
    pub apply_schema: bool,
}

/// Checks what can be checked without a network and makes the sink.
pub(crate) fn writer(settings: Settings<'_>) -> Result<LayerSink, LayerError> {
    let c = &settings.config;
    if c.contact_points.iter().all(|cp| cp.trim().is_empty()) {
        return Err(LayerError::BadCassandra("contact_points is empty".into()));
    }
    if c.keyspace.is_empty() {
        return Err(LayerError::BadCassandra("keyspace is empty".into()));
    }
    if c.password_file.is_some() && c.username.is_none() {
        return Err(LayerError::BadCassandra(
            "password_file is set but username is not".into(),
        ));
    }
    if let Some(path) = c.password_file.as_ref().filter(|p| !p.is_file()) {
        return Err(LayerError::BadCassandra(format!(
            "password_file {} is not a readable file",
            path.display()
        )));
    }
    Ok(Box::new(CassandraWriter {
        service: Arc::from(settings.service),
        host: Arc::from(settings.host),
        route: AppRoute {
            ttl: settings.ttl,
            bucket: settings.bucket,
        },
        apply_schema: settings.apply_schema,
        config: settings.config,
        runtime: None,
        sink: None,
    }))
}

impl CassandraWriter {
    fn row(&self, e: &CapturedEvent) -> AppEvent {
        let owned = |it: &mut dyn Iterator<Item = (&str, &str)>| -> BTreeMap<String, String> {
            it.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        };
        AppEvent {
            id: e.id(),
            timestamp: e.timestamp(),
            level: level(e.level()),
            service: Arc::clone(&self.service),
            host: Arc::clone(&self.host),
            target: e.target().into(),
            module: e.module_path().map(Into::into),
            file: e.file().map(Into::into),
            line: e.line(),
            message: e.message().to_owned(),
            fields: owned(&mut e.fields()),
            span_fields: owned(&mut e.span_fields()),
            request_id: e.request_id().map(str::to_owned),
            trace_id: e.trace_id().map(str::to_owned),
        }
    }
}

/// tracing has TRACE, the table's levels do not: it is stored as DEBUG.
fn level(l: tracing::Level) -> Level {
    match l {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

impl drain::Sink for CassandraWriter {
    type Item = CapturedEvent;

    fn write(&mut self, unit: &[CapturedEvent], pending: &[usize], stop: &Stop) -> Vec<RowFailure> {
        if self.runtime.is_none() {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => self.runtime = Some(rt),
                Err(e) => {
                    return RowFailure::all(
                        pending.iter().copied(),
                        &Failure::Retry(format!("cannot start a runtime: {e}")),
                    );
                }
            }
        }
        let Some(runtime) = self.runtime.as_ref() else {
            return RowFailure::all(
                pending.iter().copied(),
                &Failure::Retry("no runtime".into()),
            );
        };
        let (config, apply_schema) = (&self.config, self.apply_schema);
        let sink = match &self.sink {
            Some(sink) => sink.clone(),
            None => {
                let connect = async {
                    let session = crate::sink::session::connect(config).await?;
                    if apply_schema {
                        schema::apply(&session, config).await?;
                    }
                    CassandraSink::with_session(session, config, SinkOptions::default()).await
                };
                match runtime.block_on(until_stopped(stop, connect)) {
                    Some(Ok(sink)) => {
                        self.sink = Some(sink.clone());
                        sink
                    }
                    Some(Err(e)) => {
                        return RowFailure::all(pending.iter().copied(), &connect_failure(&e));
                    }
                    None => return stopped(pending),
                }
            }
        };
        // Built per attempt: retries are rare, and the rows borrow these events.
        let events: Vec<AppEvent> = unit.iter().map(|e| self.row(e)).collect();
        let max = config.max_record_bytes;
        let rows: Vec<Row<'_>> = events
            .iter()
            .map(|e| Row::app(e, &self.route, max))
            .collect();
        match runtime.block_on(until_stopped(stop, sink.attempt(&rows, pending))) {
            Some(failures) => failures,
            None => stopped(pending),
        }
    }

    fn dead_letter(&self, item: &CapturedEvent, reason: &str) -> DeadLetterEntry {
        let event = self.row(item);
        crate::sink::dead_letter_entry(
            &Row::app(&event, &self.route, self.config.max_record_bytes),
            reason.to_owned(),
        )
    }

    fn attempt_bound(&self) -> Duration {
        self.config.request_timeout.max(self.config.connect_timeout) * 2
    }
}

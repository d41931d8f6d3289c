//! The layer's [`EventWriter`] for Cassandra: the agent's own [`Sink`], driven from the
//! worker thread by a small runtime of its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use logship_parsers::Level;

use super::writer::{EventWriter, StopSignal, WriteError};
use super::{CapturedEvent, LayerError};
use crate::sink::{AppEvent, AppRoute, Sink, SinkOptions, schema};

pub use crate::sink::CassandraConfig;

/// Connects lazily, on the worker thread: building the layer never waits for Cassandra.
pub(crate) struct CassandraWriter {
    config: CassandraConfig,
    service: Arc<str>,
    host: Arc<str>,
    route: AppRoute,
    apply_schema: bool,
    runtime: Option<tokio::runtime::Runtime>,
    sink: Option<Sink>,
    /// Reused between units: the rows of the unit being written.
    rows: Vec<AppEvent>,
}

pub(crate) struct Settings<'a> {
    pub config: CassandraConfig,
    pub service: &'a str,
    pub host: &'a str,
    pub ttl: Option<Duration>,
    pub bucket: Duration,
    pub apply_schema: bool,
}

/// Checks what can be checked without a network and makes the writer.
pub(crate) fn writer(settings: Settings<'_>) -> Result<Box<dyn EventWriter>, LayerError> {
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
        rows: Vec::new(),
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

impl EventWriter for CassandraWriter {
    fn write(&mut self, unit: &[CapturedEvent], stop: &StopSignal) -> Result<(), WriteError> {
        let rows: Vec<AppEvent> = unit.iter().map(|e| self.row(e)).collect();
        self.rows = rows;
        if self.runtime.is_none() {
            self.runtime = Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            );
        }
        let Some(runtime) = self.runtime.as_ref() else {
            return Err("no runtime".into());
        };
        let (config, apply_schema) = (&self.config, self.apply_schema);
        let sink = match &self.sink {
            Some(sink) => sink.clone(),
            None => {
                let sink = runtime.block_on(stop.or_stopped(async {
                    let session = crate::sink::session::connect(config).await?;
                    if apply_schema {
                        schema::apply(&session, config).await?;
                    }
                    Sink::with_session(session, config, SinkOptions::default()).await
                }))??;
                self.sink = Some(sink.clone());
                sink
            }
        };
        runtime.block_on(stop.or_stopped(sink.write_app_unit(&self.rows, &self.route)))??;
        self.rows.clear();
        Ok(())
    }
}

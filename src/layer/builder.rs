//! Settings of the layer, checked before anything starts.

use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::filter::{Filtered, LevelFilter};
use tracing_subscriber::layer::Layer;

use super::capture::EventShipper;
use super::cassandra::{self, CassandraConfig};
use super::filter::ShipFilter;
use super::guard::FlushGuard;
use super::worker::{self, LayerCounters, LayerSink, UnitConfig};
use super::writer::{EventWriter, WriterSink};

/// The layer to add to a `tracing_subscriber::registry()`: the shipper behind its
/// per-layer filter. `S` is inferred from the subscriber it is added to.
pub type LogshipLayer<S> = Filtered<EventShipper, ShipFilter, S>;

/// A setting `build()` refuses, or the worker thread failing to start.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// `.service(..)` was never called: every row needs the service it came from.
    #[error("logship layer: service name is missing (call .service(\"my-app\"))")]
    MissingService,
    #[error(
        "logship layer: service name {0:?} is not a plain non-empty name of at most 128 characters"
    )]
    /// The service name given (here) is empty, too long or not a plain name.
    BadService(String),
    #[error(
        "logship layer: no Cassandra settings (call .cassandra(CassandraConfig {{ .. }}) or .agent_config(path))"
    )]
    /// Neither `.cassandra(..)` nor `.agent_config(..)` said where to write.
    MissingCassandra,
    /// The agent's config file named by `.agent_config(..)` could not be loaded.
    #[cfg(feature = "agent")]
    #[error("logship layer: cannot use the agent's config")]
    AgentConfig(#[source] crate::config::ConfigError),
    /// The Cassandra settings cannot work (TLS files, password file, ...); the reason.
    #[error("logship layer: Cassandra settings: {0}")]
    BadCassandra(String),
    /// A numeric setting outside what the layer accepts.
    #[error("logship layer: {name} is {value}; {expected}")]
    OutOfRange {
        /// The builder method, e.g. `buffer_capacity`.
        name: &'static str,
        /// The value given, as written.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// The operating system refused to start the worker thread.
    #[error("logship layer: cannot start its worker thread")]
    Spawn(#[source] std::io::Error),
}

/// Starts a builder with the defaults: INFO and above, a buffer of 65,536 events, units of
/// 1000 events or 1 s, the table's default TTL, 5 s to flush at shutdown, never blocking.
pub fn builder() -> LayerBuilder {
    LayerBuilder::default()
}

/// Builds a [`LogshipLayer`] and its [`FlushGuard`].
pub struct LayerBuilder {
    service: Option<String>,
    host: Option<String>,
    cassandra: Option<CassandraConfig>,
    #[cfg(feature = "agent")]
    agent_config: Option<std::path::PathBuf>,
    writer: Option<Box<dyn EventWriter>>,
    ttl: Option<Duration>,
    bucket: Duration,
    capacity: usize,
    flush_size: usize,
    linger: Duration,
    level: LevelFilter,
    blocking: bool,
    apply_schema: bool,
    shutdown_timeout: Duration,
    max_event_bytes: usize,
    exclude: Vec<String>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder {
            service: None,
            host: None,
            cassandra: None,
            #[cfg(feature = "agent")]
            agent_config: None,
            writer: None,
            ttl: None,
            bucket: Duration::from_secs(3600),
            capacity: 65_536,
            flush_size: 1000,
            linger: Duration::from_secs(1),
            level: LevelFilter::INFO,
            blocking: false,
            apply_schema: false,
            shutdown_timeout: Duration::from_secs(5),
            max_event_bytes: 32 * 1024,
            exclude: Vec::new(),
        }
    }
}

impl std::fmt::Debug for LayerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerBuilder")
            .field("service", &self.service)
            .field("cassandra", &self.cassandra)
            .field("custom_writer", &self.writer.is_some())
            .field("capacity", &self.capacity)
            .field("flush_size", &self.flush_size)
            .field("linger", &self.linger)
            .field("level", &self.level)
            .field("blocking", &self.blocking)
            .finish_non_exhaustive()
    }
}

impl LayerBuilder {
    /// The application's name: the partition key's first part (required).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// The host name rows carry; defaults to the kernel's node name.
    pub fn host(mut self, name: impl Into<String>) -> Self {
        self.host = Some(name.into());
        self
    }

    /// Where and how to write: the same `[cassandra]` settings the agent uses.
    pub fn cassandra(mut self, config: CassandraConfig) -> Self {
        self.cassandra = Some(config);
        self
    }

    /// Takes the `[cassandra]` section of the agent's config file (and its `conf.d/`
    /// drop-ins), read and checked by `build()`; `.cassandra(..)` takes precedence. Needs
    /// the `agent` feature too.
    #[cfg(feature = "agent")]
    pub fn agent_config(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.agent_config = Some(path.into());
        self
    }

    /// Writes units with `writer` instead of Cassandra (tests, other outputs).
    pub fn writer(mut self, writer: impl EventWriter) -> Self {
        self.writer = Some(Box::new(writer));
        self
    }

    /// TTL of the rows (`USING TTL`), whole seconds, at most 20 years; unset keeps the
    /// table's `default_time_to_live`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Width of the partition's time bucket (whole seconds, 1 minute to 1 day, default
    /// 1 h): size it so one bucket of this service on one host stays well under 100 MB.
    pub fn bucket(mut self, width: Duration) -> Self {
        self.bucket = width;
        self
    }

    /// Most events buffered between the app and the worker (default 65,536). Beyond it
    /// events are dropped and counted (or the app waits, with [`blocking`](Self::blocking)).
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.capacity = events;
        self
    }

    /// Events per flush unit (default 1000).
    pub fn flush_size(mut self, events: usize) -> Self {
        self.flush_size = events;
        self
    }

    /// Longest wait for a unit to fill, from its first event (default 1 s).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Most verbose level shipped (default INFO). Other layers are not affected.
    pub fn level(mut self, level: impl Into<LevelFilter>) -> Self {
        self.level = level.into();
        self
    }

    /// With `true`, a full buffer makes the logging thread wait instead of dropping the
    /// event: for apps that prefer backpressure to loss.
    pub fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = blocking;
        self
    }

    /// With `true`, the worker creates the keyspace and tables if missing (as `logship
    /// schema apply` does) after connecting: for development; in production the operator
    /// applies the schema.
    pub fn apply_schema(mut self, apply: bool) -> Self {
        self.apply_schema = apply;
        self
    }

    /// How long dropping the guard waits for the buffer to be written (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Cap on one event's rendered message and fields (default 32 KiB); longer text is cut.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// Another target (and its modules) never to ship, besides the built-in
    /// [`EXCLUDED_TARGETS`](super::filter::EXCLUDED_TARGETS).
    pub fn exclude_target(mut self, target: impl Into<String>) -> Self {
        self.exclude.push(target.into());
        self
    }

    /// Checks the settings and starts the worker. Never contacts Cassandra: the worker
    /// connects in the background and retries while the app runs.
    pub fn build<S>(
        #[cfg_attr(not(feature = "agent"), allow(unused_mut))] mut self,
    ) -> Result<(LogshipLayer<S>, FlushGuard), LayerError>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        #[cfg(feature = "agent")]
        if let Some(path) = self.agent_config.take() {
            let config = crate::config::Config::load(&path).map_err(LayerError::AgentConfig)?;
            self.cassandra.get_or_insert(config.cassandra);
        }
        let service = self.service.clone().ok_or(LayerError::MissingService)?;
        if service.is_empty()
            || service.chars().count() > 128
            || service.chars().any(|c| c.is_control())
        {
            return Err(LayerError::BadService(service));
        }
        self.check_ranges()?;
        let retry = self
            .cassandra
            .as_ref()
            .map(|c| c.retry.clone())
            .unwrap_or_default();
        let sink: LayerSink = match (self.writer, &self.cassandra) {
            (Some(w), _) => Box::new(WriterSink::new(w)),
            (None, None) => return Err(LayerError::MissingCassandra),
            (None, Some(config)) => {
                // The same checks as the agent's `[cassandra]`.
                config
                    .check()
                    .map_err(|e| LayerError::BadCassandra(e.to_string()))?;
                let host = self.host.clone().unwrap_or_else(crate::host::hostname);
                cassandra::writer(cassandra::Settings {
                    config: config.clone(),
                    service: &service,
                    host: &host,
                    ttl: self.ttl,
                    bucket: self.bucket,
                    apply_schema: self.apply_schema,
                })?
            }
        };
        let (tx, rx) = crossbeam_channel::bounded(self.capacity);
        let shared = Arc::new(LayerCounters::default());
        let config = UnitConfig {
            flush_size: self.flush_size,
            linger: self.linger,
            capacity: self.capacity,
            retry,
        };
        let handle = worker::spawn(rx.clone(), sink, Arc::clone(&shared), config)
            .map_err(LayerError::Spawn)?;
        let shipper = EventShipper {
            tx: tx.clone(),
            shared: Arc::clone(&shared),
            blocking: self.blocking,
            max_event_bytes: self.max_event_bytes,
        };
        let guard = FlushGuard::new(
            (tx, rx),
            shared,
            self.capacity,
            self.shutdown_timeout,
            handle,
        );
        let layer = shipper.with_filter(ShipFilter::new(self.level, self.exclude));
        Ok((layer, guard))
    }

    fn check_ranges(&self) -> Result<(), LayerError> {
        let out = |name, value: String, expected| {
            Err(LayerError::OutOfRange {
                name,
                value,
                expected,
            })
        };
        if self.capacity == 0 || self.capacity > 16 << 20 {
            return out(
                "buffer_capacity",
                self.capacity.to_string(),
                "expected 1 to 16,777,216 events",
            );
        }
        if self.flush_size == 0 || self.flush_size > self.capacity {
            return out(
                "flush_size",
                self.flush_size.to_string(),
                "expected at least 1 and at most buffer_capacity",
            );
        }
        if self.linger > Duration::from_secs(3600) {
            return out(
                "linger",
                format!("{:?}", self.linger),
                "expected at most 1 hour",
            );
        }
        // The same limits as the agent's `[[source]]` ttl and bucket.
        if let Some((ttl, e)) = self
            .ttl
            .and_then(|t| crate::limits::check_ttl(t).err().map(|e| (t, e)))
        {
            return out("ttl", format!("{ttl:?}"), e.expected);
        }
        if let Err(e) = crate::limits::check_bucket(self.bucket) {
            return out("bucket", format!("{:?}", self.bucket), e.expected);
        }
        if self.max_event_bytes < 256 || self.max_event_bytes > 1 << 24 {
            return out(
                "max_event_bytes",
                self.max_event_bytes.to_string(),
                "expected 256 bytes to 16 MiB",
            );
        }
        if self.shutdown_timeout > Duration::from_secs(600) {
            return out(
                "shutdown_timeout",
                format!("{:?}", self.shutdown_timeout),
                "expected at most 10 minutes",
            );
        }
        Ok(())
    }
}

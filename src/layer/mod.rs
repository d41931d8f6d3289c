//! A `tracing` Layer that ships an application's own events to Cassandra's
//! `application_logs` table, through the same sink the agent uses.
//!
//! ```no_run
//! # fn main() -> Result<(), logship::layer::LayerError> {
//! use tracing_subscriber::prelude::*;
//! # let cassandra = todo!();
//! let (layer, _guard) = logship::layer::builder()
//!     .service("checkout")
//!     .cassandra(cassandra)
//!     .build()?;
//! tracing_subscriber::registry().with(layer).init();
//! # Ok(()) }
//! ```
//!
//! What the application thread pays per event ([`capture`]): the fields are rendered into a
//! reused thread-local buffer, copied once into an owned record that gets its row id there
//! and then (so a retried write rewrites the same rows), and handed to a bounded channel
//! with `try_send`. A full channel drops the event and counts it; [`LayerBuilder::blocking`]
//! waits instead. Span fields are rendered once, when the span is created or recorded.
//!
//! A plain thread owned by the layer ([`worker`]) runs the pipeline's drain loop, the one
//! the agent runs: it gathers flush units (1000 events or the linger time) and writes them
//! with the same retries, backoff and circuit breaker, so the layer works whether or not
//! the application runs tokio. Cassandra being down never fails [`LayerBuilder::build`]: the
//! worker connects in the background, and what does not fit in the buffer meanwhile is
//! counted as dropped and reported as a WARN row once the buffer drains.
//!
//! Request and trace ids: a field named `request_id` or `trace_id` on the event, or else on
//! the innermost enclosing span that has one, fills the table's `request_id` / `trace_id`
//! columns (the SAI-indexed ones), besides appearing in the field maps.
//!
//! Events whose target is the Cassandra driver, the async runtime, the TLS/HTTP stack or
//! logship itself never enter this layer ([`filter`]), nor does anything logged on the
//! worker thread, so shipping never logs about itself.

pub mod builder;
pub mod capture;
mod cassandra;
pub mod filter;
pub mod guard;
pub mod worker;
pub mod writer;

pub use builder::{LayerBuilder, LayerError, LogshipLayer, builder};
pub use capture::{CapturedEvent, EventShipper};
pub use cassandra::CassandraConfig;
pub use filter::ShipFilter;
pub use guard::{FlushGuard, FlushReport, LayerStats};
pub use writer::{EventWriter, FlushTimedOut, StopSignal, WriteError};

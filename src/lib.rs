//! logship: a log-shipping agent that tails log files and ships structured records to
//! Apache Cassandra, and a `tracing` Layer that ships an application's own events.
//!
//! The library is split so an application that wants only the Layer pulls no file
//! tailing or systemd code (feature `layer` without `agent`).

pub use logship_parsers as parsers;

#[cfg(feature = "agent")]
pub mod config;
pub mod duration;
pub mod host;
#[cfg(feature = "layer")]
pub mod layer;
pub mod limits;
pub mod pipeline;
pub mod query;
#[cfg(feature = "agent")]
pub mod serve;
#[cfg(feature = "agent")]
pub mod signals;
pub mod sink;
#[cfg(feature = "agent")]
pub mod source;
#[cfg(feature = "agent")]
pub mod tail;
#[cfg(feature = "agent")]
pub mod telemetry;

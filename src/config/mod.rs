//! The agent's configuration: `/etc/logship/logship.toml` plus `conf.d/*.toml` drop-ins.
//!
//! Raw serde types (unknown keys rejected, every key documented here) are read per file so
//! errors point into the right file, merged, then validated into [`Config`].

pub mod duration;
pub mod load;

pub use load::ConfigError;

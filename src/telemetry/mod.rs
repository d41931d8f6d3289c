//! The agent's own telemetry: its logs, systemd notifications, metrics and health.

pub mod http;
pub mod logging;
pub mod metrics;
pub mod sdnotify;

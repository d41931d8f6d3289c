//! The agent-wide sections: `[agent]`, `[metrics]` (`[buffer]` is in `config::buffer`, `[batch]` is
//! `pipeline::batch::BatchConfig`, shared with the tracing Layer).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[agent]`: where the agent keeps its state and how it names this host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Directory for checkpoints and the dead-letter file. The systemd unit's
    /// `StateDirectory=logship` makes `/var/lib/logship` writable for the agent.
    pub data_dir: PathBuf,
    /// Host name written with every record. Default: the kernel's host name.
    pub host: Option<String>,
    /// Level of the agent's own logs (`off`, `error`, `warn`, `info`, `debug`, `trace`).
    /// The `LOGSHIP_LOG` environment variable overrides it.
    pub log_level: String,
    /// How long a SIGTERM drain may take to flush what is buffered before the agent exits;
    /// keep it below the unit's `TimeoutStopSec` (30 s). What is not acknowledged by then
    /// is read again at the next start.
    #[serde(with = "crate::duration")]
    pub shutdown_timeout: Duration,
    /// Records handed to the sink and not acknowledged for longer than this make `/health`
    /// answer 503 ("writes stalled for ...") and log one WARN.
    #[serde(with = "super::duration")]
    pub stall_after: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            data_dir: PathBuf::from("/var/lib/logship"),
            host: None,
            log_level: "info".to_owned(),
            shutdown_timeout: Duration::from_secs(20),
            stall_after: Duration::from_secs(5),
        }
    }
}

/// `[metrics]`: Prometheus metrics and the health check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` and `/health` here. Loopback by default: the endpoint has no
    /// authentication.
    pub listen: SocketAddr,
    /// Turn the endpoint off.
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
            enabled: true,
        }
    }
}

//! `[serve]`: the read-only HTTP service of `logship serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[serve]`: where `logship serve` listens and who may read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address of the HTTP API and the explorer page. Loopback by default: logs hold what
    /// operators would not publish; put a token (`token_file`) or a proxy in front before
    /// listening elsewhere. `logship serve --listen` overrides it.
    pub listen: SocketAddr,
    /// File holding the bearer token every request must carry
    /// (`Authorization: Bearer TOKEN`; one line, the trailing newline is ignored). Unset:
    /// no token is asked for. `/health` never asks.
    pub token_file: Option<PathBuf>,
    /// The most events one `GET /events` page may return; a larger `limit` is a 400.
    pub max_limit: usize,
}

/// The page size when a request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9880)),
            token_file: None,
            max_limit: 1000,
        }
    }
}

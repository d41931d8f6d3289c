//! SIGHUP: validate the new config first; keep the running one when it is bad.

use std::path::Path;

use logship::config::Config;
use logship::tail::TailerHandle;
use logship::telemetry::sdnotify;
use tracing::{error, info, warn};

/// Applies the new config's sources; changes to other sections are logged as taking
/// effect at the next restart. A bad config or a refused source change leaves the
/// running config as it was.
pub(super) fn reload(path: &Path, current: &mut Config, tailer: &mut TailerHandle) {
    sdnotify::reloading();
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, error_kind = "config", "reload refused: the new config is invalid; the running config stays");
            return;
        }
    };
    for warning in &new.warnings {
        warn!(error_kind = "config", "{warning}");
    }
    let restart_only: Vec<&str> = [
        ("agent", current.agent != new.agent),
        ("cassandra", current.cassandra != new.cassandra),
        ("buffer", current.buffer != new.buffer),
        ("batch", current.batch != new.batch),
        ("metrics", current.metrics != new.metrics),
        ("tail", current.tail != new.tail),
        ("syslog sources", current.syslog != new.syslog),
        ("http sources", current.http_sources != new.http_sources),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect();
    if !restart_only.is_empty() {
        warn!(sections = ?restart_only, "changes to these sections take effect at the next restart");
    }
    match tailer.reconfigure(new.sources.clone()) {
        Ok(summary) => {
            info!(
                added = ?summary.added,
                removed = ?summary.removed,
                restarted = ?summary.restarted,
                unchanged = summary.unchanged.len(),
                "config reloaded"
            );
            current.adopt_sources(new);
        }
        Err(e) => {
            error!(error = %format!("{e:#}"), error_kind = "config", "reload refused; the running sources stay");
        }
    }
}

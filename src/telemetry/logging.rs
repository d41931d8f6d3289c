//! The agent's own logs: structured to journald when systemd captured stderr, readable text
//! on stderr otherwise. These never enter the shipping pipeline.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Journal field prefix: an event field `source` becomes `LOGSHIP_SOURCE`, so
/// `journalctl -u logship LOGSHIP_SOURCE=nginx` selects one source's lines.
pub const JOURNAL_FIELD_PREFIX: &str = "LOGSHIP";

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// Structured entries to the systemd journal (fields such as `LOGSHIP_SOURCE`).
    Journald,
    /// Text lines on stderr.
    Stderr,
}

/// Journald when `JOURNAL_STREAM` names the stream stderr is connected to (what systemd
/// sets for `StandardError=journal`), so a redirected stderr still gets text.
pub fn detect_target() -> LogTarget {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return LogTarget::Stderr;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return LogTarget::Stderr;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return LogTarget::Stderr;
    };
    if dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino()) {
        LogTarget::Journald
    } else {
        LogTarget::Stderr
    }
}

/// Installs the global subscriber. `LOGSHIP_LOG` (an `EnvFilter` directive such as
/// `info,logship::tail=debug`) overrides `default_level`. The driver's chatter stays at warn.
pub fn init(default_level: &str) -> LogTarget {
    let directives = std::env::var("LOGSHIP_LOG")
        // The driver logs every failed reconnection; the sink already reports a cluster's
        // state changes once each, so the driver stays quiet unless LOGSHIP_LOG asks.
        .unwrap_or_else(|_| format!("{default_level},scylla=off,hyper=warn,axum=warn"));
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let target = detect_target();
    if target == LogTarget::Journald {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_field_prefix(Some(JOURNAL_FIELD_PREFIX.to_owned()));
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .try_init();
            return LogTarget::Journald;
        }
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .try_init();
    LogTarget::Stderr
}

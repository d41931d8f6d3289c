//! Which events and spans the layer ships: a per-layer filter, so other layers (the app's
//! `fmt` output) still see everything they would without logship.

use tracing::Metadata;
use tracing::subscriber::Interest;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{self, Filter};

/// Crates whose events must never be shipped: the Cassandra driver, the async runtime and
/// network stack the worker runs on, and logship itself. Shipping their events would make
/// every write log about itself, in a loop. Matched as a target or a target prefix
/// followed by `::`.
pub const EXCLUDED_TARGETS: &[&str] = &[
    "logship",
    "scylla",
    "scylla_cql",
    "tokio",
    "tokio_util",
    // tokio's own instrumentation (`tokio_unstable`) uses `runtime::*` targets.
    "runtime",
    "mio",
    "hyper",
    "hyper_util",
    "h2",
    "tower",
    "rustls",
    "tokio_rustls",
    "openssl",
    "tracing_subscriber",
];

/// Ships events at or above a level from every target but the excluded ones. Spans pass at
/// every level (but not from excluded targets), so a `debug_span!` carrying a `request_id`
/// still lends it to the events inside it.
#[derive(Debug, Clone)]
pub struct ShipFilter {
    level: LevelFilter,
    extra_excluded: Vec<String>,
}

impl ShipFilter {
    /// Ships events at `level` or more severe; `extra_excluded` adds targets (or target
    /// prefixes) to [`EXCLUDED_TARGETS`].
    pub fn new(level: LevelFilter, extra_excluded: Vec<String>) -> Self {
        ShipFilter {
            level,
            extra_excluded,
        }
    }

    /// Whether events or spans with this metadata are shipped.
    pub fn accepts(&self, meta: &Metadata<'_>) -> bool {
        let target = meta.target();
        if EXCLUDED_TARGETS.iter().any(|p| in_target(target, p))
            || self.extra_excluded.iter().any(|p| in_target(target, p))
        {
            return false;
        }
        meta.is_span() || self.level >= *meta.level()
    }
}

/// `target` is `prefix` or one of its modules.
fn in_target(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

impl<S> Filter<S> for ShipFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &layer::Context<'_, S>) -> bool {
        self.accepts(meta)
    }

    // Decided once per callsite: a filtered-out event costs the app nothing afterwards.
    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.accepts(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        if self.level == LevelFilter::OFF {
            Some(LevelFilter::OFF)
        } else {
            // Spans of every level are kept for their fields.
            Some(LevelFilter::TRACE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_whole_path_segments() {
        assert!(in_target("scylla", "scylla"));
        assert!(in_target("scylla::network::connection", "scylla"));
        assert!(!in_target("scylla_cql", "scylla"));
        assert!(!in_target("logshipper", "logship"));
        assert!(in_target("logship::layer::worker", "logship"));
        assert!(!in_target("my_app::tokio_things", "tokio"));
    }
}

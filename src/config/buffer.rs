//! `[buffer]`: the bounded queue between the sources and the drain loop, bounded both in
//! bytes (what memory is about) and in records.

use serde::{Deserialize, Serialize};

/// The default byte bound: with one flush unit in the drain's hand and the agent's own
/// footprint it keeps the daemon near 20 MiB of RSS (docs/path-speed.md).
pub const DEFAULT_MAX_BYTES: usize = 8 << 20;

/// The smallest byte bound accepted: below it the queue holds a handful of lines and the
/// tailers and the sink take turns instead of overlapping.
pub const MIN_MAX_BYTES: usize = 64 << 10;

/// `[buffer]`: the bounded queue between the sources and the sink. Whichever bound is
/// reached first makes the tailers wait (nothing is dropped: the files on disk are the
/// buffer). The unit the sink is writing is out of the queue, so memory is about
/// `max_bytes` plus one flush unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Most bytes of records the queue holds (each record's message and fields with their
    /// overhead; an nginx line is about 1–2 KiB in memory). The bound that keeps the
    /// agent's memory in check: at least 65536.
    pub max_bytes: usize,
    /// Most records the queue holds, whatever their size (a second bound for very small
    /// records). Must hold at least one flush unit (`[batch] max_records`).
    pub capacity: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            capacity: 10_000,
        }
    }
}

impl BufferConfig {
    /// Checks the section against the flush unit's `max_records`: the offending key and
    /// why, or `Ok`.
    pub fn check(&self, max_records: usize) -> Result<(), (&'static str, String)> {
        if self.max_bytes < MIN_MAX_BYTES {
            return Err((
                "max_bytes",
                format!(
                    "{} is below the smallest bound, {MIN_MAX_BYTES} bytes",
                    self.max_bytes
                ),
            ));
        }
        if self.capacity < max_records {
            return Err((
                "capacity",
                format!("must hold at least one flush unit (batch.max_records = {max_records})"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_small_bounds_are_named() {
        assert_eq!(BufferConfig::default().check(1000), Ok(()));
        let small = BufferConfig {
            max_bytes: 1000,
            ..BufferConfig::default()
        };
        assert_eq!(small.check(1000).unwrap_err().0, "max_bytes");
        assert_eq!(
            BufferConfig::default().check(20_000).unwrap_err().0,
            "capacity"
        );
    }
}

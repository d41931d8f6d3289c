//! The tailer's settings as an operator writes them, with their defaults.
//!
//! [`TailConfig`] holds what applies to every source; [`SourceTailSettings`] what each
//! `[[source]]` may set. Both refuse unknown keys. Note that serde's `flatten` does not
//! combine with `deny_unknown_fields`, so a config type embedding [`SourceTailSettings`]
//! should repeat its fields rather than flatten it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where to start in a file that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// Read every file from its first byte.
    #[default]
    Beginning,
    /// Skip what the files held when the agent first started; files appearing later are
    /// still read from their beginning, so no line written after the start is missed.
    End,
}

/// Settings shared by every file source (`[tail]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Milliseconds between full rescans of every watched directory. inotify wakes the
    /// agent as soon as files change; the rescan is the safety net for missed or
    /// overflowed events and network filesystems. Default 5000.
    pub rescan_interval_ms: u64,
    /// Milliseconds between checks of directories that cannot be watched (missing yet, or
    /// the watch limit reached); also how often files there are checked for growth.
    /// Default 1000.
    pub poll_interval_ms: u64,
    /// Seconds after which a file that has not grown is closed; it is reopened when it
    /// changes. Bounds open descriptors with thousands of files. Default 60.
    pub idle_close_secs: u64,
    /// At most this many log files open at once, across all sources. Default 512.
    pub max_open_files: usize,
    /// Milliseconds a rotated-away or deleted file is still read after its last growth,
    /// for writers that have not reopened their log yet. Default 5000.
    pub rotate_wait_ms: u64,
    /// Milliseconds between checkpoint writes (only when an offset moved). Default 1000.
    pub checkpoint_interval_ms: u64,
    /// Seconds a checkpoint is kept for a file that is no longer read (rotated away,
    /// deleted). Default 604800 (7 days).
    pub checkpoint_retention_secs: u64,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            rescan_interval_ms: 5000,
            poll_interval_ms: 1000,
            idle_close_secs: 60,
            max_open_files: 512,
            rotate_wait_ms: 5000,
            checkpoint_interval_ms: 1000,
            checkpoint_retention_secs: 7 * 24 * 3600,
        }
    }
}

impl TailConfig {
    pub const fn rescan_interval(&self) -> Duration {
        Duration::from_millis(self.rescan_interval_ms)
    }
    pub const fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub const fn idle_close(&self) -> Duration {
        Duration::from_secs(self.idle_close_secs)
    }
    pub const fn rotate_wait(&self) -> Duration {
        Duration::from_millis(self.rotate_wait_ms)
    }
    pub const fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }
    pub const fn checkpoint_retention(&self) -> Duration {
        Duration::from_secs(self.checkpoint_retention_secs)
    }
}

/// Per-source reading settings (keys of a `[[source]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceTailSettings {
    /// `"beginning"` or `"end"`: where to start in files found at the agent's first start
    /// (no checkpoint file yet). Default `"beginning"`.
    pub read_from: ReadFrom,
    /// Longest line or multi-line entry kept, in bytes. Longer ones are cut to this size
    /// and their record gets the field `truncated = "true"`. Default 102400.
    pub max_line_bytes: usize,
    /// Milliseconds a multi-line entry (PostgreSQL) waits for a continuation line before it
    /// is shipped as complete. Default 1000.
    pub multiline_timeout_ms: u64,
}

impl Default for SourceTailSettings {
    fn default() -> Self {
        SourceTailSettings {
            read_from: ReadFrom::Beginning,
            max_line_bytes: 100 * 1024,
            multiline_timeout_ms: 1000,
        }
    }
}

impl SourceTailSettings {
    pub const fn multiline_timeout(&self) -> Duration {
        Duration::from_millis(self.multiline_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<TailConfig>(r#"{"rescan_interval":5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let s: SourceTailSettings = serde_json::from_str(r#"{"read_from":"end"}"#).unwrap();
        assert_eq!(s.read_from, ReadFrom::End);
        assert_eq!(s.max_line_bytes, 102400);
    }
}

//! The tailer's settings, with their defaults.
//!
//! [`TailConfig`] holds what applies to every source (read from `[tail]` through
//! [`TailKeys`]); [`SourceTailSettings`] what each `[[source]]` may set. Both refuse
//! unknown keys. Note that serde's `flatten` does not
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

/// Settings shared by every file source (`[tail]`), as the tailer uses them.
///
/// Read from the config through [`TailKeys`], which also takes the deprecated integer
/// keys (`rescan_interval_ms = 5000`) of earlier versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TailKeys", into = "TailKeys")]
pub struct TailConfig {
    /// Between full rescans of every watched directory.
    pub rescan_interval: Duration,
    /// Between checks of directories that cannot be watched.
    pub poll_interval: Duration,
    /// A file that has not grown for this long is closed.
    pub idle_close: Duration,
    /// At most this many log files open at once, across all sources.
    pub max_open_files: usize,
    /// How long a rotated-away or deleted file is still read after its last growth.
    pub rotate_wait: Duration,
    /// Between checkpoint writes.
    pub checkpoint_interval: Duration,
    /// How long the checkpoint of a file no longer read is kept.
    pub checkpoint_retention: Duration,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            rescan_interval: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            idle_close: Duration::from_secs(60),
            max_open_files: 512,
            rotate_wait: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

// Accessors kept for the tailer's call sites.
impl TailConfig {
    /// The field `rescan_interval`.
    pub const fn rescan_interval(&self) -> Duration {
        self.rescan_interval
    }
    /// The field `poll_interval`.
    pub const fn poll_interval(&self) -> Duration {
        self.poll_interval
    }
    /// The field `idle_close`.
    pub const fn idle_close(&self) -> Duration {
        self.idle_close
    }
    /// The field `rotate_wait`.
    pub const fn rotate_wait(&self) -> Duration {
        self.rotate_wait
    }
    /// The field `checkpoint_interval`.
    pub const fn checkpoint_interval(&self) -> Duration {
        self.checkpoint_interval
    }
    /// The field `checkpoint_retention`.
    pub const fn checkpoint_retention(&self) -> Duration {
        self.checkpoint_retention
    }
}

/// The `[tail]` section as written. Every duration is a string (`"5s"`); each also has
/// its deprecated integer key of earlier versions (`_ms` or `_secs`), still read (the
/// config validation warns with its file and line). Setting both forms is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailKeys {
    /// Between full rescans of every watched directory (`"5s"`). inotify wakes the agent
    /// as soon as files change; the rescan is the safety net for missed or overflowed
    /// events and network filesystems.
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rescan_interval: Option<Duration>,
    /// Between checks of directories that cannot be watched (missing yet, or the watch
    /// limit reached); also how often files there are checked for growth (`"1s"`).
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll_interval: Option<Duration>,
    /// A file that has not grown for this long is closed; it is reopened when it changes.
    /// Bounds open descriptors with thousands of files (`"60s"`).
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_close: Option<Duration>,
    /// At most this many log files open at once, across all sources. Default 512.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<usize>,
    /// How long a rotated-away or deleted file is still read after its last growth, for
    /// writers that have not reopened their log yet (`"5s"`).
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rotate_wait: Option<Duration>,
    /// Between checkpoint writes, made only when an offset moved (`"1s"`).
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub checkpoint_interval: Option<Duration>,
    /// How long the checkpoint of a file that is no longer read (rotated away, deleted)
    /// is kept (`"7d"`).
    #[serde(
        with = "crate::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub checkpoint_retention: Option<Duration>,
    /// Deprecated: `rescan_interval` in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescan_interval_ms: Option<u64>,
    /// Deprecated: `poll_interval` in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// Deprecated: `idle_close` in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_close_secs: Option<u64>,
    /// Deprecated: `rotate_wait` in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate_wait_ms: Option<u64>,
    /// Deprecated: `checkpoint_interval` in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_interval_ms: Option<u64>,
    /// Deprecated: `checkpoint_retention` in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_retention_secs: Option<u64>,
}

/// Each deprecated integer key of `[tail]`, the key replacing it, and its unit.
pub const DEPRECATED_TAIL_KEYS: [(&str, &str, TimeUnit); 6] = [
    ("rescan_interval_ms", "rescan_interval", TimeUnit::Millis),
    ("poll_interval_ms", "poll_interval", TimeUnit::Millis),
    ("idle_close_secs", "idle_close", TimeUnit::Secs),
    ("rotate_wait_ms", "rotate_wait", TimeUnit::Millis),
    (
        "checkpoint_interval_ms",
        "checkpoint_interval",
        TimeUnit::Millis,
    ),
    (
        "checkpoint_retention_secs",
        "checkpoint_retention",
        TimeUnit::Secs,
    ),
];

/// The unit of a deprecated integer duration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// `_ms` keys.
    Millis,
    /// `_secs` keys.
    Secs,
}

impl TimeUnit {
    /// The duration `n` of this unit stands for.
    pub const fn duration(self, n: u64) -> Duration {
        match self {
            TimeUnit::Millis => Duration::from_millis(n),
            TimeUnit::Secs => Duration::from_secs(n),
        }
    }

    /// `n` written as a duration string (`"5000ms"`, `"60s"`).
    pub fn string(self, n: u64) -> String {
        match self {
            TimeUnit::Millis => format!("{n}ms"),
            TimeUnit::Secs => format!("{n}s"),
        }
    }
}

fn pick(
    key: &str,
    new: Option<Duration>,
    old: Option<u64>,
    unit: TimeUnit,
    default: Duration,
) -> Result<Duration, String> {
    match (new, old) {
        (Some(_), Some(_)) => Err(format!(
            "{key} is set twice: remove the deprecated integer form"
        )),
        (Some(d), None) => Ok(d),
        (None, Some(n)) => Ok(unit.duration(n)),
        (None, None) => Ok(default),
    }
}

impl TryFrom<TailKeys> for TailConfig {
    type Error = String;

    fn try_from(k: TailKeys) -> Result<Self, String> {
        use TimeUnit::{Millis, Secs};
        let d = TailConfig::default();
        Ok(TailConfig {
            rescan_interval: pick(
                "rescan_interval",
                k.rescan_interval,
                k.rescan_interval_ms,
                Millis,
                d.rescan_interval,
            )?,
            poll_interval: pick(
                "poll_interval",
                k.poll_interval,
                k.poll_interval_ms,
                Millis,
                d.poll_interval,
            )?,
            idle_close: pick(
                "idle_close",
                k.idle_close,
                k.idle_close_secs,
                Secs,
                d.idle_close,
            )?,
            max_open_files: k.max_open_files.unwrap_or(d.max_open_files),
            rotate_wait: pick(
                "rotate_wait",
                k.rotate_wait,
                k.rotate_wait_ms,
                Millis,
                d.rotate_wait,
            )?,
            checkpoint_interval: pick(
                "checkpoint_interval",
                k.checkpoint_interval,
                k.checkpoint_interval_ms,
                Millis,
                d.checkpoint_interval,
            )?,
            checkpoint_retention: pick(
                "checkpoint_retention",
                k.checkpoint_retention,
                k.checkpoint_retention_secs,
                Secs,
                d.checkpoint_retention,
            )?,
        })
    }
}

impl From<TailConfig> for TailKeys {
    fn from(c: TailConfig) -> Self {
        TailKeys {
            rescan_interval: Some(c.rescan_interval),
            poll_interval: Some(c.poll_interval),
            idle_close: Some(c.idle_close),
            max_open_files: Some(c.max_open_files),
            rotate_wait: Some(c.rotate_wait),
            checkpoint_interval: Some(c.checkpoint_interval),
            checkpoint_retention: Some(c.checkpoint_retention),
            ..TailKeys::default()
        }
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
    /// How long a multi-line entry waits for a continuation line before it is shipped as
    /// complete. Default 1 s.
    #[serde(with = "crate::duration")]
    pub multiline_timeout: Duration,
}

impl Default for SourceTailSettings {
    fn default() -> Self {
        SourceTailSettings {
            read_from: ReadFrom::Beginning,
            max_line_bytes: 100 * 1024,
            multiline_timeout: Duration::from_secs(1),
        }
    }
}

impl SourceTailSettings {
    /// The field `multiline_timeout`.
    pub const fn multiline_timeout(&self) -> Duration {
        self.multiline_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<TailConfig>(r#"{"rescan":"5s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let s: SourceTailSettings = serde_json::from_str(r#"{"read_from":"end"}"#).unwrap();
        assert_eq!(s.read_from, ReadFrom::End);
        assert_eq!(s.max_line_bytes, 102400);
    }

    #[test]
    fn durations_are_strings_and_old_integer_keys_still_read() {
        let c: TailConfig =
            serde_json::from_str(r#"{"rescan_interval":"2s","idle_close_secs":30}"#).unwrap();
        assert_eq!(c.rescan_interval, Duration::from_secs(2));
        assert_eq!(c.idle_close, Duration::from_secs(30));
        assert_eq!(c.poll_interval, TailConfig::default().poll_interval);
        let err = serde_json::from_str::<TailConfig>(r#"{"rotate_wait":"1s","rotate_wait_ms":5}"#)
            .unwrap_err();
        assert!(
            err.to_string().contains("rotate_wait is set twice"),
            "{err}"
        );
        let err = serde_json::from_str::<TailConfig>(r#"{"rescan_interval":5000}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}

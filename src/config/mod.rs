//! The agent's configuration: `/etc/logship/logship.toml` plus `conf.d/*.toml` drop-ins.
//!
//! Raw serde types (unknown keys rejected, every key documented here) are read per file so
//! errors point into the right file, merged, then validated into [`Config`]. This is the
//! one validation: `run`, `check-config` and the Layer's `agent_config` all go through
//! [`Config::load`], so they accept exactly the same configs.

pub mod agent;
pub mod buffer;
pub mod load;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logship_parsers::{Format, FormatSpec};
use serde::{Deserialize, Serialize};

/// The section types name `super::duration`; the parser itself is [`crate::duration`].
pub use crate::duration;
pub use crate::pipeline::batch::BatchConfig;
pub use agent::{AgentConfig, MetricsConfig};
pub use buffer::BufferConfig;
pub use load::{ConfigError, ConfigFile, ConfigWarning};
pub use source::{SourceConfig, SourceKind};

use crate::limits;
use crate::pipeline::Route;
use crate::sink::CassandraConfig;
use crate::sink::output::SinkConfig;
use crate::tail::config::DEPRECATED_TAIL_KEYS;
use crate::tail::discover::{PatternError, Patterns};
use crate::tail::{ParserSpec, SourceSpec, SourceTailSettings, TailConfig};

/// The whole file, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[agent]`.
    #[serde(default)]
    pub agent: AgentConfig,
    /// `[cassandra]`.
    #[serde(default)]
    pub cassandra: CassandraConfig,
    /// `[buffer]`.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// `[batch]`.
    #[serde(default)]
    pub batch: BatchConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[tail]`, read through [`crate::tail::config::TailKeys`].
    #[serde(default)]
    pub tail: TailConfig,
    /// `[serve]`: the read-only HTTP service (`logship serve`).
    #[serde(default)]
    pub serve: crate::serve::ServeConfig,
    /// `[sink]`: where flush units go.
    #[serde(default)]
    pub sink: SinkConfig,
    /// The `[[source]]`s.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// Where a `[[source]]` was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOrigin {
    /// The file holding it.
    pub file: PathBuf,
    /// The line of its `[[source]]` header.
    pub line: usize,
    /// The line of each key written in its block, so an error points at the value.
    pub keys: Vec<(String, usize)>,
}

impl SourceOrigin {
    /// The line of `key` in this source's block, or of its header.
    pub fn line_of(&self, key: &str) -> usize {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.line, |(_, line)| *line)
    }
}

/// The keys written on the lines after the `[[...]]` header at `header` (1-based), up to
/// the next table header.
fn block_keys(text: &str, header: usize) -> Vec<(String, usize)> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate().skip(header) {
        let t = line.trim_start();
        if t.starts_with('[') {
            break;
        }
        if let Some((key, _)) = t.split_once('=') {
            let key = key.trim().trim_matches(['"', '\'']);
            if !key.is_empty() && !key.starts_with('#') {
                keys.push((key.to_owned(), i + 1));
            }
        }
    }
    keys
}

/// A validated configuration: what the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[agent]`.
    pub agent: AgentConfig,
    /// `[cassandra]`, with its files checked readable.
    pub cassandra: CassandraConfig,
    /// `[buffer]`, holding at least one flush unit.
    pub buffer: BufferConfig,
    /// `[batch]`.
    pub batch: BatchConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[tail]`.
    pub tail: TailConfig,
    /// `[serve]`.
    pub serve: crate::serve::ServeConfig,
    /// `[sink]`.
    pub sink: SinkConfig,
    /// The `[[source]]`s, their globs compiled and their limits checked.
    pub sources: Vec<SourceSpec>,
    /// The `[[source]] type = "syslog"` listeners.
    pub syslog: Vec<crate::source::syslog::SyslogSpec>,
    /// The `[[source]] type = "http"`s (not reloaded: they keep running as started).
    pub http_sources: Vec<crate::source::http::HttpSourceSpec>,
    /// The files it was read from, main file first.
    pub files: Vec<PathBuf>,
    /// `[agent] host`, or the kernel's host name.
    pub host: String,
    /// Accepted but deprecated settings, each naming its file, line and key: show them
    /// to the operator (check-config prints them, the daemon logs them at start and reload).
    pub warnings: Vec<ConfigWarning>,
    /// The sections as read; only this module reads them (the per-source request id
    /// fields, a reload's sources).
    raw: RawConfig,
}

impl Config {
    /// Which fields fill `request_id`/`trace_id` for each source, by source name.
    pub fn request_fields(&self) -> std::collections::HashMap<String, crate::sink::RequestFields> {
        self.raw
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.request_fields()))
            .collect()
    }

    /// Takes the sources of `new` (a reload), keeping every other section as it runs.
    pub fn adopt_sources(&mut self, new: Config) {
        self.sources = new.sources;
        self.raw.sources = new.raw.sources;
    }

    /// Reads `path` and the drop-ins in `conf.d/` beside it, and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let dir = path.parent().unwrap_or(Path::new(".")).join("conf.d");
        let mut files = vec![ConfigFile::read(path)?];
        for dropin in load::dropins(&dir)? {
            files.push(ConfigFile::read(&dropin)?);
        }
        Config::from_files(&files)
    }

    /// Validates already-read files (the first is the main file).
    pub fn from_files(files: &[ConfigFile]) -> Result<Config, ConfigError> {
        let mut merged = toml::Table::new();
        let mut origins = Vec::new();
        for file in files {
            // Each file alone first, so a bad key or type is reported in its own file.
            let alone: RawConfig = file.deserialize()?;
            let lines = file.array_table_lines("source");
            for (i, _) in alone.sources.iter().enumerate() {
                let line = lines.get(i).copied().unwrap_or(1);
                origins.push(SourceOrigin {
                    file: file.path.clone(),
                    line,
                    keys: block_keys(&file.text, line),
                });
            }
            let table = file.table()?;
            supersede_deprecated(&mut merged, &table);
            load::merge(&mut merged, table, &["source"]);
        }
        let raw: RawConfig =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    ConfigError::at(&files[0].path, 1, "", e.message().to_owned())
                })?;
        let host = raw.agent.host.clone().unwrap_or_else(crate::host::hostname);
        let ValidSources {
            files: sources,
            syslog,
            http: http_sources,
        } = validate_sources(&raw.sources, &origins, &host)?;
        validate_agent(&raw, files)?;
        validate_tail(&raw.tail, files)?;
        Ok(Config {
            agent: raw.agent.clone(),
            cassandra: raw.cassandra.clone(),
            buffer: raw.buffer.clone(),
            batch: raw.batch,
            metrics: raw.metrics.clone(),
            tail: raw.tail.clone(),
            serve: raw.serve.clone(),
            sink: raw.sink.clone(),
            sources,
            syslog,
            http_sources,
            files: files.iter().map(|f| f.path.clone()).collect(),
            host,
            warnings: deprecations(files),
            raw,
        })
    }
}

fn validate_agent(raw: &RawConfig, files: &[ConfigFile]) -> Result<(), ConfigError> {
    // Point at the file that set the value last: with drop-ins, that is not always the main file.
    let err = |section: &str, key: &str, msg: String| {
        let (path, line) = locate(files, section, key);
        ConfigError::at(&path, line, &format!("{section}.{key}"), msg)
    };
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if !LEVELS.contains(&raw.agent.log_level.to_ascii_lowercase().as_str()) {
        return Err(err(
            "agent",
            "log_level",
            format!(
                "{:?} is not one of {}",
                raw.agent.log_level,
                LEVELS.join(", ")
            ),
        ));
    }
    if raw.batch.max_records == 0 {
        return Err(err("batch", "max_records", "must be at least 1".into()));
    }
    if raw.serve.max_limit == 0 {
        return Err(err("serve", "max_limit", "must be at least 1".into()));
    }
    if let Err((key, msg)) = raw.buffer.check(raw.batch.max_records) {
        return Err(err("buffer", key, msg));
    }
    if let Err(e) = raw.cassandra.check() {
        // `tls.ca_file` is the key `ca_file` of the table `[cassandra.tls]`.
        let (section, key) = match e.key.rsplit_once('.') {
            Some((table, key)) => (format!("cassandra.{table}"), key),
            None => ("cassandra".to_owned(), e.key),
        };
        return Err(err(&section, key, e.message));
    }
    Ok(())
}

fn validate_tail(tail: &TailConfig, files: &[ConfigFile]) -> Result<(), ConfigError> {
    let err = |key: &str, msg: &str| {
        // The key may be written in its deprecated integer form.
        let old = DEPRECATED_TAIL_KEYS
            .iter()
            .find(|(_, new, _)| *new == key)
            .map(|(old, _, _)| *old);
        let (mut path, mut line) = locate(files, "tail", key);
        if let Some(old) = old {
            if line == 1 {
                (path, line) = locate(files, "tail", old);
            }
        }
        ConfigError::at(&path, line, &format!("tail.{key}"), msg)
    };
    let nonzero = [
        ("rescan_interval", tail.rescan_interval),
        ("poll_interval", tail.poll_interval),
        ("checkpoint_interval", tail.checkpoint_interval),
    ];
    for (key, value) in nonzero {
        if value.is_zero() {
            return Err(err(key, "must be more than 0"));
        }
    }
    if tail.max_open_files == 0 {
        return Err(err("max_open_files", "must be at least 1"));
    }
    Ok(())
}

/// A drop-in that sets a `[tail]` duration in one form replaces the other form from
/// earlier files, so an old `rescan_interval_ms` in the main file and a new
/// `rescan_interval` in a drop-in are not "set twice".
fn supersede_deprecated(merged: &mut toml::Table, overlay: &toml::Table) {
    let Some(new) = overlay.get("tail").and_then(|t| t.as_table()) else {
        return;
    };
    let Some(base) = merged.get_mut("tail").and_then(|t| t.as_table_mut()) else {
        return;
    };
    for (old_key, new_key, _) in DEPRECATED_TAIL_KEYS {
        if new.contains_key(new_key) {
            base.remove(old_key);
        }
        if new.contains_key(old_key) {
            base.remove(new_key);
        }
    }
}

/// A warning for every deprecated key set in any of the files, where it is set.
fn deprecations(files: &[ConfigFile]) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for file in files {
        let Ok(table) = file.table() else { continue };
        let Some(tail) = table.get("tail").and_then(|t| t.as_table()) else {
            continue;
        };
        for (old, new, unit) in DEPRECATED_TAIL_KEYS {
            let Some(n) = tail.get(old).and_then(|v| v.as_integer()) else {
                continue;
            };
            let n = u64::try_from(n).unwrap_or(0);
            warnings.push(ConfigWarning {
                path: file.path.clone(),
                line: key_line(file, "tail", old).unwrap_or(1),
                key: format!("tail.{old}"),
                message: format!(
                    "deprecated integer key: write {new} = \"{}\" instead",
                    unit.string(n)
                ),
            });
        }
    }
    warnings
}

/// The last file that sets `[section] key` (`section` may be dotted: `cassandra.tls`), and
/// the line where it does; the main file's first line when none sets it (a default is at
/// fault).
fn locate(files: &[ConfigFile], section: &str, key: &str) -> (PathBuf, usize) {
    for file in files.iter().rev() {
        let sets = file
            .table()
            .ok()
            .and_then(|t| {
                let mut table = &t;
                for part in section.split('.') {
                    table = table.get(part)?.as_table()?;
                }
                Some(table.contains_key(key))
            })
            .unwrap_or(false);
        if sets {
            return (file.path.clone(), key_line(file, section, key).unwrap_or(1));
        }
    }
    let main = files.first().map(|f| f.path.clone()).unwrap_or_default();
    (main, 1)
}

/// The line of `key = ...` under the `[section]` header of `file`.
fn key_line(file: &ConfigFile, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in file.text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = h
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .split('.')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(".");
        } else if current == section
            && t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// The `[[source]]`s validated, by type.
struct ValidSources {
    files: Vec<SourceSpec>,
    syslog: Vec<crate::source::syslog::SyslogSpec>,
    http: Vec<crate::source::http::HttpSourceSpec>,
}

fn validate_sources(
    sources: &[SourceConfig],
    origins: &[SourceOrigin],
    host: &str,
) -> Result<ValidSources, ConfigError> {
    let fallback = SourceOrigin {
        file: PathBuf::from("<config>"),
        line: 1,
        keys: Vec::new(),
    };
    let mut seen: HashMap<&str, &SourceOrigin> = HashMap::new();
    let mut specs = Vec::with_capacity(sources.len());
    let mut syslog = Vec::new();
    let mut http = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let origin = origins.get(i).unwrap_or(&fallback);
        let err = |key: &str, msg: String| {
            ConfigError::at(
                &origin.file,
                origin.line_of(key),
                &format!("source[{}].{key}", source.name),
                msg,
            )
        };
        if source.name.is_empty()
            || !source
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(err("name", "use letters, digits, '-', '_' and '.'".into()));
        }
        if let Some(first) = seen.insert(&source.name, origin) {
            return Err(err(
                "name",
                format!(
                    "a source of this name is already defined at {}:{}",
                    first.file.display(),
                    first.line_of("name")
                ),
            ));
        }
        if source.kind == SourceKind::Syslog {
            let spec = crate::source::syslog::SyslogSpec::validate(source, &origin.keys, host);
            syslog.push(spec.map_err(|(key, msg)| err(&key, msg))?);
            continue;
        }
        if source.kind == SourceKind::Http {
            if let Some(key) = crate::source::syslog::only_syslog_key(&origin.keys)
                .filter(|k| *k != "max_connections")
            {
                return Err(err(key, "is a key of type = \"syslog\" sources".into()));
            }
            http.push(crate::source::http::HttpSourceSpec::validate(source, &err)?);
            continue;
        }
        if let Some(key) = crate::source::syslog::only_syslog_key(&origin.keys) {
            return Err(err(key, "is a key of type = \"syslog\" sources".into()));
        }
        if let Some(key) = source.http_keys_set().first() {
            return Err(err(key, "is for type = \"http\" sources".into()));
        }
        if source.paths.is_empty() {
            return Err(err("paths", "needs at least one glob pattern".into()));
        }
        for p in &source.paths {
            if !p.starts_with('/') {
                return Err(err("paths", format!("{p:?} must be an absolute path")));
            }
        }
        if source.format.is_empty() {
            return Err(err("format", "a file source needs a format".into()));
        }
        let format: Format = source
            .format
            .parse()
            .map_err(|e: logship_parsers::SpecError| err("format", e.to_string()))?;
        let spec = FormatSpec {
            format,
            log_format: source.log_format.clone(),
            prefix: source.prefix.clone(),
            timezone: source.timezone.clone(),
        };
        if let Err(e) = spec.build() {
            let key = match e {
                logship_parsers::SpecError::BadLogFormat { .. } => "log_format",
                logship_parsers::SpecError::BadPrefix { .. } => "prefix",
                logship_parsers::SpecError::UnknownTimezone(_) => "timezone",
                _ => "format",
            };
            return Err(err(key, e.to_string()));
        }
        limits::check_bucket(source.bucket).map_err(|e| {
            err(
                "bucket",
                format!("{:?} is out of range: {e}", source.bucket),
            )
        })?;
        if let Some(ttl) = source.ttl {
            limits::check_ttl(ttl)
                .map_err(|e| err("ttl", format!("{ttl:?} is out of range: {e}")))?;
        }
        if source.max_line_bytes < 64 {
            return Err(err("max_line_bytes", "must be at least 64".into()));
        }
        let mut exclude = source.exclude.clone();
        if !exclude.iter().any(|e| e == "*.gz") {
            exclude.push("*.gz".to_owned());
        }
        // Compiled here as the tailer will, so a glob it would refuse is a config error.
        if let Err(e) = Patterns::new(&source.paths, &exclude) {
            return Err(match e {
                PatternError::Glob { pattern, source: g } => {
                    let key = if source.paths.contains(&pattern) {
                        "paths"
                    } else {
                        "exclude"
                    };
                    err(key, format!("bad glob {pattern:?}: {}", g.kind()))
                }
                other => err("paths", other.to_string()),
            });
        }
        let route = Arc::new(Route {
            source: Arc::from(source.name.as_str()),
            table: source.table,
            ttl: source.ttl,
            bucket: source.bucket,
        });
        let settings = SourceTailSettings {
            read_from: source.read_from,
            max_line_bytes: source.max_line_bytes,
            multiline_timeout: source.multiline_timeout,
        };
        let mut spec = SourceSpec::new(
            &source.name,
            source.paths.clone(),
            ParserSpec::Format(spec),
            route,
            host,
        )
        .with_settings(&settings);
        spec.exclude = exclude;
        specs.push(spec);
    }
    Ok(ValidSources {
        files: specs,
        syslog,
        http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> ConfigFile {
        ConfigFile::from_text(Path::new(path), text, |_| None).unwrap()
    }

    #[test]
    fn a_value_refused_in_a_dropin_is_reported_in_the_dropin() {
        let files = [
            file("/etc/logship/logship.toml", "[batch]\nmax_records = 1000\n"),
            file(
                "/etc/logship/conf.d/10-batch.toml",
                "# smaller units\n[batch]\nmax_records = 0\n",
            ),
        ];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "/etc/logship/conf.d/10-batch.toml:3:1: batch.max_records: must be at least 1"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_bad_source_names_its_file_line_and_key() {
        let files = [
            file("/etc/logship/logship.toml", "[agent]\nhost = \"h\"\n"),
            file(
                "/etc/logship/conf.d/20-web.toml",
                "\n[[source]]\nname = \"web\"\npaths = [\"/var/log/x.log\"]\nformat = \"nginx\"\nlog_format = \"$remote_addr ${oops\"\n",
            ),
        ];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "/etc/logship/conf.d/20-web.toml:6:1: source[web].log_format: bad log_format"
            ),
            "{err}"
        );
    }

    #[test]
    fn duplicate_source_names_point_at_both() {
        let src = "[[source]]\nname = \"a\"\npaths = [\"/x\"]\nformat = \"syslog\"\n";
        let files = [file("/main.toml", src), file("/conf.d/1.toml", src)];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with("/conf.d/1.toml:2:1: source[a].name"),
            "{err}"
        );
        assert!(err.contains("already defined at /main.toml:2"), "{err}");
    }

    #[test]
    fn dropin_sources_are_added_and_scalars_override() {
        let files = [
            file(
                "/main.toml",
                "[cassandra]\nkeyspace = \"a\"\nport = 9042\n[[source]]\nname = \"one\"\npaths = [\"/x\"]\nformat = \"syslog\"\n",
            ),
            file(
                "/conf.d/1.toml",
                "[cassandra]\nkeyspace = \"b\"\n[[source]]\nname = \"two\"\npaths = [\"/y\"]\nformat = \"nginx\"\n",
            ),
        ];
        let c = Config::from_files(&files).unwrap();
        assert_eq!(c.raw.cassandra.keyspace, "b");
        assert_eq!(c.raw.cassandra.port, 9042);
        let names: Vec<_> = c.sources.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["one", "two"]);
        assert!(
            c.sources[0].exclude.iter().any(|e| e == "*.gz"),
            "gzip'd rotations are always left out"
        );
    }

    #[test]
    fn a_tls_file_is_reported_at_its_key_in_the_dotted_table() {
        let files = [file(
            "/main.toml",
            "[cassandra]\nport = 9042\n\n[cassandra.tls]\nca_file = \"/nonexistent/ca.pem\"\n",
        )];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "/main.toml:5:1: cassandra.tls.ca_file: /nonexistent/ca.pem cannot be read"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_dropin_may_replace_an_old_tail_key_with_its_new_form() {
        let files = [
            file(
                "/main.toml",
                "[tail]\nrescan_interval_ms = 500\nidle_close_secs = 9\n",
            ),
            file("/conf.d/1.toml", "[tail]\nrescan_interval = \"2s\"\n"),
        ];
        let c = Config::from_files(&files).unwrap();
        assert_eq!(c.tail.rescan_interval, std::time::Duration::from_secs(2));
        assert_eq!(c.tail.idle_close, std::time::Duration::from_secs(9));
        let warned: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            warned,
            [
                "/main.toml:2: tail.rescan_interval_ms: deprecated integer key: write rescan_interval = \"500ms\" instead",
                "/main.toml:3: tail.idle_close_secs: deprecated integer key: write idle_close = \"9s\" instead",
            ]
        );
    }

    #[test]
    fn a_misspelt_log_level_is_refused_not_replaced_by_info() {
        let files = [file("/main.toml", "[agent]\nlog_level = \"verbose\"\n")];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with("/main.toml:2:1: agent.log_level: \"verbose\" is not one of"),
            "{err}"
        );
    }

    #[test]
    fn retry_settings_are_checked_in_their_dotted_table() {
        let files = [file(
            "/main.toml",
            "[cassandra.retry]\ninitial_backoff = \"20s\"\nmax_backoff = \"10s\"\n",
        )];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with("/main.toml:2:1: cassandra.retry.initial_backoff: 20s is longer"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_interval_is_refused_at_its_key() {
        let files = [file("/main.toml", "[tail]\n\npoll_interval = \"0s\"\n")];
        let err = Config::from_files(&files).unwrap_err().to_string();
        assert!(
            err.starts_with("/main.toml:3:1: tail.poll_interval: must be more than 0"),
            "{err}"
        );
    }
}

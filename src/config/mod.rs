//! The agent's configuration: `/etc/logship/logship.toml` plus `conf.d/*.toml` drop-ins.
//!
//! Raw serde types (unknown keys rejected, every key documented here) are read per file so
//! errors point into the right file, merged, then validated into [`Config`].

pub mod agent;
pub mod duration;
pub mod load;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use logship_parsers::{Format, FormatSpec};
use serde::{Deserialize, Serialize};

pub use agent::{AgentConfig, BatchConfig, BufferConfig, MetricsConfig};
pub use load::{ConfigError, ConfigFile};
pub use source::SourceConfig;

use crate::pipeline::Route;
use crate::sink::CassandraConfig;
use crate::tail::{ParserSpec, SourceSpec, SourceTailSettings, TailConfig};

/// The whole file, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub agent: AgentConfig,
    #[serde(default)]
    pub cassandra: CassandraConfig,
    #[serde(default)]
    pub buffer: BufferConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub tail: TailConfig,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// Where a `[[source]]` was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOrigin {
    pub file: PathBuf,
    pub line: usize,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    /// The files it was read from, main file first.
    pub files: Vec<PathBuf>,
    pub host: String,
    pub sources: Vec<SourceSpec>,
}

impl Config {
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
                origins.push(SourceOrigin {
                    file: file.path.clone(),
                    line: lines.get(i).copied().unwrap_or(1),
                });
            }
            load::merge(&mut merged, file.table()?, &["source"]);
        }
        let raw: RawConfig =
            toml::Value::Table(merged)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    ConfigError::at(&files[0].path, 1, "", e.message().to_owned())
                })?;
        let host = raw.agent.host.clone().unwrap_or_else(crate::host::hostname);
        let sources = validate_sources(&raw.sources, &origins, &host)?;
        validate_agent(&raw, &files[0].path)?;
        Ok(Config {
            raw,
            files: files.iter().map(|f| f.path.clone()).collect(),
            host,
            sources,
        })
    }
}

fn validate_agent(raw: &RawConfig, main: &Path) -> Result<(), ConfigError> {
    let line_of = |key: &str| line_of_key(main, key);
    if raw.batch.max_records == 0 {
        return Err(ConfigError::at(
            main,
            line_of("max_records"),
            "batch.max_records",
            "must be at least 1",
        ));
    }
    if raw.buffer.capacity < raw.batch.max_records {
        return Err(ConfigError::at(
            main,
            line_of("capacity"),
            "buffer.capacity",
            format!(
                "must hold at least one flush unit (batch.max_records = {})",
                raw.batch.max_records
            ),
        ));
    }
    if raw.cassandra.contact_points.is_empty() {
        return Err(ConfigError::at(
            main,
            line_of("contact_points"),
            "cassandra.contact_points",
            "needs at least one node",
        ));
    }
    if raw.cassandra.username.is_some() != raw.cassandra.password_file.is_some() {
        return Err(ConfigError::at(
            main,
            line_of("username").max(line_of("password_file")),
            "cassandra.username",
            "username and password_file go together",
        ));
    }
    if let Some(pw) = &raw.cassandra.password_file {
        if let Err(e) = std::fs::metadata(pw) {
            return Err(ConfigError::at(
                main,
                line_of("password_file"),
                "cassandra.password_file",
                format!("cannot read {}: {e}", pw.display()),
            ));
        }
    }
    Ok(())
}

/// Best effort: the first line of the main file that sets `key`, or 1.
fn line_of_key(path: &Path, key: &str) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
        })
        .map(|i| i + 1)
        .unwrap_or(1)
}

fn validate_sources(
    sources: &[SourceConfig],
    origins: &[SourceOrigin],
    host: &str,
) -> Result<Vec<SourceSpec>, ConfigError> {
    let fallback = SourceOrigin {
        file: PathBuf::from("<config>"),
        line: 1,
    };
    let mut seen: HashMap<&str, &SourceOrigin> = HashMap::new();
    let mut specs = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let origin = origins.get(i).unwrap_or(&fallback);
        let err = |key: &str, msg: String| {
            ConfigError::at(
                &origin.file,
                origin.line,
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
                    first.line
                ),
            ));
        }
        if source.paths.is_empty() {
            return Err(err("paths", "needs at least one glob pattern".into()));
        }
        for p in &source.paths {
            if !p.starts_with('/') {
                return Err(err("paths", format!("{p:?} must be an absolute path")));
            }
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
        if source.bucket.as_secs() < 60 {
            return Err(err("bucket", "must be at least one minute".into()));
        }
        if let Some(ttl) = source.ttl {
            if ttl.as_secs() == 0 || ttl.as_secs() > i32::MAX as u64 {
                return Err(err("ttl", "must be between 1 second and 68 years".into()));
            }
        }
        if source.max_line_bytes < 64 {
            return Err(err("max_line_bytes", "must be at least 64".into()));
        }
        let mut exclude = source.exclude.clone();
        if !exclude.iter().any(|e| e == "*.gz") {
            exclude.push("*.gz".to_owned());
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
            multiline_timeout_ms: source.multiline_timeout.as_millis() as u64,
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
    Ok(specs)
}

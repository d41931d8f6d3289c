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

pub use crate::pipeline::batch::BatchConfig;
pub use agent::{AgentConfig, BufferConfig, MetricsConfig};
pub use load::{ConfigError, ConfigFile};
pub use source::SourceConfig;

use crate::pipeline::Route;
use crate::sink::CassandraConfig;
use crate::sink::output::SinkConfig;
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
    #[serde(default)]
    pub sink: SinkConfig,
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
        validate_agent(&raw, files)?;
        Ok(Config {
            raw,
            files: files.iter().map(|f| f.path.clone()).collect(),
            host,
            sources,
        })
    }
}

fn validate_agent(raw: &RawConfig, files: &[ConfigFile]) -> Result<(), ConfigError> {
    // Point at the file that set the value last: with drop-ins, that is not always the main file.
    let err = |section: &str, key: &str, msg: String| {
        let (path, line) = locate(files, section, key);
        ConfigError::at(&path, line, &format!("{section}.{key}"), msg)
    };
    if raw.batch.max_records == 0 {
        return Err(err("batch", "max_records", "must be at least 1".into()));
    }
    if raw.buffer.capacity < raw.batch.max_records {
        return Err(err(
            "buffer",
            "capacity",
            format!(
                "must hold at least one flush unit (batch.max_records = {})",
                raw.batch.max_records
            ),
        ));
    }
    if raw.cassandra.contact_points.is_empty() {
        return Err(err(
            "cassandra",
            "contact_points",
            "needs at least one node".into(),
        ));
    }
    if raw.cassandra.username.is_some() != raw.cassandra.password_file.is_some() {
        let key = if raw.cassandra.username.is_some() {
            "username"
        } else {
            "password_file"
        };
        return Err(err(
            "cassandra",
            key,
            "username and password_file go together".into(),
        ));
    }
    if let Some(pw) = &raw.cassandra.password_file {
        if let Err(e) = std::fs::metadata(pw) {
            return Err(err(
                "cassandra",
                "password_file",
                format!("cannot read {}: {e}", pw.display()),
            ));
        }
    }
    Ok(())
}

/// The last file that sets `[section] key`, and the line where it does; the main file's
/// first line when none sets it (a default is at fault).
fn locate(files: &[ConfigFile], section: &str, key: &str) -> (PathBuf, usize) {
    for file in files.iter().rev() {
        let sets = file
            .table()
            .ok()
            .and_then(|t| {
                t.get(section)
                    .and_then(|s| s.as_table())
                    .map(|s| s.contains_key(key))
            })
            .unwrap_or(false);
        if !sets {
            continue;
        }
        let mut current = String::new();
        for (i, line) in file.text.lines().enumerate() {
            let t = line.trim();
            if let Some(h) = t.strip_prefix('[') {
                current = h
                    .trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned();
            } else if current == section
                && t.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            {
                return (file.path.clone(), i + 1);
            }
        }
        return (file.path.clone(), 1);
    }
    let main = files.first().map(|f| f.path.clone()).unwrap_or_default();
    (main, 1)
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
                "/etc/logship/conf.d/20-web.toml:2:1: source[web].log_format: bad log_format"
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
            err.starts_with("/conf.d/1.toml:1:1: source[a].name"),
            "{err}"
        );
        assert!(err.contains("already defined at /main.toml:1"), "{err}");
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
}

//! Which format a source speaks, and building its parser from the user's settings.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;

use crate::Parser;

/// The formats logship parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// nginx access log, any `log_format` (default `combined`).
    Nginx,
    /// nginx error log.
    NginxError,
    /// Syslog files: RFC 3164 (with or without `<PRI>`), RFC 3339 high-precision, RFC 5424.
    Syslog,
    /// PostgreSQL stderr log, any `log_line_prefix` (default `%m [%p] `).
    Postgres,
    /// PostgreSQL `csvlog`.
    PostgresCsv,
    /// PostgreSQL `jsonlog` (15+).
    PostgresJson,
}

impl Format {
    /// Every format, in the order the CLI and the docs list them.
    pub const ALL: [Format; 6] = [
        Format::Nginx,
        Format::NginxError,
        Format::Syslog,
        Format::Postgres,
        Format::PostgresCsv,
        Format::PostgresJson,
    ];

    /// The format's name in configs and on the command line (`nginx-error`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Format::Nginx => "nginx",
            Format::NginxError => "nginx-error",
            Format::Syslog => "syslog",
            Format::Postgres => "postgres",
            Format::PostgresCsv => "postgres-csv",
            Format::PostgresJson => "postgres-json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| SpecError::UnknownFormat(s.to_owned()))
    }
}

/// A bad format setting. Messages name the bad part so a user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "unknown format {0:?} (expected one of nginx, nginx-error, syslog, postgres, postgres-csv, postgres-json)"
    )]
    /// A format name logship does not know.
    UnknownFormat(String),
    /// An nginx `log_format` that does not compile.
    #[error("bad log_format at byte {at} ({fragment:?}): {reason}")]
    BadLogFormat {
        /// Byte offset of the problem in the string.
        at: usize,
        /// The text around it.
        fragment: String,
        /// What is wrong.
        reason: String,
    },
    /// A PostgreSQL `log_line_prefix` that does not compile.
    #[error("bad log_line_prefix at byte {at} ({fragment:?}): {reason}")]
    BadPrefix {
        /// Byte offset of the problem in the string.
        at: usize,
        /// The text around it.
        fragment: String,
        /// What is wrong.
        reason: String,
    },
    /// A `timezone` that is neither `UTC` nor an IANA zone name on this host.
    #[error("unknown time zone {0:?}")]
    UnknownTimezone(String),
    /// An option given for a format it does not apply to.
    #[error("{option} does not apply to format {format}")]
    NotApplicable {
        /// The option's name.
        option: &'static str,
        /// The format it was given for.
        format: Format,
    },
}

/// Everything needed to build a parser: the format and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatSpec {
    /// The log format.
    pub format: Format,
    /// nginx `log_format` string (nginx only); default `combined`.
    pub log_format: Option<String>,
    /// PostgreSQL `log_line_prefix` (postgres only); default `%m [%p] `.
    pub prefix: Option<String>,
    /// Zone for formats whose timestamps carry none (nginx error, RFC 3164 syslog); an IANA
    /// name such as `Europe/Paris`, or `UTC`. Default: the host's local zone.
    pub timezone: Option<String>,
}

impl FormatSpec {
    /// A spec with every option at its default.
    pub fn new(format: Format) -> Self {
        FormatSpec {
            format,
            log_format: None,
            prefix: None,
            timezone: None,
        }
    }

    /// The zone named by `timezone`, or the host's.
    pub fn time_zone(&self) -> Result<TimeZone, SpecError> {
        match &self.timezone {
            None => Ok(TimeZone::system()),
            Some(name) => TimeZone::get(name).map_err(|_| SpecError::UnknownTimezone(name.clone())),
        }
    }

    /// Compiles the parser. Fails on a bad `log_format`, prefix or zone, naming the bad part.
    pub fn build(&self) -> Result<Box<dyn Parser>, SpecError> {
        if self.log_format.is_some() && self.format != Format::Nginx {
            return Err(SpecError::NotApplicable {
                option: "log_format",
                format: self.format,
            });
        }
        if self.prefix.is_some() && self.format != Format::Postgres {
            return Err(SpecError::NotApplicable {
                option: "prefix",
                format: self.format,
            });
        }
        let tz = self.time_zone()?;
        Ok(match self.format {
            Format::Nginx => Box::new(crate::nginx::AccessParser::new(
                self.log_format.as_deref().unwrap_or(crate::nginx::COMBINED),
            )?),
            Format::NginxError => Box::new(crate::nginx_error::ErrorParser::new(tz)),
            Format::Syslog => Box::new(crate::syslog::SyslogParser::new(tz)),
            Format::Postgres => Box::new(crate::postgres::StderrParser::new(
                self.prefix
                    .as_deref()
                    .unwrap_or(crate::postgres::DEFAULT_PREFIX),
            )?),
            Format::PostgresCsv => Box::new(crate::postgres::CsvParser::new()),
            Format::PostgresJson => Box::new(crate::postgres::JsonParser::new()),
        })
    }
}

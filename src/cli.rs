//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "logship",
    version,
    about = "Ships log files and application events to Apache Cassandra"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the agent: tail the configured sources and ship their records to Cassandra.
    Run(ConfigArg),
    /// Validate the configuration and print what the agent would watch; exit 3 if invalid.
    CheckConfig(ConfigArg),
    /// Parse a log file (or stdin) and print one JSON record per entry.
    Parse(ParseArgs),
    /// Print or apply the Cassandra schema (keyspace, tables, indexes).
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// Serve the logs read-only over HTTP: a JSON API and a log explorer page.
    Serve(ServeArgs),
    /// Read logs back from Cassandra: filter, follow, count (docs/query.md).
    Query(QueryArgs),
}

/// `logship query`: journalctl's habits over the fleet's logs in Cassandra.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// Only this source or service (repeatable).
    #[arg(long = "source", short = 'u', value_name = "S")]
    pub sources: Vec<String>,
    /// Only this host (repeatable).
    #[arg(long = "host", short = 'H', value_name = "H")]
    pub hosts: Vec<String>,
    /// Only this level or more severe: debug, info, notice, warning, err, crit, alert, emerg, or 0-7.
    #[arg(long = "priority", short = 'p', value_name = "LEVEL")]
    pub priority: Option<String>,
    /// Rows at or after this time: `1h ago`, `today`, `yesterday`, `2025-06-01 13:00`, RFC 3339.
    #[arg(long, short = 'S', value_name = "T")]
    pub since: Option<String>,
    /// Rows before this time (same forms as --since).
    #[arg(long, short = 'U', value_name = "T")]
    pub until: Option<String>,
    /// Print the newest N rows (default 100 without --since; all rows in the range with it).
    #[arg(long, short = 'n', value_name = "N")]
    pub lines: Option<usize>,
    /// Keep printing new rows as they are written, until interrupted.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only rows whose message matches this regular expression.
    #[arg(long = "grep", short = 'g', value_name = "REGEX")]
    pub grep: Option<String>,
    /// Every row of this request id, across sources (SAI).
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Every row of this trace id (SAI).
    #[arg(long, value_name = "ID")]
    pub trace_id: Option<String>,
    /// Only rows whose field KEY equals VALUE (repeatable).
    #[arg(long = "field", value_name = "K=V")]
    pub fields: Vec<String>,
    /// short (default), short-iso, json (one object per line), cat (message only).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputArg::Short)]
    pub output: OutputArg,
    /// Newest first.
    #[arg(long, short = 'r')]
    pub reverse: bool,
    /// infrastructure, application or all.
    #[arg(long, default_value = "all", value_name = "TABLE")]
    pub table: String,
    /// Print times in UTC instead of the local zone.
    #[arg(long)]
    pub utc: bool,
    /// List the streams (table, source, host) seen in the range (default: the last 24 h).
    #[arg(long, conflicts_with_all = ["follow", "count"])]
    pub list_sources: bool,
    /// Count rows per source per level per interval (default range: the last 24 h).
    #[arg(long, conflicts_with = "follow")]
    pub count: bool,
    /// What --count groups by besides source and interval (only `level`).
    #[arg(long, value_enum, default_value_t = CountBy::Level, requires = "count")]
    pub by: CountBy,
    /// The --count interval (`10m`, `1h`, `1d`).
    #[arg(long, default_value = "1h", requires = "count", value_name = "SPAN")]
    pub interval: String,
    /// Print nothing on stderr about what was queried.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// The agent's config file; its `[cassandra]` section names the cluster and keyspace.
    /// Without one, /etc/logship/logship.toml if it exists, else 127.0.0.1:9042, logship.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputArg {
    Short,
    ShortIso,
    Json,
    Cat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CountBy {
    Level,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArg {
    /// The main config file; drop-ins are read from `conf.d/*.toml` beside it.
    #[arg(long, short, default_value = "/etc/logship/logship.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file: `[cassandra]` names the cluster, `[serve]` the address and token.
    /// Without it, the defaults (127.0.0.1:9042, keyspace logship) are used.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen here instead of `[serve] listen` (default 127.0.0.1:9880).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaAction {
    /// Print the CQL that `apply` runs.
    Print(OptionalConfigArg),
    /// Create the keyspace, tables and indexes that are missing. Never drops or alters.
    Apply(OptionalConfigArg),
}

#[derive(Debug, Args)]
pub(crate) struct OptionalConfigArg {
    /// The config file whose `[cassandra]` section names the cluster and keyspace.
    /// Without it, the defaults (127.0.0.1:9042, keyspace logship) are used.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Nginx,
    NginxError,
    Syslog,
    Postgres,
    PostgresCsv,
    PostgresJson,
}

impl From<FormatArg> for logship::parsers::Format {
    fn from(f: FormatArg) -> Self {
        use logship::parsers::Format;
        match f {
            FormatArg::Nginx => Format::Nginx,
            FormatArg::NginxError => Format::NginxError,
            FormatArg::Syslog => Format::Syslog,
            FormatArg::Postgres => Format::Postgres,
            FormatArg::PostgresCsv => Format::PostgresCsv,
            FormatArg::PostgresJson => Format::PostgresJson,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ParseArgs {
    /// The log format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// nginx `log_format` string (format nginx; default: combined).
    #[arg(long)]
    pub log_format: Option<String>,
    /// PostgreSQL `log_line_prefix` (format postgres; default: '%m [%p] ').
    #[arg(long)]
    pub prefix: Option<String>,
    /// Time zone for timestamps that carry none (nginx-error, RFC 3164 syslog). Default: the host's.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Print only a summary: records, parse errors, lines per second.
    #[arg(long)]
    pub count: bool,
    /// Host name put in each record. Default: this host's name.
    #[arg(long)]
    pub host: Option<String>,
    /// The file to read; stdin when absent or `-`.
    pub file: Option<PathBuf>,
}

//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "logship",
    version,
    about = "Ships log files and application events to Apache Cassandra"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The main config file; drop-ins are read from `conf.d/*.toml` beside it.
    #[arg(long, short, default_value = "/etc/logship/logship.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The config file: `[cassandra]` names the cluster, `[serve]` the address and token.
    /// Without it, the defaults (127.0.0.1:9042, keyspace logship) are used.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen here instead of `[serve] listen` (default 127.0.0.1:9880).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum SchemaAction {
    /// Print the CQL that `apply` runs.
    Print(OptionalConfigArg),
    /// Create the keyspace, tables and indexes that are missing. Never drops or alters.
    Apply(OptionalConfigArg),
}

#[derive(Debug, Args)]
pub struct OptionalConfigArg {
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
pub struct ParseArgs {
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

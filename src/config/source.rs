//! `[[source]]`: one group of log files, how to parse them and where their records go.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::pipeline::Table;
use crate::tail::ReadFrom;

/// What a `[[source]]` reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SourceKind {
    /// Log files followed with inotify (`paths`, `format`).
    #[default]
    File,
    /// `POST /events` on `listen` (see docs/sources.md); rows go to `application_logs`.
    Http,
    /// Syslog messages over the network (`udp`, `tcp`, `unix`): docs/syslog-network.md.
    Syslog,
}

/// One source. Its name is the partition's first key part in Cassandra (file and syslog
/// sources) and the `source` label of metrics. Keys marked "HTTP:" or "syslog:" belong to
/// that type only; setting one on another type is a config error naming it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name (`nginx`, `syslog`, ...): the `source` column in Cassandra and the
    /// `source` label of metrics. Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// `"file"` (default), `"http"` or `"syslog"`.
    #[serde(default, rename = "type")]
    pub kind: SourceKind,
    /// Absolute glob patterns of the files to follow (`/var/log/nginx/*.log`).
    /// `*` stays within a directory, `**` crosses directories. Required for file sources.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Globs to leave out. A pattern without `/` matches the file name (`*.gz`). Rotated,
    /// compressed files should be excluded; `*.gz` is always excluded.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `nginx`, `nginx-error`, `syslog`, `postgres`, `postgres-csv` or `postgres-json`.
    /// Required for file sources.
    #[serde(default)]
    pub format: String,
    /// nginx `log_format` string (format `nginx`); default `combined`.
    #[serde(default)]
    pub log_format: Option<String>,
    /// PostgreSQL `log_line_prefix` (format `postgres`); default `%m [%p] `.
    #[serde(default)]
    pub prefix: Option<String>,
    /// IANA zone (`Europe/Paris`, `UTC`) for timestamps that carry none (nginx error log,
    /// RFC 3164 syslog). Default: the host's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Table the records go to. Default `infrastructure_logs`.
    #[serde(default = "default_table")]
    pub table: Table,
    /// How long rows live (`"30d"`), written with `USING TTL`. Default: the table's
    /// `default_time_to_live` (90 days). Keep TTLs within a table close: see the schema
    /// notes on TimeWindowCompactionStrategy.
    #[serde(default, with = "crate::duration::option")]
    pub ttl: Option<Duration>,
    /// Width of a partition's time bucket (`"1h"`). Size it so one partition holds well
    /// under 100 MB: lines/s × bucket seconds × bytes per row. Default 1 hour; a busy
    /// nginx (thousands of lines/s) wants `"5m"`–`"15m"`.
    #[serde(default = "default_bucket", with = "crate::duration")]
    pub bucket: Duration,
    /// `"beginning"` or `"end"`: where to start in files found at the agent's first start.
    /// Files that appear later are always read from their beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Longest line or multi-line entry kept, in bytes; longer ones are cut and their
    /// record gets the field `truncated = "true"`. Default 102400.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How long a multi-line entry (PostgreSQL, syslog continuation lines) waits for its
    /// next line before it is shipped as complete (`"1s"`).
    #[serde(default = "default_multiline_timeout", with = "crate::duration")]
    pub multiline_timeout: Duration,
    /// Parsed field whose value fills the row's `request_id` column, so
    /// `logship query --request-id` finds the line. Default: `request_id`, else
    /// `http_x_request_id` (nginx `$request_id` / `$http_x_request_id` in the `log_format`).
    #[serde(default)]
    pub request_id_field: Option<String>,
    /// Parsed field whose value fills the row's `trace_id` column. Default: `trace_id`,
    /// else `http_x_trace_id`.
    #[serde(default)]
    pub trace_id_field: Option<String>,
    /// syslog: UDP address to listen on (`"127.0.0.1:5514"`). At most once.
    #[serde(default)]
    pub udp: Option<String>,
    /// syslog: TCP address to listen on; RFC 6587 octet counting or newline framing.
    #[serde(default)]
    pub tcp: Option<String>,
    /// syslog: path of a Unix datagram socket to create (`/run/logship/syslog.sock`).
    #[serde(default)]
    pub unix: Option<PathBuf>,
    /// syslog: longest message kept, in bytes; a longer one is cut and its record gets
    /// `truncated = "true"`. Default 65536.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    /// HTTP: address and port `POST /events` listens on. Default `127.0.0.1:9881`.
    #[serde(default)]
    pub listen: Option<String>,
    /// HTTP: file holding the bearer token clients must send (`Authorization: Bearer
    /// ...`); read at start, must not be readable by group or others. Default: no token.
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
    /// HTTP: PEM certificate chain; with `tls_key`, the source speaks HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// HTTP: PEM private key for `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
    /// HTTP: largest request body, in bytes; larger ones are answered 413. Default 1048576.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// HTTP and syslog: most connections open at once. HTTP: further ones are closed at
    /// accept, default 1024. Syslog (TCP): further ones wait to be accepted, default 256.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// HTTP: a request's headers must arrive within this (`"10s"`), else the connection is
    /// closed. Default 10 s.
    #[serde(default, with = "crate::duration::option")]
    pub header_timeout: Option<Duration>,
    /// HTTP: a request's body must arrive within this once its headers have, else the
    /// request is answered 408 and the connection closed. Default 30 s.
    #[serde(default, with = "crate::duration::option")]
    pub body_timeout: Option<Duration>,
    /// HTTP: `"accepted"` (202 once queued; a crash loses what is queued) or `"written"`
    /// (200 once Cassandra acknowledged). Default `"accepted"`.
    #[serde(default)]
    pub ack: Option<String>,
    /// HTTP: with `ack = "written"`, the longest a request waits for Cassandra before it is
    /// answered 504 (its events stay queued and are written later). Default 10 s.
    #[serde(default, with = "crate::duration::option")]
    pub write_timeout: Option<Duration>,
    /// HTTP: the longest an event waits in the queue for its flush unit to fill (at most
    /// `[batch] max_records`) before the unit is written: with `ack = "written"`, the floor of
    /// a request's latency. Default 50 ms.
    #[serde(default, with = "crate::duration::option")]
    pub linger: Option<Duration>,
    /// HTTP: events the source's own queue holds; when full, requests are answered 429.
    /// Default 10000.
    #[serde(default)]
    pub queue_capacity: Option<usize>,
}

impl SourceConfig {
    /// The keys only `type = "http"` takes that this source sets.
    pub fn http_keys_set(&self) -> Vec<&'static str> {
        let set = [
            ("listen", self.listen.is_some()),
            ("token_file", self.token_file.is_some()),
            ("tls_cert", self.tls_cert.is_some()),
            ("tls_key", self.tls_key.is_some()),
            ("max_body_bytes", self.max_body_bytes.is_some()),
            ("max_connections", self.max_connections.is_some()),
            ("header_timeout", self.header_timeout.is_some()),
            ("body_timeout", self.body_timeout.is_some()),
            ("ack", self.ack.is_some()),
            ("write_timeout", self.write_timeout.is_some()),
            ("linger", self.linger.is_some()),
            ("queue_capacity", self.queue_capacity.is_some()),
        ];
        set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
    }
}

impl SourceConfig {
    /// Which fields fill `request_id`/`trace_id` for this source's rows.
    pub fn request_fields(&self) -> crate::sink::RequestFields {
        let mut f = crate::sink::RequestFields::default();
        if let Some(name) = &self.request_id_field {
            f.request_id = vec![name.clone()];
        }
        if let Some(name) = &self.trace_id_field {
            f.trace_id = vec![name.clone()];
        }
        f
    }
}

fn default_table() -> Table {
    Table::InfrastructureLogs
}

fn default_bucket() -> Duration {
    Duration::from_secs(3600)
}

fn default_max_line_bytes() -> usize {
    100 * 1024
}

fn default_multiline_timeout() -> Duration {
    Duration::from_secs(1)
}

//! The keyspace, the two tables and their indexes, as CQL (`logship schema print|apply`).
//!
//! Every statement is `IF NOT EXISTS`: applying twice changes nothing, and nothing here
//! drops or alters what exists. The design is explained in docs/schema.md.

use std::fmt::Write as _;
use std::time::Duration;

use scylla::client::session::Session;

use super::config::{CassandraConfig, Replication};
use super::error::SinkError;
use super::session::describe_execution_error;

/// `gc_grace_seconds`: rows are only ever inserted with a TTL, never deleted or updated,
/// so there is nothing a late tombstone could resurrect; three hours matches the default
/// `max_hint_window`, so hints for a node that was down are still replayed (a table with
/// `gc_grace_seconds = 0` gets no hints).
pub const GC_GRACE_SECONDS: u64 = 3 * 3600;

/// The TWCS window count aimed at over one TTL (docs/schema.md).
const WINDOWS_PER_TTL: u64 = 30;

/// A TWCS window: a unit and how many of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionWindow {
    pub unit: &'static str,
    pub size: u64,
}

/// About 30 windows over the TTL, in whole hours below a day and whole days above, so a
/// window's SSTables expire together and TWCS drops them whole.
pub fn compaction_window(ttl: Duration) -> CompactionWindow {
    let secs = ttl.as_secs().max(3600);
    let window = secs.div_ceil(WINDOWS_PER_TTL);
    if window >= 86_400 {
        CompactionWindow {
            unit: "DAYS",
            size: window.div_ceil(86_400),
        }
    } else {
        CompactionWindow {
            unit: "HOURS",
            size: window.div_ceil(3600),
        }
    }
}

/// CQL text quoted as an identifier, so a keyspace named like a keyword still works.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn replication_map(r: &Replication) -> String {
    match r {
        Replication::SimpleStrategy { replication_factor } => {
            format!("{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}")
        }
        Replication::NetworkTopologyStrategy { datacenters } => {
            let mut s = "{'class': 'NetworkTopologyStrategy'".to_owned();
            for (dc, rf) in datacenters {
                let _ = write!(s, ", {}: {rf}", string_literal(dc));
            }
            s.push('}');
            s
        }
    }
}

/// TWCS windows sized for the TTL; `unchecked_tombstone_compaction` lets a window whose
/// file is mostly expired rows of a short-TTL source be compacted alone, instead of
/// waiting for the longest TTL in it (docs/schema.md, "Mixed TTLs").
fn table_options(ttl: Duration) -> String {
    let w = compaction_window(ttl);
    format!(
        "WITH CLUSTERING ORDER BY (ts DESC, id ASC)\n  \
         AND compaction = {{'class': 'TimeWindowCompactionStrategy', \
         'compaction_window_unit': '{}', 'compaction_window_size': {}, \
         'unchecked_tombstone_compaction': 'true'}}\n  \
         AND default_time_to_live = {}\n  \
         AND gc_grace_seconds = {GC_GRACE_SECONDS}\n  \
         AND compression = {{'class': 'LZ4Compressor', 'chunk_length_in_kb': 16}}",
        w.unit,
        w.size,
        ttl.as_secs().clamp(1, i32::MAX as u64),
    )
}

/// Every statement `apply` runs, in order.
pub fn statements(config: &CassandraConfig) -> Vec<String> {
    let ks = ident(&config.keyspace);
    let opts = table_options(config.default_ttl);
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks}\n  WITH replication = {}",
            replication_map(&config.replication)
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.infrastructure_logs (\n  \
             source text,\n  host text,\n  day date,\n  bucket int,\n  ts timestamp,\n  \
             id uuid,\n  ts_nanos int,\n  level text,\n  message text,\n  \
             fields frozen<map<text, text>>,\n  parse_error text,\n  file_path text,\n  \
             file_offset bigint,\n  truncated boolean,\n  read_at timestamp,\n  \
             PRIMARY KEY ((source, host, day, bucket), ts, id)\n) {opts}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.application_logs (\n  \
             service text,\n  host text,\n  day date,\n  bucket int,\n  ts timestamp,\n  \
             id uuid,\n  ts_nanos int,\n  level text,\n  target text,\n  module text,\n  \
             file text,\n  line int,\n  message text,\n  fields frozen<map<text, text>>,\n  \
             span_fields frozen<map<text, text>>,\n  request_id text,\n  trace_id text,\n  \
             truncated boolean,\n  \
             PRIMARY KEY ((service, host, day, bucket), ts, id)\n) {opts}"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS infrastructure_logs_level ON {ks}.infrastructure_logs (level) USING 'sai'"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS application_logs_level ON {ks}.application_logs (level) USING 'sai'"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS application_logs_request_id ON {ks}.application_logs (request_id) USING 'sai'"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS application_logs_trace_id ON {ks}.application_logs (trace_id) USING 'sai'"
        ),
    ]
}

/// The schema as a CQL script (`logship schema print`).
pub fn script(config: &CassandraConfig) -> String {
    let mut out = String::new();
    for s in statements(config) {
        out.push_str(&s);
        out.push_str(";\n\n");
    }
    out.pop();
    out
}

/// Creates what is missing (`logship schema apply`). Safe to run at every deploy.
pub async fn apply(session: &Session, config: &CassandraConfig) -> Result<(), SinkError> {
    for statement in statements(config) {
        let what = statement.lines().next().unwrap_or_default().to_owned();
        session
            .query_unpaged(statement, ())
            .await
            .map_err(|e| SinkError::Refused {
                what,
                reason: describe_execution_error(&e),
            })?;
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|e| SinkError::Refused {
            what: "schema agreement".to_owned(),
            reason: e.to_string(),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn windows_aim_at_about_thirty_per_ttl() {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        assert_eq!(
            compaction_window(days(90)),
            CompactionWindow {
                unit: "DAYS",
                size: 3
            }
        );
        assert_eq!(compaction_window(days(7)).unit, "HOURS");
        assert_eq!(compaction_window(days(7)).size, 6);
        assert_eq!(compaction_window(days(365)).size, 13);
        assert_eq!(compaction_window(Duration::from_secs(60)).size, 1);
    }

    #[test]
    fn script_creates_only_if_missing_and_never_drops() {
        let config = CassandraConfig::default();
        let s = script(&config);
        for stmt in statements(&config) {
            assert!(stmt.starts_with("CREATE "), "{stmt}");
            assert!(stmt.contains(" IF NOT EXISTS "), "{stmt}");
        }
        let upper = s.to_uppercase();
        for forbidden in ["DROP ", "ALTER ", "TRUNCATE ", "DELETE "] {
            assert!(!upper.contains(forbidden), "{forbidden}");
        }
        assert!(s.contains("default_time_to_live = 7776000"));
        assert!(s.contains("'compaction_window_unit': 'DAYS', 'compaction_window_size': 3"));
        assert!(s.contains("PRIMARY KEY ((source, host, day, bucket), ts, id)"));
        assert!(s.contains("USING 'sai'"));
    }

    #[test]
    fn replication_renders_both_strategies() {
        assert_eq!(
            replication_map(&Replication::default()),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        let nts = Replication::NetworkTopologyStrategy {
            datacenters: BTreeMap::from([("dc1".to_owned(), 3), ("d'2".to_owned(), 2)]),
        };
        assert_eq!(
            replication_map(&nts),
            "{'class': 'NetworkTopologyStrategy', 'd''2': 2, 'dc1': 3}"
        );
    }

    #[test]
    fn keyspace_names_are_quoted() {
        assert_eq!(ident("logship"), "\"logship\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}

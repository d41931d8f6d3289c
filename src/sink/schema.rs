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
    /// `compaction_window_unit`: `HOURS` or `DAYS`.
    pub unit: &'static str,
    /// `compaction_window_size`: how many units one window spans.
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

/// The columns of `infrastructure_logs`, in order. `apply` adds any of these a live table
/// lacks (`ALTER TABLE ... ADD`), so a column added here reaches existing clusters.
pub const INFRA_COLUMNS: &[(&str, &str)] = &[
    ("source", "text"),
    ("host", "text"),
    ("day", "date"),
    ("bucket", "int"),
    ("ts", "timestamp"),
    ("id", "uuid"),
    ("ts_nanos", "int"),
    ("level", "text"),
    ("message", "text"),
    ("fields", "frozen<map<text, text>>"),
    ("parse_error", "text"),
    ("file_path", "text"),
    ("file_offset", "bigint"),
    ("truncated", "boolean"),
    ("request_id", "text"),
    ("trace_id", "text"),
    ("read_at", "timestamp"),
];

/// The columns of `application_logs`, in order (see [`INFRA_COLUMNS`]).
pub const APP_COLUMNS: &[(&str, &str)] = &[
    ("service", "text"),
    ("host", "text"),
    ("day", "date"),
    ("bucket", "int"),
    ("ts", "timestamp"),
    ("id", "uuid"),
    ("ts_nanos", "int"),
    ("level", "text"),
    ("target", "text"),
    ("module", "text"),
    ("file", "text"),
    ("line", "int"),
    ("message", "text"),
    ("fields", "frozen<map<text, text>>"),
    ("span_fields", "frozen<map<text, text>>"),
    ("request_id", "text"),
    ("trace_id", "text"),
    ("truncated", "boolean"),
];

/// The SAI indexes: (index name, table, column). Created after any missing column is added.
pub const INDEXES: &[(&str, &str, &str)] = &[
    ("infrastructure_logs_level", "infrastructure_logs", "level"),
    ("application_logs_level", "application_logs", "level"),
    (
        "application_logs_request_id",
        "application_logs",
        "request_id",
    ),
    ("application_logs_trace_id", "application_logs", "trace_id"),
    (
        "infrastructure_logs_request_id",
        "infrastructure_logs",
        "request_id",
    ),
    (
        "infrastructure_logs_trace_id",
        "infrastructure_logs",
        "trace_id",
    ),
];

/// A table's columns: (name, CQL type), in order.
pub type Columns = &'static [(&'static str, &'static str)];

/// The log tables and their columns and primary keys, for creating and migrating.
pub const TABLES: &[(&str, Columns, &str)] = &[
    (
        "infrastructure_logs",
        INFRA_COLUMNS,
        "PRIMARY KEY ((source, host, day, bucket), ts, id)",
    ),
    (
        "application_logs",
        APP_COLUMNS,
        "PRIMARY KEY ((service, host, day, bucket), ts, id)",
    ),
];

fn create_table(ks: &str, name: &str, columns: &[(&str, &str)], key: &str, opts: &str) -> String {
    let mut s = format!("CREATE TABLE IF NOT EXISTS {ks}.{name} (\n");
    for (column, ty) in columns {
        let _ = writeln!(s, "  {column} {ty},");
    }
    let _ = write!(s, "  {key}\n) {opts}");
    s
}

/// Every statement `apply` runs, in order (the keyspace, the tables, the stream catalog,
/// then the indexes). `apply` adds missing columns between the tables and the indexes.
pub fn statements(config: &CassandraConfig) -> Vec<String> {
    let ks = ident(&config.keyspace);
    let mut out = vec![format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks}\n  WITH replication = {}",
        replication_map(&config.replication)
    )];
    out.extend(table_statements(config));
    out.extend(index_statements(config));
    out
}

fn table_statements(config: &CassandraConfig) -> Vec<String> {
    let ks = ident(&config.keyspace);
    let opts = table_options(config.default_ttl);
    let mut out: Vec<String> = TABLES
        .iter()
        .map(|(name, columns, key)| create_table(&ks, name, columns, key, &opts))
        .collect();
    out.push(super::catalog::create_statement(config));
    out
}

fn index_statements(config: &CassandraConfig) -> Vec<String> {
    let ks = ident(&config.keyspace);
    INDEXES
        .iter()
        .map(|(name, table, column)| {
            format!("CREATE INDEX IF NOT EXISTS {name} ON {ks}.{table} ({column}) USING 'sai'")
        })
        .collect()
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

/// Creates what is missing (`logship schema apply`). Safe to run at every deploy: it
/// creates missing tables and indexes and adds missing columns (`ALTER TABLE ... ADD`),
/// and never drops or changes anything that exists.
pub async fn apply(session: &Session, config: &CassandraConfig) -> Result<(), SinkError> {
    apply_reporting(session, config).await.map(drop)
}

/// [`apply`], returning the columns it added as `table.column` (none when the schema was
/// already current), for `logship schema apply` to print.
pub async fn apply_reporting(
    session: &Session,
    config: &CassandraConfig,
) -> Result<Vec<String>, SinkError> {
    let ks = ident(&config.keyspace);
    let keyspace = statements(config).remove(0);
    run(session, keyspace).await?;
    for statement in table_statements(config) {
        run(session, statement).await?;
    }
    agree(session).await?;
    let mut added = Vec::new();
    for (column, table) in missing_columns(session, config).await? {
        let ty = TABLES
            .iter()
            .find(|(name, _, _)| *name == table)
            .and_then(|(_, cols, _)| cols.iter().find(|(c, _)| *c == column))
            .map_or("text", |(_, ty)| *ty);
        run(
            session,
            format!("ALTER TABLE {ks}.{table} ADD {column} {ty}"),
        )
        .await?;
        added.push(format!("{table}.{column}"));
    }
    if !added.is_empty() {
        agree(session).await?;
    }
    for statement in index_statements(config) {
        run(session, statement).await?;
    }
    agree(session).await?;
    Ok(added)
}

/// What the live schema lacks that this version of logship writes or reads: missing
/// tables, columns (as `table.column`) and indexes. Empty when the schema is current.
/// The agent checks this at start-up and says which `logship schema apply` would add.
pub async fn missing(
    session: &Session,
    config: &CassandraConfig,
) -> Result<Vec<String>, SinkError> {
    let mut out: Vec<String> = missing_columns(session, config)
        .await?
        .into_iter()
        .map(|(column, table)| format!("column {table}.{column}"))
        .collect();
    let rows = session
        .query_unpaged(
            "SELECT index_name FROM system_schema.indexes WHERE keyspace_name = ?",
            (&config.keyspace,),
        )
        .await
        .map_err(|e| refused("reading system_schema.indexes", &e))?;
    let have: Vec<String> = rows
        .into_rows_result()
        .ok()
        .and_then(|r| {
            r.rows::<(String,)>()
                .ok()
                .map(|it| it.filter_map(Result::ok).map(|(n,)| n).collect())
        })
        .unwrap_or_default();
    for (name, _, _) in INDEXES {
        if !have.iter().any(|h| h == name) {
            out.push(format!("index {name}"));
        }
    }
    Ok(out)
}

/// `(column, table)` pairs in the definitions that the live tables lack. A table that is
/// missing altogether lists all its columns.
async fn missing_columns(
    session: &Session,
    config: &CassandraConfig,
) -> Result<Vec<(String, String)>, SinkError> {
    let mut out = Vec::new();
    let mut tables: Vec<(&str, Vec<&str>)> = TABLES
        .iter()
        .map(|(name, cols, _)| (*name, cols.iter().map(|(c, _)| *c).collect()))
        .collect();
    tables.push((
        super::catalog::TABLE,
        super::catalog::COLUMNS.iter().map(|(c, _)| *c).collect(),
    ));
    for (table, columns) in tables {
        let rows = session
            .query_unpaged(
                "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
                (&config.keyspace, table),
            )
            .await
            .map_err(|e| refused("reading system_schema.columns", &e))?;
        let have: Vec<String> = rows
            .into_rows_result()
            .map_err(|e| SinkError::Refused {
                what: "reading system_schema.columns".to_owned(),
                reason: e.to_string(),
            })?
            .rows::<(String,)>()
            .map_err(|e| SinkError::Refused {
                what: "reading system_schema.columns".to_owned(),
                reason: e.to_string(),
            })?
            .filter_map(Result::ok)
            .map(|(c,)| c)
            .collect();
        for column in columns {
            if !have.iter().any(|h| h == column) {
                out.push((column.to_owned(), table.to_owned()));
            }
        }
    }
    Ok(out)
}

fn refused(what: &str, e: &scylla::errors::ExecutionError) -> SinkError {
    SinkError::Refused {
        what: what.to_owned(),
        reason: describe_execution_error(e),
    }
}

async fn run(session: &Session, statement: String) -> Result<(), SinkError> {
    let what = statement.lines().next().unwrap_or_default().to_owned();
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| SinkError::Refused {
            what,
            reason: describe_execution_error(&e),
        })?;
    Ok(())
}

async fn agree(session: &Session) -> Result<(), SinkError> {
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

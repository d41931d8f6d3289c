//! One attempt at writing a set of rows: prepared inserts with bounded in-flight
//! requests, or one `UNLOGGED` batch per partition. Never a multi-partition batch.

use std::collections::HashMap;

use futures::StreamExt as _;
use scylla::client::session::Session;
use scylla::errors::ExecutionError;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::config::WriteMode;
use super::error::SinkError;
use super::retry::{Failure, RowFailure, classify, classify_prepare};
use super::row::Row;
use super::schema::{APP_COLUMNS, INFRA_COLUMNS, ident};
use super::session::describe_execution_error;

/// Rows per single-partition batch stay under this many bytes, far below the 16 MiB
/// mutation limit, so one slow batch does not hold a whole unit.
const MAX_BATCH_BYTES: usize = 2 << 20;

/// The two inserts, prepared once and shared.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub infra: PreparedStatement,
    pub app: PreparedStatement,
}

impl Statements {
    pub(crate) async fn prepare(
        session: &Session,
        keyspace: &str,
    ) -> Result<Statements, SinkError> {
        let ks = ident(keyspace);
        let infra = insert_statement(&ks, "infrastructure_logs", INFRA_COLUMNS);
        let app = insert_statement(&ks, "application_logs", APP_COLUMNS);
        let prepare = |text: String, table: &'static str| async move {
            let mut stmt = session
                .prepare(text)
                .await
                .map_err(|e| classify_prepare(&e, keyspace, table))?;
            // Row ids are deterministic, so a repeated insert rewrites the same row.
            stmt.set_is_idempotent(true);
            Ok::<_, SinkError>(stmt)
        };
        Ok(Statements {
            infra: prepare(infra, "infrastructure_logs").await?,
            app: prepare(app, "application_logs").await?,
        })
    }
}

/// `INSERT INTO ks.table (columns) VALUES (?, ...) USING TTL ?` with the schema's column
/// list, in its order: the statement cannot drift from the table, and the bound values
/// (`InfraValues`, `AppValues`) are checked by name against it when a row is bound.
fn insert_statement(ks: &str, table: &str, columns: &[(&str, &str)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let markers = vec!["?"; columns.len()].join(", ");
    format!(
        "INSERT INTO {ks}.{table} ({}) VALUES ({markers}) USING TTL ?",
        names.join(", ")
    )
}

/// Sends `rows[i]` for every `i` in `pending`; returns the rows that failed.
pub(crate) async fn write(
    session: &Session,
    stmts: &Statements,
    mode: WriteMode,
    concurrency: usize,
    rows: &[Row<'_>],
    pending: &[usize],
) -> Vec<RowFailure> {
    let concurrency = concurrency.max(1);
    match mode {
        WriteMode::Concurrent => {
            futures::stream::iter(pending.iter().copied())
                .map(|i| async move { (i, insert(session, stmts, &rows[i]).await) })
                .buffer_unordered(concurrency)
                .filter_map(|(index, r)| async move {
                    r.err().map(|e| RowFailure {
                        index,
                        failure: classify(&e),
                    })
                })
                .collect()
                .await
        }
        WriteMode::UnloggedBatch => {
            let groups = partition_groups(rows, pending);
            futures::stream::iter(groups)
                .map(|group| write_batch(session, stmts, rows, group))
                .buffer_unordered(concurrency)
                .flat_map(futures::stream::iter)
                .collect()
                .await
        }
    }
}

async fn insert(
    session: &Session,
    stmts: &Statements,
    row: &Row<'_>,
) -> Result<(), ExecutionError> {
    match row {
        Row::Infra(r) => session
            .execute_unpaged(&stmts.infra, Row::infra_values(r))
            .await
            .map(drop),
        Row::App(r) => session
            .execute_unpaged(&stmts.app, Row::app_values(r))
            .await
            .map(drop),
    }
}

/// Groups row indices by partition (keeping their order), split so no group's rows
/// exceed [`MAX_BATCH_BYTES`].
fn partition_groups(rows: &[Row<'_>], pending: &[usize]) -> Vec<Vec<usize>> {
    let mut by_key: HashMap<_, usize> = HashMap::new();
    let mut groups: Vec<(Vec<usize>, usize)> = Vec::new();
    for &i in pending {
        let key = rows[i].partition();
        let bytes = rows[i].approx_bytes();
        let slot = match by_key.get(&key) {
            Some(&g) if groups[g].1 + bytes <= MAX_BATCH_BYTES => g,
            _ => {
                groups.push((Vec::new(), 0));
                by_key.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[slot].0.push(i);
        groups[slot].1 += bytes;
    }
    groups.into_iter().map(|(g, _)| g).collect()
}

async fn write_batch(
    session: &Session,
    stmts: &Statements,
    rows: &[Row<'_>],
    group: Vec<usize>,
) -> Vec<RowFailure> {
    let Some(&first) = group.first() else {
        return Vec::new();
    };
    let result = match &rows[first] {
        Row::Infra(_) => {
            let values: Vec<_> = group
                .iter()
                .filter_map(|&i| match &rows[i] {
                    Row::Infra(r) => Some(Row::infra_values(r)),
                    Row::App(_) => None,
                })
                .collect();
            session
                .batch(&batch_of(&stmts.infra, values.len()), values)
                .await
        }
        Row::App(_) => {
            let values: Vec<_> = group
                .iter()
                .filter_map(|&i| match &rows[i] {
                    Row::App(r) => Some(Row::app_values(r)),
                    Row::Infra(_) => None,
                })
                .collect();
            session
                .batch(&batch_of(&stmts.app, values.len()), values)
                .await
        }
    };
    match result {
        Ok(_) => Vec::new(),
        Err(e) => match classify(&e) {
            // One bad row sinks its batch: send the rows one by one to find it.
            Failure::Reject(_) => {
                let mut failures = Vec::new();
                for index in group {
                    if let Err(e) = insert(session, stmts, &rows[index]).await {
                        failures.push(RowFailure {
                            index,
                            failure: classify(&e),
                        });
                    }
                }
                failures
            }
            failure => {
                tracing::debug!(error = %describe_execution_error(&e), rows = group.len(), "batch failed");
                RowFailure::all(group, &failure)
            }
        },
    }
}

fn batch_of(stmt: &PreparedStatement, n: usize) -> Batch {
    let mut batch = Batch::new(BatchType::Unlogged);
    for _ in 0..n {
        batch.append_statement(stmt.clone());
    }
    batch.set_is_idempotent(true);
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_name_the_schema_columns_in_order() {
        assert_eq!(
            insert_statement("ks", "infrastructure_logs", INFRA_COLUMNS),
            "INSERT INTO ks.infrastructure_logs (source, host, day, bucket, ts, id, ts_nanos, \
             level, message, fields, parse_error, file_path, file_offset, truncated, \
             request_id, trace_id, read_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
        );
        assert_eq!(
            insert_statement("ks", "application_logs", APP_COLUMNS),
            "INSERT INTO ks.application_logs (service, host, day, bucket, ts, id, ts_nanos, \
             level, target, module, file, line, message, fields, span_fields, request_id, \
             trace_id, truncated) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
        );
    }
}

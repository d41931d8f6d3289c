//! The stream catalog: one row per partition the agent has written, so a reader can
//! enumerate exactly the partitions a time range touches without scanning the ring.
//!
//! Written once per new partition (the agent remembers which ones it has recorded), and
//! before the first rows of that partition, so a query that finds a partition's rows can
//! always find the partition first. `first_seen`/`last_seen` are refreshed at most once a
//! minute per partition (exact to a minute), never per row.
//!
//! Rows cluster by bucket start, so a reader asks for the buckets its time range touches
//! instead of the whole day. Buckets start up to one width before the range, so each day
//! also holds one marker row per bucket width in use (`bucket = -width`, empty table,
//! name and host): a reader reads those first (`bucket < 0`) to know how far back to look.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt as _;
use scylla::client::session::Session;
use scylla::errors::ExecutionError;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlDate, CqlTimestamp};

use super::config::CassandraConfig;
use super::error::SinkError;
use super::retry::RowFailure;
use super::retry::{Failure, classify};
use super::row::Row;
use super::schema::{GC_GRACE_SECONDS, ident};

/// The catalog table's name.
pub const TABLE: &str = "catalog";

/// Its columns: partition `day`, clustering `(bucket, log_table, name, host)`.
/// `name` is the source (infrastructure_logs) or the service (application_logs); `width`
/// the bucket width in seconds; `first_seen`/`last_seen` the earliest and latest row
/// times written to that partition, exact to a minute (after an agent restart,
/// `first_seen` restarts from the rows written since).
pub const COLUMNS: &[(&str, &str)] = &[
    ("day", "date"),
    ("log_table", "text"),
    ("name", "text"),
    ("host", "text"),
    ("bucket", "int"),
    ("width", "int"),
    ("first_seen", "timestamp"),
    ("last_seen", "timestamp"),
];

/// How far `first_seen`/`last_seen` may lag the rows before a unit refreshes them: they
/// are exact to a minute, at one catalog write per partition per minute at most.
const SEEN_REFRESH_MS: i64 = 60_000;

/// Partitions remembered before old days are forgotten (a re-write is harmless).
const MAX_REMEMBERED: usize = 100_000;

/// Catalog requests in flight at once for one unit.
const CONCURRENCY: usize = 16;

/// `CREATE TABLE` of the catalog. Rows live a day longer than the logs' default TTL, so a
/// partition is listed as long as its rows can exist.
pub fn create_statement(config: &CassandraConfig) -> String {
    let ks = ident(&config.keyspace);
    let ttl = config
        .default_ttl
        .as_secs()
        .saturating_add(86_400)
        .clamp(1, i32::MAX as u64);
    let mut s = format!("CREATE TABLE IF NOT EXISTS {ks}.{TABLE} (\n");
    for (column, ty) in COLUMNS {
        s.push_str(&format!("  {column} {ty},\n"));
    }
    s.push_str(&format!(
        "  PRIMARY KEY ((day), bucket, log_table, name, host)\n) \
         WITH default_time_to_live = {ttl}\n  AND gc_grace_seconds = {GC_GRACE_SECONDS}"
    ));
    s
}

/// A partition as the catalog keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    table: &'static str,
    name: String,
    host: String,
    day: u32,
    bucket: i32,
}

/// `first_seen` and `last_seen` as written (ms).
type Bounds = (i64, i64);

/// What one unit shows of one partition.
struct Seen {
    width: i32,
    first: i64,
    last: i64,
}

/// Records partitions in the catalog; shared by every clone of the sink.
pub(crate) struct Catalog {
    insert: PreparedStatement,
    touch: PreparedStatement,
    /// Recorded partitions and the `first_seen`/`last_seen` written for each (ms).
    known: Mutex<HashMap<Key, Bounds>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    pub(crate) async fn prepare(session: &Session, keyspace: &str) -> Result<Catalog, SinkError> {
        let ks = ident(keyspace);
        let prepare = |text: String| async move {
            let mut stmt = session.prepare(text).await.map_err(|e| SinkError::Schema {
                what: format!("the stream catalog {keyspace}.{TABLE} is missing or outdated"),
                reason: e.to_string(),
            })?;
            stmt.set_is_idempotent(true);
            Ok::<_, SinkError>(stmt)
        };
        Ok(Catalog {
            insert: prepare(format!(
                "INSERT INTO {ks}.{TABLE} (day, log_table, name, host, bucket, width, first_seen, last_seen) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            touch: prepare(format!(
                "UPDATE {ks}.{TABLE} SET first_seen = ?, last_seen = ? \
                 WHERE day = ? AND log_table = ? AND name = ? AND host = ? AND bucket = ?"
            ))
            .await?,
            known: Mutex::new(HashMap::new()),
        })
    }

    /// Records every partition of `rows[i]` (`i` in `pending`) the catalog does not hold
    /// yet, and refreshes stale `first_seen`/`last_seen` times. Call before writing those rows. Returns
    /// the rows to write now, and a failure for each row whose partition could not be
    /// recorded (retried like a failed insert, so its rows are never written unlisted).
    /// A partition the catalog refuses for good (a key over 64 KiB) does not hold its rows
    /// back: the insert then decides their fate (dead letter).
    pub(crate) async fn note(
        &self,
        session: &Session,
        rows: &[Row<'_>],
        pending: &[usize],
    ) -> (Vec<usize>, Vec<RowFailure>) {
        let mut unit: HashMap<Key, Seen> = HashMap::new();
        let mut row_keys: Vec<(usize, Key, Key)> = Vec::with_capacity(pending.len());
        for &i in pending {
            let row = &rows[i];
            let (table, width, ts) = match row {
                Row::Infra(r) => ("infrastructure_logs", r.record.route.bucket, r.place.ts.0),
                Row::App(r) => ("application_logs", r.route.bucket, r.place.ts.0),
            };
            let p = row.partition();
            let key = Key {
                table,
                name: p.name.to_owned(),
                host: p.host.to_owned(),
                day: p.day,
                bucket: p.bucket,
            };
            let width = super::row::bucket_width_secs(width) as i32;
            let seen = unit.entry(key.clone()).or_insert(Seen {
                width,
                first: ts,
                last: ts,
            });
            seen.first = seen.first.min(ts);
            seen.last = seen.last.max(ts);
            // The day's marker of this width (see the module's documentation).
            let marker = Key {
                table: "",
                name: String::new(),
                host: String::new(),
                day: p.day,
                bucket: -width,
            };
            row_keys.push((i, key, marker.clone()));
            unit.entry(marker).or_insert(Seen {
                width,
                first: ts,
                last: ts,
            });
        }
        let failed = self.record(session, unit).await;
        if failed.is_empty() {
            return (pending.to_vec(), Vec::new());
        }
        let mut write = Vec::with_capacity(pending.len());
        let mut failures = Vec::new();
        for (index, key, marker) in row_keys {
            match failed.get(&key).or_else(|| failed.get(&marker)) {
                Some(failure) => failures.push(RowFailure {
                    index,
                    failure: failure.clone(),
                }),
                None => write.push(index),
            }
        }
        (write, failures)
    }

    /// Writes the catalog rows a unit needs; returns the partitions that failed, except
    /// those refused for good.
    async fn record(&self, session: &Session, unit: HashMap<Key, Seen>) -> HashMap<Key, Failure> {
        enum Op {
            Insert,
            Touch,
        }
        let work: Vec<(Key, Seen, Op)> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            unit.into_iter()
                .filter_map(|(key, seen)| match known.get(&key) {
                    None => Some((key, seen, Op::Insert)),
                    Some(&(first, last))
                        if key.bucket >= 0
                            && (seen.last > last + SEEN_REFRESH_MS
                                || seen.first < first - SEEN_REFRESH_MS) =>
                    {
                        let seen = Seen {
                            width: seen.width,
                            first: seen.first.min(first),
                            last: seen.last.max(last),
                        };
                        Some((key, seen, Op::Touch))
                    }
                    Some(_) => None,
                })
                .collect()
        };
        if work.is_empty() {
            return HashMap::new();
        }
        let results: Vec<Result<(Key, Bounds), (Key, ExecutionError)>> =
            futures::stream::iter(work)
                .map(|(key, seen, op)| async move {
                    let day = CqlDate(key.day);
                    let result = match op {
                        Op::Insert => {
                            session
                                .execute_unpaged(
                                    &self.insert,
                                    (
                                        day,
                                        key.table,
                                        &key.name,
                                        &key.host,
                                        key.bucket,
                                        seen.width,
                                        CqlTimestamp(seen.first),
                                        CqlTimestamp(seen.last),
                                    ),
                                )
                                .await
                        }
                        Op::Touch => {
                            session
                                .execute_unpaged(
                                    &self.touch,
                                    (
                                        CqlTimestamp(seen.first),
                                        CqlTimestamp(seen.last),
                                        day,
                                        key.table,
                                        &key.name,
                                        &key.host,
                                        key.bucket,
                                    ),
                                )
                                .await
                        }
                    };
                    match result {
                        Ok(_) => Ok((key, (seen.first, seen.last))),
                        Err(e) => Err((key, e)),
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let mut failed = HashMap::new();
        for r in results {
            match r {
                Ok((key, seen)) => {
                    known.insert(key, seen);
                }
                Err((key, e)) => match classify(&e) {
                    Failure::Reject(reason) => {
                        tracing::warn!(partition = ?key, %reason, "the stream catalog refused a partition; its rows are written unlisted");
                    }
                    failure => {
                        failed.insert(key, failure);
                    }
                },
            }
        }
        if known.len() > MAX_REMEMBERED {
            // Forget the oldest days: the agent rarely writes to them again, and if it
            // does, the catalog row is simply written once more.
            let newest = known.keys().map(|k| k.day).max().unwrap_or(0);
            known.retain(|k, _| k.day + 1 >= newest);
        }
        failed
    }
}

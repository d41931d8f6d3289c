//! The read core: partitions from the catalog, read concurrently, merged k-way in time order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use jiff::Timestamp;
use logship_parsers::Level;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlDate, CqlTimestamp};
use serde::Serialize;
use uuid::Uuid;

use super::error::QueryError;
use super::filter::{Filter, Order};
use super::row::{AppColumns, InfraColumns, LogRow, LogTable, Position, cmp_in};
use crate::sink::CassandraConfig;
use crate::sink::schema::ident;

const MS_PER_DAY: i64 = 86_400_000;

/// Tuning of a [`Reader`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Partition reads started at once (bounded in-flight requests).
    pub max_in_flight: usize,
    /// Rows per page of one partition read: memory is about open partitions × this.
    pub page_size: i32,
    /// How far back a query without `from` looks (the rows' longest TTL).
    pub retention: Duration,
    /// Most rows a request-id or trace-id query collects before it gives up (they are
    /// sorted in memory: the index answers in token order, not time order).
    pub id_query_limit: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_in_flight: 16,
            page_size: 500,
            retention: Duration::from_secs(91 * 86_400),
            id_query_limit: 100_000,
        }
    }
}

/// Reads logs back. Cheap to clone; clones share the session and prepared statements.
#[derive(Clone)]
pub struct Reader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("keyspace", &self.inner.keyspace)
            .finish_non_exhaustive()
    }
}

struct Inner {
    session: Arc<Session>,
    keyspace: String,
    options: ReadOptions,
    /// The partitions of a day whose bucket starts in a range.
    catalog_day: PreparedStatement,
    /// The bucket widths in use on a day (marker rows, `bucket = -width`).
    catalog_widths: PreparedStatement,
    tables: HashMap<LogTable, TableStatements>,
}

struct TableStatements {
    desc: PreparedStatement,
    asc: PreparedStatement,
    desc_level: PreparedStatement,
    by_request: PreparedStatement,
    by_trace: PreparedStatement,
}

/// One partition to read, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    table: LogTable,
    name: String,
    host: String,
    day: u32,
    bucket: i32,
    start_ms: i64,
    end_ms: i64,
}

/// A stream (table, name, host) seen in a time range, from the catalog (`--list-sources`,
/// `GET /sources`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    /// The table the stream's rows are in.
    pub table: LogTable,
    /// The source (infrastructure_logs) or service (application_logs).
    #[serde(rename = "source")]
    pub name: String,
    /// The host that wrote the stream's rows.
    pub host: String,
    /// Bucket width in seconds (the newest partition's).
    pub bucket_seconds: i32,
    /// Partitions of this stream in the range.
    pub partitions: u64,
    /// Earliest and latest row times the agent recorded for those partitions.
    #[serde(serialize_with = "ser_ts")]
    pub first_seen: Timestamp,
    /// See `first_seen`.
    #[serde(serialize_with = "ser_ts")]
    pub last_seen: Timestamp,
}

fn ser_ts<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

/// Rows per level per stream name per interval (`--count --by level`, `GET /counts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The table counted.
    pub table: LogTable,
    /// The source (infrastructure_logs) or service (application_logs).
    #[serde(rename = "source")]
    pub name: String,
    /// The level as stored (`INFO`, `ERROR`, ...).
    pub level: String,
    /// Start of the interval.
    #[serde(serialize_with = "ser_ts")]
    pub start: Timestamp,
    /// Rows of this level, stream and interval.
    pub count: u64,
}

/// One page of rows and where the next page starts (`None`: no more rows).
#[derive(Debug, Clone)]
pub struct Page {
    /// The rows, in the query's order; at most the page size.
    pub rows: Vec<LogRow>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<Cursor>,
}

/// Where a page ended: the next page continues strictly after this row, in `order`.
/// Encodes to an opaque string for URLs ([`Cursor::encode`], [`Cursor::decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The order of the query that made the cursor; a cursor only continues that order.
    pub order: Order,
    /// The last row of the page: the next page starts strictly after it.
    pub after: Position,
}

impl Cursor {
    /// `a1717246800000_<uuid>`: `a` ascending or `d` descending, the row's `ts` in ms, its
    /// id without hyphens.
    pub fn encode(&self) -> String {
        let dir = match self.order {
            Order::Ascending => 'a',
            Order::Descending => 'd',
        };
        format!("{dir}{}_{}", self.after.ts_ms, self.after.id.simple())
    }

    /// Reads what [`encode`](Self::encode) wrote; anything else is a `BadCursor` error.
    pub fn decode(text: &str) -> Result<Cursor, QueryError> {
        let bad = || QueryError::BadCursor(format!("{text:?} is not a cursor this server made"));
        let order = match text.chars().next() {
            Some('a') => Order::Ascending,
            Some('d') => Order::Descending,
            _ => return Err(bad()),
        };
        let (ts, id) = text[1..].split_once('_').ok_or_else(bad)?;
        Ok(Cursor {
            order,
            after: Position {
                ts_ms: ts.parse().map_err(|_| bad())?,
                id: Uuid::parse_str(id).map_err(|_| bad())?,
            },
        })
    }
}

impl Reader {
    /// Connects with the agent's `[cassandra]` settings (a role with SELECT suffices).
    pub async fn connect(config: &CassandraConfig) -> Result<Reader, QueryError> {
        let session = crate::sink::session::connect(config).await?;
        Reader::new(Arc::new(session), &config.keyspace, ReadOptions::default()).await
    }

    /// A reader over an open session; prepares its statements (fails with a clear
    /// "run `logship schema apply`" error when the schema is older than this version).
    pub async fn new(
        session: Arc<Session>,
        keyspace: &str,
        options: ReadOptions,
    ) -> Result<Reader, QueryError> {
        let ks = ident(keyspace);
        let prepare = |text: String| {
            let session = Arc::clone(&session);
            async move {
                let mut stmt = session.prepare(text.clone()).await.map_err(|e| {
                    QueryError::Connect(crate::sink::SinkError::Schema {
                        what: format!("keyspace {keyspace} lacks what logship query reads"),
                        reason: e.to_string(),
                    })
                })?;
                stmt.set_is_idempotent(true);
                Ok::<_, QueryError>(stmt)
            }
        };
        let catalog = crate::sink::catalog::TABLE;
        let mut catalog_day = prepare(format!(
            "SELECT log_table, name, host, bucket, width, first_seen, last_seen \
             FROM {ks}.{catalog} WHERE day = ? AND bucket > ? AND bucket <= ?"
        ))
        .await?;
        catalog_day.set_page_size(5000);
        let catalog_widths = prepare(format!(
            "SELECT bucket FROM {ks}.{catalog} WHERE day = ? AND bucket < 0"
        ))
        .await?;
        let mut tables = HashMap::new();
        for table in [LogTable::Infrastructure, LogTable::Application] {
            let cols = table.select_list();
            let t = table.name();
            let key = table.name_column();
            let part = format!(
                "SELECT {cols} FROM {ks}.{t} WHERE {key} = ? AND host = ? AND day = ? AND bucket = ? \
                 AND ts >= ? AND ts <= ?"
            );
            let mut desc = prepare(part.clone()).await?;
            let mut asc = prepare(format!("{part} ORDER BY ts ASC")).await?;
            let mut desc_level = prepare(format!("{part} AND level = ?")).await?;
            let mut by_request =
                prepare(format!("SELECT {cols} FROM {ks}.{t} WHERE request_id = ?")).await?;
            let mut by_trace =
                prepare(format!("SELECT {cols} FROM {ks}.{t} WHERE trace_id = ?")).await?;
            for s in [
                &mut desc,
                &mut asc,
                &mut desc_level,
                &mut by_request,
                &mut by_trace,
            ] {
                s.set_page_size(options.page_size.max(1));
            }
            tables.insert(
                table,
                TableStatements {
                    desc,
                    asc,
                    desc_level,
                    by_request,
                    by_trace,
                },
            );
        }
        Ok(Reader {
            inner: Arc::new(Inner {
                session,
                keyspace: keyspace.to_owned(),
                options,
                catalog_day,
                catalog_widths,
                tables,
            }),
        })
    }

    /// The session, for callers that need one of their own (health checks).
    pub fn session(&self) -> &Arc<Session> {
        &self.inner.session
    }

    /// Every row matching `filter`, in `order`, as a stream pulled one row at a time:
    /// partitions are enumerated from the catalog, opened as the merge reaches their
    /// time (at most `max_in_flight` at once) and read page by page, so memory stays
    /// about (open partitions × page size) however many rows match.
    pub fn rows(&self, filter: &Filter, order: Order) -> RowStream {
        RowStream::new(self.clone(), Arc::new(filter.clone()), order, None)
    }

    /// Like [`rows`](Self::rows), continuing strictly after `cursor` (in its order).
    pub fn rows_after(&self, filter: &Filter, cursor: Cursor) -> RowStream {
        RowStream::new(
            self.clone(),
            Arc::new(filter.clone()),
            cursor.order,
            Some(cursor.after),
        )
    }

    /// One page of at most `limit` rows in `order`, starting after `cursor` if given
    /// (its order then wins). `next` is set when the page is full.
    pub async fn page(
        &self,
        filter: &Filter,
        order: Order,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, QueryError> {
        let order = cursor.map_or(order, |c| c.order);
        let mut stream = match cursor {
            Some(c) => self.rows_after(filter, c),
            None => self.rows(filter, order),
        };
        let mut rows = Vec::with_capacity(limit.min(10_000));
        while rows.len() < limit {
            match stream.next().await? {
                Some(r) => rows.push(r),
                None => break,
            }
        }
        let next = if rows.len() == limit && limit > 0 {
            rows.last().map(|r| Cursor {
                order,
                after: r.position(),
            })
        } else {
            None
        };
        Ok(Page { rows, next })
    }

    /// The newest `n` matching rows, oldest first (`logship query -n N`).
    pub async fn newest(&self, filter: &Filter, n: usize) -> Result<Vec<LogRow>, QueryError> {
        let mut rows = self.page(filter, Order::Descending, None, n).await?.rows;
        rows.reverse();
        Ok(rows)
    }

    /// Rows per level per stream name per `interval` (aligned to the epoch, i.e. UTC
    /// midnight for widths dividing a day), sorted by interval, table, name, level.
    pub async fn counts(
        &self,
        filter: &Filter,
        interval: Duration,
    ) -> Result<Vec<Count>, QueryError> {
        let width = (interval.as_millis() as i64).max(1000);
        let mut counts: BTreeMap<(i64, LogTable, String, String), u64> = BTreeMap::new();
        let mut stream = self.rows(filter, Order::Ascending);
        while let Some(row) = stream.next().await? {
            let start = row.ts_ms - row.ts_ms.rem_euclid(width);
            *counts
                .entry((start, row.table, row.name, row.level))
                .or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|((start, table, name, level), count)| Count {
                table,
                name,
                level,
                start: Timestamp::from_millisecond(start).unwrap_or(Timestamp::UNIX_EPOCH),
                count,
            })
            .collect())
    }

    /// The streams (table, name, host) with partitions in the filter's time range, from
    /// the catalog; level, id, field and message filters are ignored.
    pub async fn streams(&self, filter: &Filter) -> Result<Vec<StreamInfo>, QueryError> {
        let (lo, hi) = self.bounds(filter);
        let mut out: BTreeMap<(LogTable, String, String), StreamInfo> = BTreeMap::new();
        for day in day_of(lo)..=day_of(hi) {
            for (part, width, first, last) in self.catalog_day(day, filter, lo, hi).await? {
                let info = out
                    .entry((part.table, part.name.clone(), part.host.clone()))
                    .or_insert(StreamInfo {
                        table: part.table,
                        name: part.name,
                        host: part.host,
                        bucket_seconds: width,
                        partitions: 0,
                        first_seen: first,
                        last_seen: last,
                    });
                info.partitions += 1;
                info.bucket_seconds = width;
                info.first_seen = info.first_seen.min(first);
                info.last_seen = info.last_seen.max(last);
            }
        }
        Ok(out.into_values().collect())
    }

    /// Follows `filter`: see [`Follow`].
    pub fn follow(&self, filter: &Filter) -> Follow {
        Follow::new(self.clone(), filter.clone())
    }

    /// The ms range `[lo, hi]` (inclusive) a filter reads.
    fn bounds(&self, filter: &Filter) -> (i64, i64) {
        let now = Timestamp::now().as_millisecond();
        let lo = filter.from.map_or_else(
            || now - self.inner.options.retention.as_millis() as i64,
            |t| t.as_millisecond(),
        );
        // Without `until`, rows stamped a little in the future (clock skew) still count.
        let hi = filter
            .until
            .map_or(now + MS_PER_DAY, |t| t.as_millisecond() - 1);
        (lo, hi)
    }

    /// The catalog's partitions of `day` that the filter wants and that overlap [lo, hi].
    async fn catalog_day(
        &self,
        day: i64,
        filter: &Filter,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(Part, i32, Timestamp, Timestamp)>, QueryError> {
        type CatalogRow = (
            String,
            String,
            String,
            i32,
            Option<i32>,
            Option<CqlTimestamp>,
            Option<CqlTimestamp>,
        );
        let date = CqlDate((day + (1_i64 << 31)) as u32);
        let what = "reading the stream catalog";
        // A bucket overlapping [lo, hi] starts after lo minus its width: ask only for
        // those, looking back by the widest bucket of the day.
        let widest = self
            .inner
            .session
            .execute_unpaged(&self.inner.catalog_widths, (date,))
            .await
            .map_err(|e| QueryError::cassandra(what, e))?
            .into_rows_result()
            .map_err(|e| QueryError::cassandra(what, e))?
            .rows::<(i32,)>()
            .map_err(|e| QueryError::cassandra(what, e))?
            .filter_map(Result::ok)
            .map(|(b,)| -i64::from(b))
            .max();
        let Some(widest) = widest else {
            return Ok(Vec::new());
        };
        let day_start = day * MS_PER_DAY;
        let lo_sec = (lo - day_start).div_euclid(1000).clamp(0, 86_400);
        let hi_sec = (hi - day_start).div_euclid(1000).clamp(-1, 86_399);
        let after = (lo_sec - widest).max(-1) as i32;
        let mut rows = self
            .inner
            .session
            .execute_iter(self.inner.catalog_day.clone(), (date, after, hi_sec as i32))
            .await
            .map_err(|e| QueryError::cassandra(what, e))?
            .rows_stream::<CatalogRow>()
            .map_err(|e| QueryError::cassandra(what, e))?;
        let mut out = Vec::new();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| QueryError::cassandra(what, e))?
        {
            let (table, name, host, bucket, width, first, last) = row;
            let Some(table) = LogTable::from_name(&table) else {
                continue;
            };
            if !filter.wants_stream(table, &name, &host) {
                continue;
            }
            let width = width.unwrap_or(86_400).clamp(1, 86_400);
            let start_ms = day * MS_PER_DAY + i64::from(bucket) * 1000;
            let end_ms = (start_ms + i64::from(width) * 1000).min((day + 1) * MS_PER_DAY);
            if end_ms <= lo || start_ms > hi {
                continue;
            }
            let ts = |t: Option<CqlTimestamp>, dflt: i64| {
                Timestamp::from_millisecond(t.map_or(dflt, |t| t.0))
                    .unwrap_or(Timestamp::UNIX_EPOCH)
            };
            out.push((
                Part {
                    table,
                    name,
                    host,
                    day: date.0,
                    bucket,
                    start_ms,
                    end_ms,
                },
                width,
                ts(first, start_ms),
                ts(last, end_ms - 1),
            ));
        }
        Ok(out)
    }

    /// Opens the read of one partition in `[lo, hi]`: one stream, or one per level at or
    /// above the filter's (SAI `level = ?`, newest-first only) when that is selective.
    async fn open(
        &self,
        part: &Part,
        order: Order,
        min_level: Option<Level>,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<Source>, QueryError> {
        let stmts = &self.inner.tables[&part.table];
        let base = (
            part.name.as_str(),
            part.host.as_str(),
            CqlDate(part.day),
            part.bucket,
            CqlTimestamp(lo.max(part.start_ms)),
            CqlTimestamp(hi.min(part.end_ms - 1)),
        );
        let what = || {
            format!(
                "reading {} partition ({}, {}, day {}, bucket {})",
                part.table.name(),
                part.name,
                part.host,
                i64::from(part.day) - (1_i64 << 31),
                part.bucket
            )
        };
        let levels: Vec<Level> = match (order, min_level) {
            (Order::Descending, Some(min)) if min >= Level::Warn => {
                Level::ALL.into_iter().filter(|l| *l >= min).collect()
            }
            _ => Vec::new(),
        };
        let pagers = if levels.is_empty() {
            let stmt = match order {
                Order::Ascending => &stmts.asc,
                Order::Descending => &stmts.desc,
            };
            vec![
                self.inner
                    .session
                    .execute_iter(stmt.clone(), base)
                    .await
                    .map_err(|e| QueryError::cassandra(what(), e))?,
            ]
        } else {
            let mut v = Vec::with_capacity(levels.len());
            for level in levels {
                let (a, b, c, d, e, f) = base;
                v.push(
                    self.inner
                        .session
                        .execute_iter(stmts.desc_level.clone(), (a, b, c, d, e, f, level.as_str()))
                        .await
                        .map_err(|e| QueryError::cassandra(what(), e))?,
                );
            }
            v
        };
        let mut out = Vec::with_capacity(pagers.len());
        for pager in pagers {
            out.push(typed(part.table, pager, what())?);
        }
        Ok(out)
    }

    /// Rows with this request id or trace id (SAI, every partition), filtered, sorted.
    async fn by_id(&self, filter: &Filter, order: Order) -> Result<Vec<LogRow>, QueryError> {
        let limit = self.inner.options.id_query_limit;
        let mut out = Vec::new();
        for &table in filter.tables.list() {
            let stmts = &self.inner.tables[&table];
            let (stmt, id, what) = match (&filter.request_id, &filter.trace_id) {
                (Some(id), _) => (&stmts.by_request, id, "request id"),
                (None, Some(id)) => (&stmts.by_trace, id, "trace id"),
                (None, None) => return Ok(Vec::new()),
            };
            let label = format!("reading {} by {what}", table.name());
            let pager = self
                .inner
                .session
                .execute_iter(stmt.clone(), (id.as_str(),))
                .await
                .map_err(|e| QueryError::cassandra(label.clone(), e))?;
            let mut rows = typed(table, pager, label)?;
            while let Some(row) = rows.next().await {
                let row = row?;
                if filter.matches(&row) {
                    out.push(row);
                    if out.len() > limit {
                        return Err(QueryError::TooManyRows {
                            what: format!("{what} {id:?}"),
                            limit,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| cmp_in(order, &a.position(), &b.position()));
        Ok(out)
    }
}

type Source = Pin<Box<dyn Stream<Item = Result<LogRow, QueryError>> + Send>>;

fn typed(
    table: LogTable,
    pager: scylla::client::pager::QueryPager,
    what: String,
) -> Result<Source, QueryError> {
    let w2 = what.clone();
    Ok(match table {
        LogTable::Infrastructure => Box::pin(
            pager
                .rows_stream::<InfraColumns>()
                .map_err(|e| QueryError::cassandra(what.clone(), e))?
                .map(move |r| {
                    r.map(LogRow::from)
                        .map_err(|e| QueryError::cassandra(w2.clone(), e))
                }),
        ),
        LogTable::Application => Box::pin(
            pager
                .rows_stream::<AppColumns>()
                .map_err(|e| QueryError::cassandra(what.clone(), e))?
                .map(move |r| {
                    r.map(LogRow::from)
                        .map_err(|e| QueryError::cassandra(w2.clone(), e))
                }),
        ),
    })
}

/// True when `row` comes strictly after the cursor position (always, without one).
fn is_after(order: Order, after: Option<Position>, row: &LogRow) -> bool {
    after.is_none_or(|p| cmp_in(order, &p, &row.position()) == Ordering::Less)
}

fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// An open partition read and its next row.
struct Head {
    row: LogRow,
    rest: Source,
    order: Order,
}

/// A partition's first row as a heap entry.
async fn first_head(mut rest: Source, order: Order) -> Result<Option<Head>, QueryError> {
    match rest.next().await {
        None => Ok(None),
        Some(row) => Ok(Some(Head {
            row: row?,
            rest,
            order,
        })),
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed: `BinaryHeap` pops its greatest, the merge wants the row that comes first.
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_in(self.order, &other.row.position(), &self.row.position())
    }
}

/// Work not yet opened: a day whose catalog is unread, or a partition not yet read.
/// `reach` is the first time (in the merge's order) it can hold.
#[derive(Debug)]
struct Pending {
    reach: i64,
    order: Order,
    item: PendingItem,
}

#[derive(Debug)]
enum PendingItem {
    Day(i64),
    Part(Part),
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_time = match self.order {
            Order::Ascending => other.reach.cmp(&self.reach),
            Order::Descending => self.reach.cmp(&other.reach),
        };
        // Days before partitions at the same reach, so a day is expanded first.
        by_time.then_with(|| {
            matches!(self.item, PendingItem::Day(_)).cmp(&matches!(other.item, PendingItem::Day(_)))
        })
    }
}

/// The merged, time-ordered rows of a query; pull them with [`next`](Self::next).
pub struct RowStream {
    reader: Reader,
    filter: Arc<Filter>,
    order: Order,
    after: Option<Position>,
    lo: i64,
    hi: i64,
    heap: BinaryHeap<Head>,
    pending: BinaryHeap<Pending>,
    /// Request/trace id queries: the sorted result, or `None` until read.
    by_id: Option<VecDeque<LogRow>>,
    started: bool,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("order", &self.order)
            .field("open", &self.heap.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl RowStream {
    fn new(reader: Reader, filter: Arc<Filter>, order: Order, after: Option<Position>) -> Self {
        let (mut lo, mut hi) = reader.bounds(&filter);
        if let Some(p) = after {
            match order {
                Order::Ascending => lo = lo.max(p.ts_ms),
                Order::Descending => hi = hi.min(p.ts_ms),
            }
        }
        RowStream {
            reader,
            filter,
            order,
            after,
            lo,
            hi,
            heap: BinaryHeap::new(),
            pending: BinaryHeap::new(),
            by_id: None,
            started: false,
        }
    }

    /// The next row in order, `None` at the end. Errors end the stream's usefulness: a
    /// caller that wants to go on starts a new stream after the last row it got.
    pub async fn next(&mut self) -> Result<Option<LogRow>, QueryError> {
        if self.filter.request_id.is_some() || self.filter.trace_id.is_some() {
            if self.by_id.is_none() {
                let rows = self.reader.by_id(&self.filter, self.order).await?;
                self.by_id = Some(rows.into());
            }
            let (order, after) = (self.order, self.after);
            let queue = self.by_id.as_mut().expect("set above");
            while let Some(row) = queue.pop_front() {
                if is_after(order, after, &row) {
                    return Ok(Some(row));
                }
            }
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            if self.lo <= self.hi {
                for day in day_of(self.lo)..=day_of(self.hi) {
                    let reach = match self.order {
                        Order::Ascending => day * MS_PER_DAY,
                        Order::Descending => (day + 1) * MS_PER_DAY - 1,
                    };
                    self.pending.push(Pending {
                        reach,
                        order: self.order,
                        item: PendingItem::Day(day),
                    });
                }
            }
        }
        loop {
            self.open_due().await?;
            let Some(head) = self.heap.pop() else {
                return Ok(None);
            };
            let Head {
                row,
                mut rest,
                order,
            } = head;
            if let Some(next) = rest.next().await {
                self.heap.push(Head {
                    row: next?,
                    rest,
                    order,
                });
            }
            if self.is_after(&row) && self.filter.matches(&row) {
                return Ok(Some(row));
            }
        }
    }

    fn is_after(&self, row: &LogRow) -> bool {
        is_after(self.order, self.after, row)
    }

    /// True when a pending item reaching `reach` may hold rows at or before `threshold`.
    fn due(&self, reach: i64, threshold: i64) -> bool {
        match self.order {
            Order::Ascending => reach <= threshold,
            Order::Descending => reach >= threshold,
        }
    }

    /// Expands due days and opens due partitions (concurrently, bounded), until the heap's
    /// top is a row no unopened partition can precede. With an empty heap, the first
    /// pending item and those at the same reach are due.
    async fn open_due(&mut self) -> Result<(), QueryError> {
        let cap = self.reader.inner.options.max_in_flight.max(1) * 4;
        loop {
            let mut parts = Vec::new();
            let mut days = Vec::new();
            let threshold = match (self.heap.peek(), self.pending.peek()) {
                (Some(top), _) => top.row.ts_ms,
                (None, Some(first)) => first.reach,
                (None, None) => return Ok(()),
            };
            while let Some(p) = self.pending.peek() {
                if !self.due(p.reach, threshold) || parts.len() >= cap {
                    break;
                }
                let p = self.pending.pop().expect("peeked");
                match p.item {
                    PendingItem::Day(d) => {
                        days.push(d);
                        // Its partitions may precede the rest: expand it first.
                        break;
                    }
                    PendingItem::Part(part) => parts.push(part),
                }
            }
            if parts.is_empty() && days.is_empty() {
                return Ok(());
            }
            for day in days {
                let found = self
                    .reader
                    .catalog_day(day, &self.filter, self.lo, self.hi)
                    .await?;
                for (part, ..) in found {
                    let reach = match self.order {
                        Order::Ascending => part.start_ms.max(self.lo),
                        Order::Descending => (part.end_ms - 1).min(self.hi),
                    };
                    self.pending.push(Pending {
                        reach,
                        order: self.order,
                        item: PendingItem::Part(part),
                    });
                }
            }
            let reader = &self.reader;
            let (order, lo, hi, min_level) = (self.order, self.lo, self.hi, self.filter.min_level);
            let opened: Vec<Result<Vec<Source>, QueryError>> = futures::stream::iter(parts)
                .map(|part| async move {
                    let sources = reader.open(&part, order, min_level, lo, hi).await?;
                    Ok(sources)
                })
                .buffer_unordered(self.reader.inner.options.max_in_flight.max(1))
                .collect()
                .await;
            let mut firsts = Vec::new();
            for sources in opened {
                firsts.extend(sources?);
            }
            // The futures are built first (they do nothing until polled) so the stream's
            // type holds no closure: with one, rustc could not prove the whole read
            // `Send` (a higher-ranked lifetime limit), and `logship serve` needs it.
            let firsts: Vec<_> = firsts
                .into_iter()
                .map(|rest| first_head(rest, order))
                .collect();
            let heads: Vec<Result<Option<Head>, QueryError>> = futures::stream::iter(firsts)
                .buffer_unordered(self.reader.inner.options.max_in_flight.max(1))
                .collect()
                .await;
            for head in heads {
                if let Some(h) = head? {
                    self.heap.push(h);
                }
            }
        }
    }
}

/// Follows a query (`logship query -f`, `GET /events/stream`): each [`poll`](Self::poll)
/// returns the matching rows that appeared since the last one, oldest first, each exactly
/// once, across bucket and day boundaries (the catalog is read afresh every poll).
///
/// Rows may land out of order (flush units, several hosts), so every poll re-reads the
/// last `lookback` before the newest row seen and skips ids already returned; a row
/// written more than `lookback` later than newer rows of the same query is missed.
#[derive(Debug)]
pub struct Follow {
    reader: Reader,
    filter: Filter,
    /// Rows are returned from here on (ms).
    watermark: i64,
    lookback_ms: i64,
    seen: HashMap<Uuid, i64>,
}

impl Follow {
    fn new(reader: Reader, filter: Filter) -> Follow {
        let watermark = filter
            .from
            .map_or_else(|| Timestamp::now().as_millisecond(), |t| t.as_millisecond());
        Follow {
            reader,
            filter,
            watermark,
            lookback_ms: 10_000,
            seen: HashMap::new(),
        }
    }

    /// How far back each poll re-reads for late rows (default 10 s).
    pub fn set_lookback(&mut self, lookback: Duration) {
        self.lookback_ms = lookback.as_millis() as i64;
    }

    /// Marks rows as already delivered (e.g. the `-n` rows printed before following), so
    /// polls skip them, and moves the start to the newest of them.
    pub fn already_seen<'a>(&mut self, rows: impl IntoIterator<Item = &'a LogRow>) {
        for r in rows {
            self.seen.insert(r.id, r.ts_ms);
            self.watermark = self.watermark.max(r.ts_ms);
        }
    }

    /// The rows that appeared since the last poll, oldest first.
    pub async fn poll(&mut self) -> Result<Vec<LogRow>, QueryError> {
        let mut filter = self.filter.clone();
        let start = self.watermark - self.lookback_ms;
        let from = self
            .filter
            .from
            .map_or(start, |f| f.as_millisecond().max(start));
        filter.from = Timestamp::from_millisecond(from).ok();
        let mut stream = self.reader.rows(&filter, Order::Ascending);
        let mut out = Vec::new();
        while let Some(row) = stream.next().await? {
            if self.seen.contains_key(&row.id) {
                continue;
            }
            self.seen.insert(row.id, row.ts_ms);
            self.watermark = self.watermark.max(row.ts_ms);
            out.push(row);
        }
        let keep_from = self.watermark - 2 * self.lookback_ms;
        self.seen.retain(|_, ts| *ts >= keep_from);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_what_they_did_not_make() {
        for order in [Order::Ascending, Order::Descending] {
            let c = Cursor {
                order,
                after: Position {
                    ts_ms: 1_717_246_800_123,
                    id: Uuid::new_v4(),
                },
            };
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
        for bad in [
            "",
            "x1_00000000000000000000000000000000",
            "a1",
            "a_abc",
            "dzz_1",
        ] {
            assert!(Cursor::decode(bad).unwrap_err().is_bad_input(), "{bad}");
        }
    }

    #[test]
    fn merge_order_matches_the_clustering_order_read_either_way() {
        let p = |ts_ms, id: u128| Position {
            ts_ms,
            id: uuid::Builder::from_u128(id)
                .with_version(uuid::Version::Random)
                .into_uuid(),
        };
        let (a, b, c) = (p(1, 1), p(1, 2), p(2, 0));
        // Storage order is (ts DESC, id ASC).
        let mut v = vec![a, b, c];
        v.sort_by(|x, y| cmp_in(Order::Descending, x, y));
        assert_eq!(v, [c, a, b]);
        v.sort_by(|x, y| cmp_in(Order::Ascending, x, y));
        assert_eq!(v, [b, a, c]);
    }
}

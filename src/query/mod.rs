//! Reading logs back (issue 12): the read core behind `logship query` and `logship serve`.
//!
//! The sink records every partition it writes in a small catalog table
//! ([`crate::sink::catalog`]), before the partition's first rows. A query reads the
//! catalog for the days its time range touches, keeps the partitions whose stream
//! (table, source or service, host) and bucket match, and reads them with bounded
//! concurrency, merging their rows k-way by `(ts, id)` into one time-ordered stream.
//! Every read names a whole partition key (plus an SAI `level = ?` when that is selective);
//! request-id and trace-id queries go through their SAI indexes. There is no
//! `ALLOW FILTERING` anywhere: message, field and host filters are applied to the rows read.
//!
//! Entry points, all on [`Reader`]:
//! - [`Reader::rows`]: a [`RowStream`] of every matching row, in either order;
//! - [`Reader::page`] / [`Cursor`]: pages with a resumable cursor (the HTTP API);
//! - [`Reader::newest`]: the newest N rows, oldest first (`-n`);
//! - [`Reader::counts`]: rows per level per source per interval (`--count --by level`);
//! - [`Reader::streams`]: the streams seen in a range (`--list-sources`);
//! - [`Reader::follow`]: a [`Follow`] returning new rows each poll, each once (`-f`).

pub mod error;
pub mod filter;
pub mod reader;
pub mod row;

pub use error::QueryError;
pub use filter::{Filter, Order, Tables, parse_field, parse_level, parse_regex, parse_time};
pub use reader::{Count, Cursor, Follow, Page, ReadOptions, Reader, RowStream, StreamInfo};
pub use row::{LogRow, LogTable, Position};

//! PostgreSQL server logs: stderr with any `log_line_prefix`, `csvlog` and `jsonlog`.
//!
//! The three formats give the same field names where they carry the same value (`pid`,
//! `user`, `database`, `sql_state`, `detail`, `statement`, ...), and timestamps printed with
//! a zone abbreviation are resolved to instants with PostgreSQL's own abbreviation table.

mod csv;
mod fields;
mod json;
mod prefix;
#[cfg(test)]
mod proptests;
mod severity;
mod stderr;
mod timestamp;
mod zone;

pub use csv::CsvParser;
pub use json::JsonParser;
pub use stderr::StderrParser;

/// PostgreSQL's default `log_line_prefix`.
pub const DEFAULT_PREFIX: &str = "%m [%p] ";

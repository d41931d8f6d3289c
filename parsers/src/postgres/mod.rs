//! PostgreSQL server logs: stderr with any `log_line_prefix`, `csvlog` and `jsonlog`.

mod csv;
mod json;
mod stderr;

pub use csv::CsvParser;
pub use json::JsonParser;
pub use stderr::StderrParser;

/// PostgreSQL's default `log_line_prefix`.
pub const DEFAULT_PREFIX: &str = "%m [%p] ";

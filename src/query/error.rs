//! What can go wrong reading logs back.

/// An error of a query: a bad filter (the caller's fault: exit 2, HTTP 400) or Cassandra
/// failing to answer (exit 1, HTTP 502).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A filter value cannot be understood (a time, a level, a regex, `key=value`).
    #[error("bad {what}: {reason}")]
    BadFilter {
        /// Which filter: `time`, `level`, `regex`, `field`, ...
        what: &'static str,
        /// Why the value was refused, quoting it.
        reason: String,
    },

    /// A paging cursor that this version did not hand out, or that belongs to another query.
    #[error("bad cursor: {0}")]
    BadCursor(String),

    /// A request/trace id query matched more rows than a query holds in memory.
    #[error("{what} matches more than {limit} rows; narrow it with a time range or a source")]
    TooManyRows {
        /// The id query, e.g. `request_id "abc"`.
        what: String,
        /// The most rows such a query holds.
        limit: usize,
    },

    /// Connecting failed (unreachable, login, TLS, config).
    #[error(transparent)]
    Connect(#[from] crate::sink::SinkError),

    /// Cassandra refused or failed a read.
    #[error("Cassandra failed {what}: {reason}")]
    Cassandra {
        /// The read that failed (the table or statement).
        what: String,
        /// The driver's error, in its words.
        reason: String,
    },
}

impl QueryError {
    /// True when the caller's input is at fault (exit 2 / HTTP 400), not Cassandra.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            QueryError::BadFilter { .. }
                | QueryError::BadCursor(_)
                | QueryError::TooManyRows { .. }
        )
    }

    pub(crate) fn cassandra(what: impl Into<String>, reason: impl std::fmt::Display) -> QueryError {
        QueryError::Cassandra {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

//! Which failures are worth another attempt, and how long to wait before it.

use std::time::Duration;

use rand::Rng;
use scylla::errors::{BadQuery, DbError, ExecutionError, RequestAttemptError};

use super::config::RetryConfig;
use super::session::describe_execution_error;

/// What a failed write means for its rows. Every variant carries the reason, in words an
/// operator can act on (for Cassandra, [`describe_execution_error`]'s text).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The output is slow or overloaded, but answered: try the same rows again later.
    Retry(String),
    /// No node (or no output) could be reached at all: try again later; the sink counts as
    /// disconnected until a write reaches it.
    Unreachable(String),
    /// Cassandra will never accept this row as it is: dead-letter it.
    Reject(String),
    /// Nothing will be accepted until an operator acts (permissions, schema): stop.
    Fatal(String),
}

impl Failure {
    /// The reason given by the output.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Retry(r)
            | Failure::Unreachable(r)
            | Failure::Reject(r)
            | Failure::Fatal(r) => r,
        }
    }
}

/// A row (an index into the unit) that one attempt did not write, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// Index of the row in the unit handed to the sink.
    pub index: usize,
    /// What the failure means for the row.
    pub failure: Failure,
}

/// Classifies a driver error by its kind.
pub(crate) fn classify(e: &ExecutionError) -> Failure {
    let reason = describe_execution_error(e);
    match e {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, msg)) => {
            classify_db(db, msg, reason)
        }
        ExecutionError::LastAttemptError(
            RequestAttemptError::SerializationError(_)
            | RequestAttemptError::CqlRequestSerialization(_),
        ) => Failure::Reject(reason),
        ExecutionError::BadQuery(
            BadQuery::SerializationError(_)
            | BadQuery::ValuesTooLongForKey(..)
            | BadQuery::PartitionKeyExtraction,
        ) => Failure::Reject(reason),
        ExecutionError::BadQuery(_) => Failure::Fatal(reason),
        // No connection to any node: nothing reached the cluster.
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            Failure::Unreachable(reason)
        }
        ExecutionError::LastAttemptError(
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId,
        ) => Failure::Unreachable(reason),
        // Client timeouts, a node restarting, an odd answer: transient.
        _ => Failure::Retry(reason),
    }
}

fn classify_db(db: &DbError, msg: &str, reason: String) -> Failure {
    match db {
        DbError::WriteTimeout { .. }
        | DbError::ReadTimeout { .. }
        | DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::TruncateError
        | DbError::RateLimitReached { .. }
        | DbError::Unprepared { .. } => Failure::Retry(reason),
        // A table or keyspace that vanished makes every row "invalid": that is an
        // operator's problem, not a reason to dead-letter the whole stream.
        DbError::Invalid if schema_missing(msg) => Failure::Fatal(reason),
        DbError::Invalid => Failure::Reject(reason),
        DbError::WriteFailure { .. } | DbError::ServerError if too_large(msg) => {
            Failure::Reject(reason)
        }
        DbError::WriteFailure { .. } | DbError::ServerError => Failure::Retry(reason),
        DbError::SyntaxError
        | DbError::Unauthorized
        | DbError::AuthenticationError
        | DbError::ConfigError
        | DbError::AlreadyExists { .. }
        | DbError::FunctionFailure { .. } => Failure::Fatal(reason),
        _ => Failure::Retry(reason),
    }
}

fn schema_missing(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("unconfigured table")
        || m.contains("does not exist")
        || m.contains("undefined column")
}

fn too_large(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("too large") || m.contains("exceeds") || m.contains("too long")
}

/// Exponential backoff with "equal jitter": each wait is half the current step plus a
/// random part of the other half, so writers that failed together do not retry in step,
/// and no wait collapses to zero. The one backoff of the code base (the drain loop's).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `initial_backoff` and growing to `max_backoff`.
    pub fn new(config: &RetryConfig) -> Backoff {
        Backoff {
            initial: config.initial_backoff.max(Duration::from_millis(1)),
            max: config.max_backoff.max(config.initial_backoff),
            attempt: 0,
        }
    }

    /// The wait before the next attempt; each call doubles the step up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .initial
            .saturating_mul(1_u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let jitter = rand::rng().random_range(0..=half.as_micros().max(1) as u64);
        half + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter_in_range() {
        let config = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(&config);
        let steps = [100, 200, 400, 800, 1600, 2000, 2000];
        for step in steps {
            let d = b.next_delay();
            let step = Duration::from_millis(step);
            assert!(
                d >= step / 2 && d <= step + Duration::from_micros(1),
                "{d:?} for {step:?}"
            );
        }
    }

    #[test]
    fn timeouts_retry_invalid_rows_are_rejected_and_permissions_are_fatal() {
        let db = |e: DbError, msg: &str| {
            classify(&ExecutionError::LastAttemptError(
                RequestAttemptError::DbError(e, msg.to_owned()),
            ))
        };
        assert!(matches!(db(DbError::Overloaded, "busy"), Failure::Retry(_)));
        assert!(matches!(
            db(DbError::Invalid, "Map key is too long"),
            Failure::Reject(_)
        ));
        assert!(matches!(
            db(DbError::Invalid, "unconfigured table infrastructure_logs"),
            Failure::Fatal(_)
        ));
        assert!(matches!(
            db(DbError::Unauthorized, "no MODIFY"),
            Failure::Fatal(_)
        ));
        assert!(matches!(
            db(DbError::ServerError, "Mutation of 20MiB is too large"),
            Failure::Reject(_)
        ));
        assert!(matches!(
            classify(&ExecutionError::RequestTimeout(Duration::from_secs(1))),
            Failure::Retry(_)
        ));
    }
}

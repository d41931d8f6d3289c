//! Which failures are worth another attempt, and how long to wait before it.

use std::time::Duration;

use rand::Rng;
use scylla::errors::{BadQuery, DbError, ExecutionError, PrepareError, RequestAttemptError};

use super::config::RetryConfig;
use super::error::SinkError;
use super::session::describe_execution_error;

/// What a failed write means for its rows. Every variant carries the reason, in words an
/// operator can act on (for Cassandra, `describe_execution_error`'s text).
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

impl RowFailure {
    /// The same failure for every row of `rows` (indexes into the unit).
    pub fn all(rows: impl IntoIterator<Item = usize>, failure: &Failure) -> Vec<RowFailure> {
        rows.into_iter()
            .map(|index| RowFailure {
                index,
                failure: failure.clone(),
            })
            .collect()
    }
}

/// Classifies a driver error by its kind, never by its message text. Every kind the
/// driver has today is named, so a new one (the enums are `#[non_exhaustive]`) is a
/// deliberate choice: unknown kinds are retried, which holds the unit rather than losing it.
pub(crate) fn classify(e: &ExecutionError) -> Failure {
    let reason = describe_execution_error(e);
    match e {
        ExecutionError::LastAttemptError(attempt) => classify_attempt(attempt, reason),
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
        // The client's own limit passed: the cluster is slow, not gone.
        ExecutionError::RequestTimeout(_)
        | ExecutionError::PrepareError(_)
        | ExecutionError::UseKeyspaceError(_)
        | ExecutionError::SchemaAgreementError(_)
        | ExecutionError::MetadataError(_) => Failure::Retry(reason),
        _ => Failure::Retry(reason),
    }
}

fn classify_attempt(e: &RequestAttemptError, reason: String) -> Failure {
    match e {
        RequestAttemptError::DbError(db, _) => classify_db(db, reason),
        RequestAttemptError::SerializationError(_)
        | RequestAttemptError::CqlRequestSerialization(_) => Failure::Reject(reason),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => Failure::Unreachable(reason),
        RequestAttemptError::BodyExtensionsParseError(_)
        | RequestAttemptError::CqlResultParseError(_)
        | RequestAttemptError::CqlErrorParseError(_)
        | RequestAttemptError::UnexpectedResponse(_)
        | RequestAttemptError::RepreparedIdChanged { .. } => Failure::Retry(reason),
        _ => Failure::Retry(reason),
    }
}

fn classify_db(db: &DbError, reason: String) -> Failure {
    match db {
        DbError::WriteTimeout { .. }
        | DbError::ReadTimeout { .. }
        | DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::TruncateError
        | DbError::RateLimitReached { .. }
        | DbError::Unprepared { .. }
        | DbError::ReadFailure { .. }
        | DbError::WriteFailure { .. }
        | DbError::ServerError
        | DbError::ProtocolError
        | DbError::Other(_) => Failure::Retry(reason),
        // This row's values are refused. A table that vanished makes every row "invalid":
        // the Cassandra sink checks the schema before dead-lettering (`Sink::attempt`).
        DbError::Invalid => Failure::Reject(reason),
        DbError::SyntaxError
        | DbError::Unauthorized
        | DbError::AuthenticationError
        | DbError::ConfigError
        | DbError::AlreadyExists { .. }
        | DbError::FunctionFailure { .. } => Failure::Fatal(reason),
        _ => Failure::Retry(reason),
    }
}

/// What a failed `prepare` of logship's own INSERT means. The statement is valid CQL, so
/// an `Invalid` answer says the keyspace, table or a column is not what logship writes.
pub(crate) fn classify_prepare(e: &PrepareError, keyspace: &str, table: &str) -> SinkError {
    let reason = e.to_string();
    let what = || format!("the insert into {keyspace}.{table}");
    let attempt = match e {
        PrepareError::AllAttemptsFailed { first_attempt } => first_attempt,
        PrepareError::ConnectionPoolError(_) => {
            return SinkError::Unreachable {
                contact_points: "the cluster".to_owned(),
                reason,
            };
        }
        _ => {
            return SinkError::Refused {
                what: what(),
                reason,
            };
        }
    };
    match classify_attempt(attempt, reason.clone()) {
        Failure::Unreachable(_) => SinkError::Unreachable {
            contact_points: "the cluster".to_owned(),
            reason,
        },
        Failure::Reject(_) => SinkError::Schema {
            what: format!("table {keyspace}.{table} is missing or outdated"),
            reason,
        },
        _ => SinkError::Refused {
            what: what(),
            reason,
        },
    }
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
        // The message text never decides: the same words under another kind retry.
        assert!(matches!(
            db(DbError::ServerError, "Mutation of 20MiB is too large"),
            Failure::Retry(_)
        ));
        assert!(matches!(
            db(DbError::Unauthorized, "no MODIFY"),
            Failure::Fatal(_)
        ));
        assert!(matches!(
            db(
                DbError::Unavailable {
                    consistency: scylla::statement::Consistency::LocalQuorum,
                    required: 2,
                    alive: 1
                },
                "cannot achieve consistency"
            ),
            Failure::Retry(_)
        ));
        assert!(matches!(
            classify(&ExecutionError::RequestTimeout(Duration::from_secs(1))),
            Failure::Retry(_)
        ));
        assert!(matches!(
            classify(&ExecutionError::EmptyPlan),
            Failure::Unreachable(_)
        ));
    }

    #[test]
    fn a_prepare_refused_as_invalid_is_a_schema_error_by_kind() {
        let e = PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(DbError::Invalid, "whatever".into()),
        };
        assert!(matches!(
            classify_prepare(&e, "ks", "infrastructure_logs"),
            SinkError::Schema { .. }
        ));
        let e = PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(DbError::Unauthorized, "no".into()),
        };
        assert!(matches!(
            classify_prepare(&e, "ks", "infrastructure_logs"),
            SinkError::Refused { .. }
        ));
    }
}

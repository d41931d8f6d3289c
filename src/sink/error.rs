//! What can go wrong between logship and Cassandra, in words an operator can act on.

use std::path::PathBuf;

/// An error of the sink: connecting, applying the schema or writing.
///
/// Messages are one line and name the contact point or the table, so `{:#}` printed once by
/// `main` tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The configuration cannot work (bad TLS files, unreadable password file, ...).
    #[error("cassandra config: {0}")]
    Config(String),

    /// No contact point answered.
    #[error("cannot reach Cassandra at {contact_points}: {reason}")]
    Unreachable {
        contact_points: String,
        reason: String,
    },

    /// The cluster refused the credentials.
    #[error("Cassandra at {contact_points} refused the login of user {user:?}: {reason}")]
    Authentication {
        contact_points: String,
        user: String,
        reason: String,
    },

    /// A TLS handshake or certificate check failed.
    #[error("TLS to Cassandra at {contact_points} failed: {reason}")]
    Tls {
        contact_points: String,
        reason: String,
    },

    /// The keyspace or a table is missing or has another shape than logship writes.
    #[error("{what} (run `logship schema apply`): {reason}")]
    Schema { what: String, reason: String },

    /// Cassandra refused a statement for a reason that retrying cannot fix (permissions,
    /// syntax); the unit is not acknowledged.
    #[error("Cassandra refused {what}: {reason}")]
    Refused { what: String, reason: String },

    /// The write was abandoned because shutdown's deadline passed; the rows not written
    /// are not acknowledged, so file sources read them again at the next start.
    #[error("gave up writing {unwritten} of {total} rows: the shutdown deadline passed")]
    Stopped { unwritten: usize, total: usize },

    /// The dead-letter file could not be written, so a rejected record would be lost.
    #[error("cannot write the dead-letter file {}", path.display())]
    DeadLetter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A local output (the file sink) cannot be written.
    #[error("{what} {}", path.display())]
    Output {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

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
        /// The contact points tried, comma-separated.
        contact_points: String,
        /// The driver's last error, in its words.
        reason: String,
    },

    /// The cluster refused the credentials, or needs a login and none is configured
    /// (`user` is then empty).
    #[error("Cassandra at {contact_points} refused the login of user {user:?}: {reason}")]
    Authentication {
        /// The contact points tried, comma-separated.
        contact_points: String,
        /// The user logship logged in as.
        user: String,
        /// The server's answer.
        reason: String,
    },

    /// A TLS handshake or certificate check failed.
    #[error("TLS to Cassandra at {contact_points} failed: {reason}")]
    Tls {
        /// The contact points tried, comma-separated.
        contact_points: String,
        /// What the handshake or the certificate check said.
        reason: String,
    },

    /// The keyspace or a table is missing or has another shape than logship writes.
    #[error("{what} (run `logship schema apply`): {reason}")]
    Schema {
        /// What is missing, e.g. `keyspace logs lacks table application_logs`.
        what: String,
        /// Cassandra's answer.
        reason: String,
    },

    /// Cassandra refused a statement for a reason that retrying cannot fix (permissions,
    /// syntax); the unit is not acknowledged.
    #[error("Cassandra refused {what}: {reason}")]
    Refused {
        /// The statement or write refused.
        what: String,
        /// Cassandra's answer.
        reason: String,
    },

    /// The write was abandoned because shutdown's deadline passed; the rows not written
    /// are not acknowledged, so file sources read them again at the next start.
    #[error("gave up writing {unwritten} of {total} rows: the shutdown deadline passed")]
    Deadline {
        /// Rows of the unit not acknowledged.
        unwritten: usize,
        /// Rows in the unit.
        total: usize,
    },

    /// The dead-letter file could not be written, so a rejected record would be lost.
    #[error("cannot write the dead-letter file {}", path.display())]
    DeadLetter {
        /// The dead-letter file.
        path: PathBuf,
        /// Why writing it failed.
        #[source]
        source: std::io::Error,
    },

    /// A local output (the file sink) cannot be written.
    #[error("{what} {}", path.display())]
    Output {
        /// What failed, e.g. `cannot fsync the output file`.
        what: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

//! Opening the driver session: contact points, DC-aware routing, credentials, TLS, and
//! connect errors that say in one line which node refused what.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, ExecutionError,
    MetadataError, NewSessionError, RequestAttemptError,
};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;

use super::config::{CassandraConfig, TlsConfig};
use super::error::SinkError;

/// Connects to the cluster. Fails fast with a one-line error naming the contact points
/// when none answers, the login is refused or TLS fails.
pub async fn connect(config: &CassandraConfig) -> Result<Session, SinkError> {
    if config.contact_points.is_empty() {
        return Err(SinkError::Config("contact_points is empty".to_owned()));
    }
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &config.local_datacenter {
        policy = policy
            .prefer_datacenter(dc.clone())
            .permit_dc_failover(false);
    }
    // The drain loop retries (pipeline/drain.rs, with retry.rs's classification and
    // backoff) behind its breaker; a driver retry underneath would multiply attempts and
    // hide failures from the breaker.
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency.to_driver())
        .request_timeout(Some(config.request_timeout))
        .load_balancing_policy(policy.build())
        .retry_policy(Arc::new(FallthroughRetryPolicy))
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(config.endpoints())
        .connection_timeout(config.connect_timeout)
        // Only what routing needs (the keyspace's replication, tables, partitioners): the
        // full schema of every keyspace costs a dozen more sequential round trips, so
        // through a slow network (0.2-2 s per answer) a session never finished connecting.
        .keyspaces_to_fetch([config.keyspace.clone()])
        .fetch_full_schema_metadata(false)
        .default_execution_profile_handle(profile.into_handle());
    if let Some(user) = &config.username {
        let password = read_password(config)?;
        builder = builder.user(user.clone(), password);
    } else if config.password_file.is_some() {
        return Err(SinkError::Config(
            "password_file is set but username is not".to_owned(),
        ));
    }
    if let Some(tls) = &config.tls {
        builder = builder.tls_context(Some(tls_context(tls)?));
    }
    // The first connection (connect_timeout) and then the metadata queries, each an
    // ordinary request: a slow cluster gets time to answer them, a hung one still fails.
    let timeout = config.connect_timeout + config.request_timeout * 4;
    let session = tokio::time::timeout(timeout, builder.build())
        .await
        .map_err(|_| SinkError::Unreachable {
            contact_points: config.endpoints_display(),
            reason: format!("no answer within {} s", timeout.as_secs()),
        })?
        .map_err(|e| describe_connect_error(config, &e))?;
    Ok(session)
}

fn read_password(config: &CassandraConfig) -> Result<String, SinkError> {
    let Some(path) = &config.password_file else {
        return Err(SinkError::Config(
            "username is set but password_file is not".to_owned(),
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        SinkError::Config(format!("cannot read password_file {}: {e}", path.display()))
    })?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(SinkError::Config(format!(
            "password_file {} is empty",
            path.display()
        )));
    }
    Ok(password.to_owned())
}

/// A rustls client config trusting `ca_file`, with a client identity when given.
/// Nodes are checked against their IP address (the driver's `ServerName`), so their
/// certificates need `SAN=IP:<address>`.
fn tls_context(tls: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, SinkError> {
    let Some(ca_file) = &tls.ca_file else {
        return Err(SinkError::Config(
            "tls.ca_file is required: the PEM CA (or node certificate) that signs the nodes"
                .to_owned(),
        ));
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| SinkError::Config(format!("cannot read {}: {e}", path.display())))
    };
    let ca_pem = read(ca_file)?;
    let mut roots = rustls::RootCertStore::empty();
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert =
            cert.map_err(|e| SinkError::Config(format!("tls.ca_file {}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| SinkError::Config(format!("tls.ca_file {}: {e}", ca_file.display())))?;
        added += 1;
    }
    if added == 0 {
        return Err(SinkError::Config(format!(
            "tls.ca_file {} holds no PEM certificate",
            ca_file.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certs = CertificateDer::pem_slice_iter(&read(cert_file)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    SinkError::Config(format!("tls.cert_file {}: {e}", cert_file.display()))
                })?;
            let key = PrivateKeyDer::from_pem_slice(&read(key_file)?).map_err(|e| {
                SinkError::Config(format!("tls.key_file {}: {e}", key_file.display()))
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| SinkError::Config(format!("TLS client certificate: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(SinkError::Config(
                "tls.cert_file and tls.key_file go together".to_owned(),
            ));
        }
    };
    Ok(Arc::new(config))
}

/// Sorts a connect failure into unreachable / authentication / TLS, with the driver's
/// innermost reason.
fn describe_connect_error(config: &CassandraConfig, e: &NewSessionError) -> SinkError {
    let contact_points = config.endpoints_display();
    let reason = match e {
        NewSessionError::MetadataError(MetadataError::ConnectionPoolError(pool)) => {
            match pool_cause(pool) {
                Some(conn) => return classify_connection_error(config, conn),
                None => pool.to_string(),
            }
        }
        other => other.to_string(),
    };
    SinkError::Unreachable {
        contact_points,
        reason: one_line(&reason),
    }
}

fn pool_cause(pool: &ConnectionPoolError) -> Option<&ConnectionError> {
    match pool {
        ConnectionPoolError::Broken {
            last_connection_error,
        } => Some(last_connection_error),
        _ => None,
    }
}

fn classify_connection_error(config: &CassandraConfig, e: &ConnectionError) -> SinkError {
    let contact_points = config.endpoints_display();
    let reason = one_line(&e.to_string());
    match connection_failure(e, config.tls.is_some()) {
        ConnectFailure::Authentication => SinkError::Authentication {
            contact_points,
            user: config.username.clone().unwrap_or_default(),
            reason,
        },
        ConnectFailure::Tls => SinkError::Tls {
            contact_points,
            reason,
        },
        ConnectFailure::Unreachable => SinkError::Unreachable {
            contact_points,
            reason,
        },
    }
}

/// What a failed connection means for the operator: only `Unreachable` is worth retrying;
/// credentials and TLS settings do not fix themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectFailure {
    /// No answer, a refused or broken connection, a node erring while it starts.
    Unreachable,
    /// The login was refused, required but not configured, or could not be completed.
    Authentication,
    /// The TLS handshake or the certificate check failed.
    Tls,
}

/// Sorts a connection error by the driver's kinds. `tls`: the session uses TLS, so an
/// I/O error while connecting is the handshake's.
fn connection_failure(e: &ConnectionError, tls: bool) -> ConnectFailure {
    match e {
        ConnectionError::IoError(io) => io_failure(io, tls),
        ConnectionError::ConnectionSetupRequestError(setup) => setup_failure(setup.get_error()),
        ConnectionError::ConnectTimeout
        | ConnectionError::NoSourcePortForShard(_)
        | ConnectionError::TranslationError(_)
        | ConnectionError::BrokenConnection(_)
        | ConnectionError::UseKeyspaceError(_) => ConnectFailure::Unreachable,
        // A kind a newer driver adds: retrying is the safe default.
        _ => ConnectFailure::Unreachable,
    }
}

/// An I/O error while opening a connection: the TCP connect or, with TLS, the handshake.
/// rustls reports a failed handshake or certificate check as an `InvalidData` error
/// carrying its `rustls::Error` (tokio-rustls), and a peer that hangs up mid-handshake
/// (a node without client encryption) as `UnexpectedEof`.
fn io_failure(e: &std::io::Error, tls: bool) -> ConnectFailure {
    let from_rustls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    if from_rustls || (tls && e.kind() == std::io::ErrorKind::UnexpectedEof) {
        ConnectFailure::Tls
    } else {
        ConnectFailure::Unreachable
    }
}

/// A request that sets up a connection (OPTIONS, STARTUP, the login exchange) failed.
fn setup_failure(kind: &ConnectionSetupRequestErrorKind) -> ConnectFailure {
    use ConnectionSetupRequestErrorKind as K;
    match kind {
        K::DbError(DbError::AuthenticationError, _)
        | K::MissingAuthentication
        | K::StartAuthSessionError(_)
        | K::AuthChallengeEvaluationError(_)
        | K::AuthFinishError(_)
        | K::CqlAuthenticateParseError(_)
        | K::CqlAuthSuccessParseError(_)
        | K::CqlAuthChallengeParseError(_) => ConnectFailure::Authentication,
        K::DbError(..)
        | K::CqlRequestSerialization(_)
        | K::BodyExtensionsParseError(_)
        | K::UnableToAllocStreamId
        | K::BrokenConnection(_)
        | K::UnexpectedResponse(_)
        | K::CqlSupportedParseError(_)
        | K::CqlErrorParseError(_) => ConnectFailure::Unreachable,
        // A kind a newer driver adds: retrying is the safe default.
        _ => ConnectFailure::Unreachable,
    }
}

/// The reason Cassandra (or the driver) gave, on one line.
pub(crate) fn describe_execution_error(e: &ExecutionError) -> String {
    match e {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, msg)) => {
            one_line(&format!("{}: {msg}", db_error_name(db)))
        }
        other => one_line(&other.to_string()),
    }
}

/// `describe_execution_error` for a request to the nodes at `contact_points`
/// (`CassandraConfig::endpoints_display`): when no node could be reached at all (a broken
/// connection pool, an empty plan) the driver's text names no address, so this one does,
/// e.g. "cannot reach Cassandra at 127.0.0.1:9142: No connections in the pool: ...".
/// Other errors already say which replicas answered; they are left as they are.
pub fn describe_execution_error_at(e: &ExecutionError, contact_points: &str) -> String {
    let reason = describe_execution_error(e);
    match e {
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => {
            format!("cannot reach Cassandra at {contact_points}: {reason}")
        }
        _ => reason,
    }
}

fn db_error_name(db: &DbError) -> &'static str {
    match db {
        DbError::SyntaxError => "syntax error",
        DbError::Invalid => "invalid request",
        DbError::AlreadyExists { .. } => "already exists",
        DbError::Unauthorized => "unauthorized",
        DbError::AuthenticationError => "authentication failed",
        DbError::Unavailable { .. } => "unavailable",
        DbError::Overloaded => "overloaded",
        DbError::WriteTimeout { .. } => "write timeout",
        DbError::ReadTimeout { .. } => "read timeout",
        DbError::WriteFailure { .. } => "write failure",
        DbError::ServerError => "server error",
        DbError::ConfigError => "config error",
        DbError::IsBootstrapping => "node bootstrapping",
        _ => "error",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn an_unreachable_cluster_is_named_by_its_address() {
        let refused = ConnectionError::IoError(Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        let e = ExecutionError::ConnectionPoolError(ConnectionPoolError::Broken {
            last_connection_error: refused,
        });
        let text = describe_execution_error_at(&e, "127.0.0.1:9142");
        assert!(
            text.starts_with("cannot reach Cassandra at 127.0.0.1:9142: "),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line: {text}");
        let plan =
            describe_execution_error_at(&ExecutionError::EmptyPlan, "10.0.0.1:9042, 10.0.0.2:9042");
        assert!(plan.contains("10.0.0.1:9042, 10.0.0.2:9042"), "{plan}");
    }

    #[test]
    fn errors_from_a_reachable_cluster_are_left_as_the_driver_said() {
        let e = ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Unavailable {
                consistency: scylla::statement::Consistency::LocalQuorum,
                required: 2,
                alive: 1,
            },
            "Cannot achieve consistency level LOCAL_QUORUM".to_owned(),
        ));
        let text = describe_execution_error_at(&e, "127.0.0.1:9042");
        assert_eq!(text, describe_execution_error(&e));
        assert!(text.starts_with("unavailable: "), "{text}");
    }

    fn io(kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::from(kind)
    }

    fn rustls_io(e: rustls::Error) -> std::io::Error {
        // What tokio-rustls returns when the handshake fails.
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn a_refused_or_timed_out_connection_is_unreachable() {
        use std::io::ErrorKind;
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::TimedOut,
            ErrorKind::HostUnreachable,
        ] {
            let e = ConnectionError::IoError(Arc::new(io(kind)));
            assert_eq!(
                connection_failure(&e, true),
                ConnectFailure::Unreachable,
                "{kind:?}"
            );
        }
        assert_eq!(
            connection_failure(&ConnectionError::ConnectTimeout, false),
            ConnectFailure::Unreachable
        );
        assert_eq!(
            connection_failure(&ConnectionError::NoSourcePortForShard(1), false),
            ConnectFailure::Unreachable
        );
    }

    #[test]
    fn a_failed_certificate_check_or_handshake_is_tls() {
        let unknown_ca = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let e = ConnectionError::IoError(Arc::new(rustls_io(unknown_ca)));
        assert_eq!(connection_failure(&e, true), ConnectFailure::Tls);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(io_failure(&rustls_io(alert), true), ConnectFailure::Tls);
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert_eq!(io_failure(&rustls_io(name), true), ConnectFailure::Tls);
    }

    #[test]
    fn a_hang_up_during_the_handshake_is_tls_only_when_tls_is_on() {
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert_eq!(io_failure(&eof, true), ConnectFailure::Tls);
        let eof = io(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(io_failure(&eof, false), ConnectFailure::Unreachable);
        // Invalid data that is not rustls's (no TLS at all) is not a TLS failure.
        let garbage = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad frame");
        assert_eq!(io_failure(&garbage, false), ConnectFailure::Unreachable);
    }

    #[test]
    fn a_refused_missing_or_unfinished_login_is_authentication() {
        use ConnectionSetupRequestErrorKind as K;
        let refused = K::DbError(
            DbError::AuthenticationError,
            "Provided username logship and/or password are incorrect".to_owned(),
        );
        assert_eq!(setup_failure(&refused), ConnectFailure::Authentication);
        assert_eq!(
            setup_failure(&K::MissingAuthentication),
            ConnectFailure::Authentication
        );
        for kind in [
            K::StartAuthSessionError("no such mechanism".to_owned()),
            K::AuthChallengeEvaluationError("bad challenge".to_owned()),
            K::AuthFinishError("bad token".to_owned()),
        ] {
            assert_eq!(
                setup_failure(&kind),
                ConnectFailure::Authentication,
                "{kind}"
            );
        }
    }

    #[test]
    fn a_node_erring_while_it_starts_is_unreachable() {
        use ConnectionSetupRequestErrorKind as K;
        for kind in [
            K::DbError(DbError::IsBootstrapping, "bootstrapping".to_owned()),
            K::DbError(DbError::ServerError, "internal".to_owned()),
            K::DbError(DbError::Overloaded, "overloaded".to_owned()),
            K::UnableToAllocStreamId,
        ] {
            assert_eq!(setup_failure(&kind), ConnectFailure::Unreachable, "{kind}");
        }
    }
}

//! Connect errors sorted by the driver's error kinds, against the real nodes: a CA that
//! did not sign the node and TLS to a plain node are TLS errors, a login the node needs
//! but is not given is an authentication error. (A wrong password: tests/sink_secure.rs.)

mod support;

use std::process::Command;
use std::time::Duration;

use logship::sink::{CassandraConfig, CassandraSink, SinkError, SinkOptions, TlsConfig};
use support::cassandra::{default_node, secure_node};

async fn connect_err(config: &CassandraConfig) -> (SinkError, String) {
    let err = CassandraSink::connect(config, SinkOptions::default())
        .await
        .expect_err("the connection must be refused");
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "not one line: {text}");
    (err, text)
}

/// A self-signed certificate of a CA that signed nothing the nodes hold, made with the
/// JDK's keytool (the one `scripts/cassandra` uses for the secure node).
fn other_ca(dir: &std::path::Path) -> std::path::PathBuf {
    let store = dir.join("other.p12");
    let pem = dir.join("other-ca.pem");
    let run = |args: &[&str]| {
        let out = Command::new("keytool")
            .args(args)
            .output()
            .expect("keytool (part of the JDK the Cassandra nodes run on)");
        assert!(
            out.status.success(),
            "keytool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let store_s = store.to_str().unwrap();
    run(&[
        "-genkeypair",
        "-alias",
        "other",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        "-validity",
        "2",
        "-dname",
        "CN=not-the-logship-ca",
        "-ext",
        "SAN=IP:127.0.0.1",
        "-keystore",
        store_s,
        "-storetype",
        "PKCS12",
        "-storepass",
        "changeit",
    ]);
    run(&[
        "-exportcert",
        "-rfc",
        "-alias",
        "other",
        "-keystore",
        store_s,
        "-storetype",
        "PKCS12",
        "-storepass",
        "changeit",
        "-file",
        pem.to_str().unwrap(),
    ]);
    pem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_did_not_sign_the_node_is_a_tls_error() {
    let Some(node) = secure_node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = CassandraConfig {
        tls: Some(TlsConfig {
            ca_file: Some(other_ca(dir.path())),
            ..TlsConfig::default()
        }),
        connect_timeout: Duration::from_secs(5),
        ..node.config("logship")
    };
    let (err, text) = connect_err(&config).await;
    assert!(matches!(err, SinkError::Tls { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "TLS to Cassandra at {} failed: ",
            node.contact_point()
        )),
        "{text}"
    );
    assert!(text.contains("certificate"), "says what failed: {text}");
    eprintln!("other CA: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_node_without_client_encryption_is_a_tls_error() {
    let Some(node) = default_node() else { return };
    let Some(secure) = secure_node() else { return };
    let config = CassandraConfig {
        tls: secure.config("logship").tls,
        connect_timeout: Duration::from_secs(5),
        ..node.config("logship")
    };
    let (err, text) = connect_err(&config).await;
    assert!(matches!(err, SinkError::Tls { .. }), "{text}");
    assert!(text.contains(&node.contact_point()), "{text}");
    eprintln!("TLS to a plain node: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_for_a_node_that_needs_a_login_is_an_authentication_error() {
    let Some(node) = secure_node() else { return };
    let config = CassandraConfig {
        username: None,
        password_file: None,
        connect_timeout: Duration::from_secs(5),
        ..node.config("logship")
    };
    let (err, text) = connect_err(&config).await;
    assert!(matches!(err, SinkError::Authentication { .. }), "{text}");
    assert!(
        text.starts_with(&format!(
            "Cassandra at {} refused the login of user \"\"",
            node.contact_point()
        )),
        "{text}"
    );
    eprintln!("no login: {text}");
}

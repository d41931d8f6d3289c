//! Credentials and TLS against the secure node; connect errors an operator can act on.

mod support;

use std::time::Duration;

use jiff::Timestamp;
use logship::pipeline::FileId;
use logship::sink::{CassandraConfig, CassandraSink, SinkError, SinkOptions};
use support::cassandra::{apply_schema, secure_node, unique_keyspace};
use support::records::{expected_infra, file_records, read_all_infra, route};

fn assert_one_line_naming(err: &SinkError, contact_point: &str) -> String {
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "not one line: {text}");
    assert!(
        text.contains(contact_point),
        "does not name {contact_point}: {text}"
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_node_is_reached_over_tls_with_the_agents_role() {
    let Some(node) = secure_node() else { return };
    let ks = unique_keyspace("tls");
    let config = node.config(&ks);
    assert!(config.tls.is_some() && config.username.as_deref() == Some("logship"));
    apply_schema(&config).await;
    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let r = route("tls", None, Duration::from_secs(3600));
    let file = FileId {
        dev: 1,
        inode: 2,
        fingerprint: 3,
    };
    let records = file_records(
        &r,
        "web1",
        file,
        Timestamp::now(),
        Duration::from_millis(1),
        200,
        1,
    );
    sink.write_file_unit(&records).await.unwrap();
    let mut got = read_all_infra(sink.session(), &ks).await;
    let mut want: Vec<_> = records.iter().map(expected_infra).collect();
    got.sort_by_key(|r| r.id);
    want.sort_by_key(|r| r.id);
    assert_eq!(got, want);

    // The port speaks TLS only: the same settings without TLS do not get in.
    let plain = CassandraConfig {
        tls: None,
        connect_timeout: Duration::from_secs(3),
        ..config.clone()
    };
    let err = CassandraSink::connect(&plain, SinkOptions::default())
        .await
        .unwrap_err();
    assert_one_line_naming(&err, &node.contact_point());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_one_line_error_naming_the_contact_point() {
    let Some(node) = secure_node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "not-the-password\n").unwrap();
    let config = CassandraConfig {
        password_file: Some(password_file),
        ..node.config("logship")
    };
    let err = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap_err();
    let text = assert_one_line_naming(&err, &node.contact_point());
    assert!(
        matches!(err, SinkError::Authentication { ref user, .. } if user == "logship"),
        "{text}"
    );
    eprintln!("wrong password: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_a_clear_one_line_error_naming_the_contact_point() {
    // Nothing listens on port 1; no node needed.
    let config = CassandraConfig {
        contact_points: vec!["127.0.0.1".into()],
        port: 1,
        connect_timeout: Duration::from_secs(2),
        ..CassandraConfig::default()
    };
    let err = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap_err();
    let text = assert_one_line_naming(&err, "127.0.0.1:1");
    assert!(matches!(err, SinkError::Unreachable { .. }), "{text}");
    eprintln!("unreachable: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_password_file_is_a_config_error() {
    let config = CassandraConfig {
        username: Some("logship".into()),
        password_file: Some("/nonexistent/logship.password".into()),
        ..CassandraConfig::default()
    };
    let err = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(matches!(err, SinkError::Config(_)), "{text}");
    assert!(text.contains("/nonexistent/logship.password"), "{text}");
}

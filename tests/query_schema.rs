//! `schema apply` migrates a keyspace made by an older logship: it adds the columns,
//! indexes and the stream catalog that are missing, keeps every row, is idempotent; and
//! until then the agent refuses to start with a message that says to run it.

mod support;

use std::sync::Arc;

use logship::sink::schema;
use logship::sink::{CassandraSink, SinkError, SinkOptions};
use support::cassandra::{default_node, unique_keyspace};

fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// The schema of the version before issue 12: no request_id/trace_id on
/// infrastructure_logs, no indexes on them, no catalog.
fn old_schema(ks: &str) -> Vec<String> {
    let ks = ident(ks);
    vec![
        format!(
            "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
        format!(
            "CREATE TABLE {ks}.infrastructure_logs (source text, host text, day date, bucket int, \
             ts timestamp, id uuid, ts_nanos int, level text, message text, \
             fields frozen<map<text, text>>, parse_error text, file_path text, file_offset bigint, \
             truncated boolean, PRIMARY KEY ((source, host, day, bucket), ts, id)) \
             WITH CLUSTERING ORDER BY (ts DESC, id ASC)"
        ),
        format!(
            "CREATE TABLE {ks}.application_logs (service text, host text, day date, bucket int, \
             ts timestamp, id uuid, ts_nanos int, level text, target text, module text, file text, \
             line int, message text, fields frozen<map<text, text>>, span_fields frozen<map<text, text>>, \
             request_id text, trace_id text, truncated boolean, \
             PRIMARY KEY ((service, host, day, bucket), ts, id)) WITH CLUSTERING ORDER BY (ts DESC, id ASC)"
        ),
        format!(
            "INSERT INTO {ks}.infrastructure_logs (source, host, day, bucket, ts, id, level, message) \
             VALUES ('nginx', 'web1', '2025-06-01', 0, '2025-06-01 00:00:01+0000', uuid(), 'INFO', 'old row')"
        ),
    ]
}

async fn columns(session: &scylla::client::session::Session, ks: &str, table: &str) -> Vec<String> {
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
            (ks, table),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let mut v: Vec<String> = rows
        .rows::<(String,)>()
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_adds_what_an_old_schema_lacks_and_keeps_rows() {
    let Some(node) = default_node() else { return };
    let ks = unique_keyspace("query_schema");
    let config = node.config(&ks);
    let session = logship::sink::session::connect(&config).await.unwrap();
    for s in old_schema(&ks) {
        session.query_unpaged(s, ()).await.unwrap();
    }
    session.await_schema_agreement().await.unwrap();

    // The agent says what is wrong and what to run.
    let missing = schema::missing(&session, &config).await.unwrap();
    for want in [
        "column infrastructure_logs.request_id",
        "column infrastructure_logs.trace_id",
        "column infrastructure_logs.read_at",
        "column catalog.day",
        "index infrastructure_logs_request_id",
        "index application_logs_level",
    ] {
        assert!(missing.iter().any(|m| m == want), "{want} in {missing:?}");
    }
    let err = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .expect_err("an old schema must stop the agent");
    assert!(matches!(err, SinkError::Schema { .. }), "{err:#}");
    let text = format!("{err:#}");
    assert!(text.contains("run `logship schema apply`"), "{text}");
    assert!(text.contains("infrastructure_logs"), "{text}");

    let added = schema::apply_reporting(&session, &config).await.unwrap();
    assert_eq!(
        added,
        [
            "infrastructure_logs.request_id",
            "infrastructure_logs.trace_id",
            "infrastructure_logs.read_at"
        ]
    );
    assert!(schema::missing(&session, &config).await.unwrap().is_empty());
    let infra = columns(&session, &ks, "infrastructure_logs").await;
    for column in ["request_id", "trace_id", "read_at"] {
        assert!(infra.contains(&column.to_owned()), "{column} in {infra:?}");
    }

    // Idempotent: a second apply adds nothing; the old row is still there.
    assert!(
        schema::apply_reporting(&session, &config)
            .await
            .unwrap()
            .is_empty()
    );
    let n = session
        .query_unpaged(
            format!("SELECT message FROM {}.infrastructure_logs", ident(&ks)),
            (),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num();
    assert_eq!(n, 1);

    // Now the agent starts, and the new request_id index answers.
    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap();
    drop(sink);
    let reader = logship::query::Reader::new(Arc::new(session), &ks, Default::default())
        .await
        .unwrap();
    let f = logship::query::Filter {
        request_id: Some("none".into()),
        ..Default::default()
    };
    assert!(
        reader
            .page(&f, Default::default(), None, 10)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
}

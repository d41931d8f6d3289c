//! `logship schema apply` on the real node: creates what is missing, twice changes nothing.

mod support;

use std::time::Duration;

use logship::pipeline::FileId;
use logship::sink::{CassandraSink, SinkOptions, schema};
use scylla::client::session::Session;
use support::cassandra::{apply_schema, default_node, unique_keyspace};
use support::records::{file_records, read_all_infra, route};

/// Everything Cassandra knows about the keyspace's tables, columns and indexes, as text.
async fn describe(session: &Session, ks: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (query, what) in [
        (
            "SELECT table_name, compaction, default_time_to_live, gc_grace_seconds, compression, id \
             FROM system_schema.tables WHERE keyspace_name = ?",
            "table",
        ),
        (
            "SELECT table_name, column_name, kind, type, clustering_order, position \
             FROM system_schema.columns WHERE keyspace_name = ?",
            "column",
        ),
        (
            "SELECT table_name, index_name, kind, options FROM system_schema.indexes WHERE keyspace_name = ?",
            "index",
        ),
        (
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            "keyspace",
        ),
    ] {
        let rows = session
            .query_unpaged(query, (ks,))
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        for row in rows.rows::<scylla::value::Row>().unwrap() {
            out.push(format!("{what}: {:?}", row.unwrap().columns));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_applied_twice_changes_nothing_and_keeps_the_rows() {
    let Some(node) = default_node() else { return };
    let ks = unique_keyspace("schema");
    let config = node.config(&ks);
    let session = apply_schema(&config).await;
    let first = describe(&session, &ks).await;
    let text = first.join("\n");
    assert!(text.contains("TimeWindowCompactionStrategy"), "{text}");
    assert!(
        text.contains("Text(\"compaction_window_size\"), Text(\"3\")"),
        "{text}"
    );
    assert!(
        text.contains("Int(7776000)") && text.contains("Int(10800)"),
        "{text}"
    );
    assert!(text.contains("LZ4Compressor"), "{text}");
    for index in [
        "infrastructure_logs_level",
        "application_logs_level",
        "application_logs_request_id",
        "application_logs_trace_id",
        "infrastructure_logs_request_id",
        "infrastructure_logs_trace_id",
    ] {
        assert!(text.contains(index), "{index} missing: {text}");
    }
    assert_eq!(
        text.matches("Text(\"class_name\"), Text(\"sai\")").count(),
        6,
        "indexes must be SAI: {text}"
    );

    let sink = CassandraSink::connect(&config, SinkOptions::default())
        .await
        .unwrap();
    let r = route("schema", None, Duration::from_secs(3600));
    let file = FileId {
        dev: 1,
        inode: 1,
        fingerprint: 1,
    };
    let records = file_records(
        &r,
        "web1",
        file,
        jiff::Timestamp::now(),
        Duration::from_millis(1),
        50,
        1,
    );
    sink.write_file_unit(&records).await.unwrap();

    schema::apply(&session, &config)
        .await
        .unwrap_or_else(|e| panic!("second apply: {e:#}"));
    assert_eq!(
        describe(&session, &ks).await,
        first,
        "the second apply changed the schema"
    );
    assert_eq!(
        read_all_infra(&session, &ks).await.len(),
        50,
        "the second apply lost rows"
    );
}

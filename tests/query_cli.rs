//! `logship query` end to end: rows written through the sink, the real binary reading them
//! back from the real Cassandra; output formats, request ids across sources, counts,
//! stream listing, and exit codes.

#[path = "support/query.rs"]
mod query_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use logship::parsers::Level;
use logship::sink::{AppRoute, CassandraSink, SinkOptions};
use query_support::{FileWriter, app_event, json_ids, query, route, stderr, stdout, write_config};
use support::cassandra::{apply_schema, default_node, unique_keyspace};
use uuid::Uuid;

struct Row {
    source: &'static str,
    host: &'static str,
    ts: Timestamp,
    id: Uuid,
    level: Level,
    message: String,
    request_id: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_cli_reads_what_the_sink_wrote() {
    let Some(node) = default_node() else { return };
    let ks = unique_keyspace("query_cli");
    let config = node.config(&ks);
    let session = apply_schema(&config).await;
    let sink = CassandraSink::with_session(session, &config, SinkOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &node.host, node.port, &ks);

    // 90 minutes of nginx on two hosts (10-minute buckets) and the shop service on web1,
    // ending a minute ago; every 7th nginx line and shop event share a request id.
    let now = Timestamp::now();
    let start = now - SignedDuration::from_mins(91);
    let nginx = route("nginx", Duration::from_secs(600));
    let mut files = [
        FileWriter::new(&nginx, "web1", 1),
        FileWriter::new(&nginx, "web2", 2),
    ];
    let mut rows = Vec::new();
    let mut records = Vec::new();
    let mut events = Vec::new();
    for i in 0..900_i64 {
        let ts = start + SignedDuration::from_secs(i * 6) + SignedDuration::from_micros(i);
        let level = [Level::Info, Level::Info, Level::Warn, Level::Error][i as usize % 4];
        let req = format!("req-{}", i / 7);
        let host = i as usize % 2;
        let message = format!("GET /item/{i} HTTP/1.1");
        let (record, id) = files[host].record(
            ts,
            level,
            &message,
            &[
                ("request_id", &req),
                ("status", if i % 3 == 0 { "500" } else { "200" }),
            ],
        );
        records.push(record);
        rows.push(Row {
            source: "nginx",
            host: ["web1", "web2"][host],
            ts,
            id,
            level,
            message,
            request_id: Some(req.clone()),
        });
        if i % 3 == 0 {
            let ts = ts + SignedDuration::from_millis(2);
            let message = format!("handled item {i}");
            let e = app_event("shop", "web1", ts, level, &message, Some(&req));
            rows.push(Row {
                source: "shop",
                host: "web1",
                ts,
                id: e.id,
                level,
                message,
                request_id: Some(req),
            });
            events.push(e);
        }
    }
    for unit in records.chunks(100) {
        sink.write_file_unit(unit).await.unwrap();
    }
    sink.write_app_unit(&events, &AppRoute::default())
        .await
        .unwrap();
    rows.sort_by_key(|r| r.ts);

    // Default: the newest 100 of both tables, oldest first; what was asked on stderr.
    let out = query(&cfg, &["-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want: Vec<Uuid> = rows[rows.len() - 100..].iter().map(|r| r.id).collect();
    assert_eq!(json_ids(&stdout(&out)), want);
    assert!(
        stderr(&out).contains(&format!("keyspace {ks}")),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("-- 100 rows"), "{}", stderr(&out));

    // -n, --source, --host, --reverse.
    let out = query(
        &cfg,
        &[
            "-q",
            "-o",
            "json",
            "-n",
            "5",
            "--source",
            "nginx",
            "--host",
            "web2",
            "--reverse",
        ],
    );
    let want: Vec<Uuid> = rows
        .iter()
        .rev()
        .filter(|r| r.source == "nginx" && r.host == "web2")
        .take(5)
        .map(|r| r.id)
        .collect();
    assert_eq!(json_ids(&stdout(&out)), want);

    // Every line of one request, across the nginx line and the app's event, in time order.
    let out = query(&cfg, &["-q", "-o", "json", "--request-id", "req-42"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.request_id.as_deref() == Some("req-42"))
        .map(|r| r.id)
        .collect();
    assert!(
        want.len() >= 3,
        "the request has nginx lines and an app event"
    );
    let text = stdout(&out);
    assert_eq!(json_ids(&text), want);
    assert!(
        text.contains("\"table\":\"infrastructure\"") && text.contains("\"table\":\"application\"")
    );

    // Level, time range, regex, field; -o cat prints the message only.
    let since = (start + SignedDuration::from_mins(30)).to_string();
    let until = (start + SignedDuration::from_mins(60)).to_string();
    let out = query(
        &cfg,
        &[
            "-q",
            "-o",
            "cat",
            "-p",
            "err",
            "--since",
            &since,
            "--until",
            &until,
            "-g",
            "item/[0-9]*5 ",
            "--field",
            "status=500",
            "--table",
            "infrastructure",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (s, u) = (
        start + SignedDuration::from_mins(30),
        start + SignedDuration::from_mins(60),
    );
    let re = regex::Regex::new("item/[0-9]*5 ").unwrap();
    let want: Vec<String> = rows
        .iter()
        .filter(|r| r.source == "nginx" && r.level >= Level::Error && r.ts >= s && r.ts < u)
        .filter(|r| re.is_match(&r.message))
        .filter(|r| {
            let i: i64 = r.message[10..].split(' ').next().unwrap().parse().unwrap();
            i % 3 == 0
        })
        .map(|r| r.message.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), want);

    // short and short-iso: time, host, source, level, message; no colour into a pipe.
    let out = query(&cfg, &["-q", "-n", "1", "--utc", "--source", "shop"]);
    let line = stdout(&out);
    let last = rows.iter().rev().find(|r| r.source == "shop").unwrap();
    assert!(
        line.contains(&format!(
            "web1 shop {}: {}",
            last.level.as_str(),
            last.message
        )),
        "{line}"
    );
    assert!(!line.contains('\x1b'), "{line:?}");
    let out = query(
        &cfg,
        &[
            "-q",
            "-n",
            "1",
            "--utc",
            "-o",
            "short-iso",
            "--source",
            "shop",
        ],
    );
    let iso = last.ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    assert!(stdout(&out).starts_with(&iso), "{} vs {iso}", stdout(&out));

    // --count --by level, as JSON lines: the model's counts per source and level.
    let since2 = (start - SignedDuration::from_mins(1)).to_string();
    let out = query(
        &cfg,
        &[
            "-q",
            "--count",
            "--by",
            "level",
            "--interval",
            "1d",
            "--since",
            &since2,
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for l in stdout(&out).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        *got.entry((
            v["source"].as_str().unwrap().to_owned(),
            v["level"].as_str().unwrap().to_owned(),
        ))
        .or_default() += v["count"].as_u64().unwrap();
    }
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &rows {
        *want
            .entry((r.source.to_owned(), r.level.as_str().to_owned()))
            .or_default() += 1;
    }
    assert_eq!(got, want);
    let out = query(&cfg, &["-q", "--count", "--since", &since2]);
    assert!(stdout(&out).starts_with("INTERVAL"), "{}", stdout(&out));

    // --list-sources: a table, or JSON lines.
    let out = query(&cfg, &["-q", "--list-sources"]);
    let text = stdout(&out);
    assert!(text.starts_with("TABLE"), "{text}");
    for s in [
        "infrastructure_logs  nginx   web1",
        "infrastructure_logs  nginx   web2",
        "application_logs     shop    web1",
    ] {
        assert!(text.contains(s), "{s:?} in\n{text}");
    }
    let out = query(&cfg, &["-q", "--list-sources", "-o", "json"]);
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));

    // Bad flags: exit 2 with the reason; Cassandra unreachable: exit 1.
    for bad in [
        &["--since", "soon"][..],
        &["-p", "loud"],
        &["--field", "novalue"],
        &["-g", "("],
        &["--table", "both"],
        &["--since", "today", "--until", "yesterday"],
        &["--no-such-flag"],
    ] {
        let out = query(&cfg, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
    }
    let unreachable = write_config(dir.path(), "127.0.0.1", 1, &ks);
    let out = query(&unreachable, &["-q"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach Cassandra at 127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
}

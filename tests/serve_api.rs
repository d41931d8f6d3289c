//! `logship serve`'s HTTP API against the real Cassandra: rows written through the sink
//! (six streams over two hours, several buckets, plus application events), read back
//! through the real binary, page by page, and compared with an in-memory model of the
//! same rows; every 4xx case; the bearer token; the live stream.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/serve_process.rs"]
mod serve_process;
mod support;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use fleet::Stream;
use http_client::{EventStream, get};
use jiff::{SignedDuration, Timestamp};
use logship::parsers::Level;
use logship::sink::{AppEvent, AppRoute, CassandraSink, SinkOptions, file_row_id};
use serde_json::Value;
use serve_process::ServeProcess;
use support::cassandra::{apply_schema, default_node, unique_keyspace};

const HOSTS: [&str; 3] = ["web-1", "web-2", "web-3"];
const SOURCES: [&str; 2] = ["nginx", "haproxy"];
/// Records per stream, spread over the last two hours (one every 10 s).
const PER_STREAM: u64 = 720;

/// One row as the model knows it.
#[derive(Debug, Clone)]
struct Model {
    ts_ms: i64,
    id: uuid::Uuid,
    table: &'static str,
    source: String,
    host: String,
    level: Level,
    message: String,
    status: Option<String>,
    request_id: Option<String>,
}

/// Cassandra's order of the row ids (`UUIDType`): version first, then the bytes.
fn uuid_order(a: &uuid::Uuid, b: &uuid::Uuid) -> Ordering {
    a.get_version_num()
        .cmp(&b.get_version_num())
        .then_with(|| a.as_u128().cmp(&b.as_u128()))
}

fn newest_first(rows: &mut [&Model]) {
    rows.sort_by(|a, b| b.ts_ms.cmp(&a.ts_ms).then_with(|| uuid_order(&b.id, &a.id)));
}

struct Data {
    rows: Vec<Model>,
    start: Timestamp,
    end: Timestamp,
}

/// Writes the fleet and the application events through the sink; returns the model.
async fn write_data(sink: &CassandraSink) -> Data {
    let end = Timestamp::now() - SignedDuration::from_secs(60);
    let start = end - SignedDuration::from_secs(2 * 3600);
    let mut rows = Vec::new();
    let mut index = 0;
    for source in SOURCES {
        for host in HOSTS {
            let stream = Stream::new(source, host, Duration::from_secs(15 * 60), index);
            // Streams are offset by a few ms so no two rows share a timestamp.
            let s = start + SignedDuration::from_millis(index as i64 * 7);
            let e = end + SignedDuration::from_millis(index as i64 * 7);
            let records: Vec<_> = (0..PER_STREAM)
                .map(|i| {
                    let mut r = stream.record(i, PER_STREAM, s, e);
                    // A few nginx lines carry a request id the application shares.
                    if source == "nginx" && host == "web-1" && i % 100 == 3 {
                        r.record.set_field("request_id", &format!("req-{i}"));
                    }
                    r
                })
                .collect();
            for unit in records.chunks(1000) {
                sink.write_file_unit(unit).await.expect("write a unit");
            }
            for r in &records {
                rows.push(Model {
                    ts_ms: r.record.timestamp.as_millisecond(),
                    id: file_row_id(host, r.origin.file, r.origin.start),
                    table: "infrastructure",
                    source: source.to_owned(),
                    host: host.to_owned(),
                    level: r.record.level,
                    message: r.record.message().to_owned(),
                    status: r.record.field("status").map(str::to_owned),
                    request_id: r.record.field("request_id").map(str::to_owned),
                });
            }
            index += 1;
        }
    }
    // The application's events of request req-103: after the nginx line, on web-1.
    let nginx_103 = rows
        .iter()
        .find(|r| r.request_id.as_deref() == Some("req-103"))
        .expect("the model has req-103")
        .ts_ms;
    let events: Vec<AppEvent> = (0..5)
        .map(|k| AppEvent {
            id: AppEvent::new_id(),
            timestamp: Timestamp::from_millisecond(nginx_103 + 3 + k).unwrap(),
            level: if k == 4 { Level::Error } else { Level::Info },
            service: "shop".into(),
            host: "web-1".into(),
            target: "shop::checkout".into(),
            module: None,
            file: None,
            line: None,
            message: format!("checkout step {k}"),
            fields: BTreeMap::new(),
            span_fields: BTreeMap::new(),
            request_id: Some("req-103".into()),
            trace_id: None,
        })
        .collect();
    let route = AppRoute {
        ttl: None,
        bucket: Duration::from_secs(3600),
    };
    sink.write_app_unit(&events, &route)
        .await
        .expect("write the app events");
    for e in &events {
        rows.push(Model {
            ts_ms: e.timestamp.as_millisecond(),
            id: e.id,
            table: "application",
            source: "shop".into(),
            host: "web-1".into(),
            level: e.level,
            message: e.message.clone(),
            status: None,
            request_id: e.request_id.clone(),
        });
    }
    Data { rows, start, end }
}

/// Every page of `/events?query` (following `next`), the events in the order served.
fn all_pages(serve: &ServeProcess, query: &str, token: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let path = match &cursor {
            None => format!("/events?{query}"),
            Some(c) => format!("/events?{query}&cursor={c}"),
        };
        let answer = get(serve.port, &path, token);
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        let body = answer.json();
        out.extend(
            body["events"]
                .as_array()
                .expect("events array")
                .iter()
                .cloned(),
        );
        match body["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("more than 10,000 pages for {query}");
}

/// Compares served events with the model's rows, in order, by content.
fn assert_same(what: &str, served: &[Value], expected: &[&Model]) {
    let got: Vec<String> = served
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["host"],
                e["source"],
                e["message"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let want: Vec<String> = expected
        .iter()
        .map(|m| format!("\"{}\" \"{}\" {}", m.host, m.source, m.message))
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} events served, {} expected",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{what}: event {i} differs");
    }
    for (e, m) in served.iter().zip(expected) {
        assert_eq!(
            e["id"].as_str(),
            Some(m.id.to_string().as_str()),
            "{what}: id"
        );
        assert_eq!(e["level"].as_str(), Some(m.level.as_str()), "{what}: level");
        let ts: Timestamp = e["timestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(ts.as_millisecond(), m.ts_ms, "{what}: timestamp");
    }
}

fn iso(ts_ms: i64) -> String {
    Timestamp::from_millisecond(ts_ms).unwrap().to_string()
}

#[test]
fn http_api_reads_what_the_sink_wrote() {
    let Some(node) = default_node() else { return };
    let keyspace = unique_keyspace("serve_api");
    let config = node.config(&keyspace);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = rt.block_on(async {
        let session = apply_schema(&config).await;
        let sink = CassandraSink::with_session(session, &config, SinkOptions::default())
            .await
            .expect("sink");
        write_data(&sink).await
    });
    let serve = ServeProcess::start(&node, &keyspace, None);
    let since = iso(data.start.as_millisecond() - 1000);
    let rows = &data.rows;

    // One source on two hosts, newest first, in pages of 97 across every bucket.
    let served = all_pages(
        &serve,
        &format!("source=nginx&host=web-1&host=web-2&since={since}&limit=97"),
        None,
    );
    let mut want: Vec<&Model> = rows
        .iter()
        .filter(|r| r.source == "nginx" && (r.host == "web-1" || r.host == "web-2"))
        .collect();
    newest_first(&mut want);
    assert_eq!(want.len(), 2 * PER_STREAM as usize);
    assert_same("nginx on web-1, web-2", &served, &want);
    let ids: HashSet<&str> = served.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        served.len(),
        "an event was served twice across pages"
    );

    // Errors and worse of every host and both tables in the last hour, oldest first.
    let hour_ago = data.end.as_millisecond() - 3_600_000;
    let served = all_pages(
        &serve,
        &format!("level=err&since={}&order=asc&limit=500", iso(hour_ago)),
        None,
    );
    let mut want: Vec<&Model> = rows
        .iter()
        .filter(|r| r.level >= Level::Error && r.ts_ms >= hour_ago)
        .collect();
    newest_first(&mut want);
    want.reverse();
    assert!(want.len() > 20, "the model has errors in the last hour");
    assert_same("errors in the last hour", &served, &want);

    // A field, a message regex and a time window together.
    let (lo, hi) = (
        data.start.as_millisecond() + 1_800_000,
        data.start.as_millisecond() + 5_400_000,
    );
    let served = all_pages(
        &serve,
        &format!(
            "source=haproxy&field=status%3D404&grep=item%2F%5Cd*9%20&since={}&until={}&limit=50",
            iso(lo),
            iso(hi)
        ),
        None,
    );
    let re = regex::Regex::new(r"item/\d*9 ").unwrap();
    let mut want: Vec<&Model> = rows
        .iter()
        .filter(|r| {
            r.source == "haproxy"
                && r.status.as_deref() == Some("404")
                && re.is_match(&r.message)
                && r.ts_ms >= lo
                && r.ts_ms < hi
        })
        .collect();
    newest_first(&mut want);
    assert!(!want.is_empty());
    assert_same("haproxy 404s matching a regex in a window", &served, &want);

    // Every line of one request, across tables, in time order.
    let served = all_pages(&serve, "request_id=req-103&order=asc", None);
    let mut want: Vec<&Model> = rows
        .iter()
        .filter(|r| r.request_id.as_deref() == Some("req-103"))
        .collect();
    newest_first(&mut want);
    want.reverse();
    assert_eq!(want.len(), 6);
    assert_same("request req-103", &served, &want);
    assert_eq!(served[0]["table"], "infrastructure");
    assert!(served[1..].iter().all(|e| e["table"] == "application"));

    // The application table alone.
    let served = all_pages(&serve, &format!("table=application&since={since}"), None);
    assert_eq!(served.len(), 5);
    assert!(served.iter().all(|e| e["source"] == "shop"));

    sources_and_counts(&serve, &data);
    bad_requests(&serve);
    live_stream(&serve, &rt, &config);
    explorer_page_is_served(&serve);
}

fn sources_and_counts(serve: &ServeProcess, data: &Data) {
    let since = iso(data.start.as_millisecond() - 1000);
    let answer = get(serve.port, &format!("/sources?since={since}"), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut streams: Vec<(String, String)> = answer.json()["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_owned(),
                s["host"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    streams.sort();
    let mut want: Vec<(String, String)> = SOURCES
        .iter()
        .flat_map(|s| HOSTS.iter().map(move |h| (s.to_string(), h.to_string())))
        .collect();
    want.push(("shop".into(), "web-1".into()));
    want.sort();
    assert_eq!(streams, want, "/sources");

    let answer = get(
        serve.port,
        &format!("/sources?host=web-2&table=infrastructure&since={since}"),
        None,
    );
    assert_eq!(answer.json()["sources"].as_array().unwrap().len(), 2);

    // Counts per level per source per hour, over the whole range, against the model.
    let answer = get(
        serve.port,
        &format!("/counts?since={since}&interval=1h&table=infrastructure"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["interval_seconds"], 3600);
    let mut got: BTreeMap<(i64, String, String), u64> = BTreeMap::new();
    for c in body["counts"].as_array().unwrap() {
        let start: Timestamp = c["start"].as_str().unwrap().parse().unwrap();
        got.insert(
            (
                start.as_millisecond(),
                c["source"].as_str().unwrap().to_owned(),
                c["level"].as_str().unwrap().to_owned(),
            ),
            c["count"].as_u64().unwrap(),
        );
    }
    let mut want: BTreeMap<(i64, String, String), u64> = BTreeMap::new();
    for r in data.rows.iter().filter(|r| r.table == "infrastructure") {
        let hour = r.ts_ms - r.ts_ms.rem_euclid(3_600_000);
        *want
            .entry((hour, r.source.clone(), r.level.as_str().to_owned()))
            .or_default() += 1;
    }
    assert_eq!(got, want, "/counts");
}

fn bad_requests(serve: &ServeProcess) {
    let cases: &[(&str, &str)] = &[
        ("/events?sorce=nginx", "sorce"),
        ("/events?limit=0", "limit"),
        ("/events?limit=501", "between 1 and 500"),
        ("/events?limit=ten", "limit"),
        ("/events?level=loud", "level"),
        ("/events?since=soon", "time"),
        ("/events?since=1h+ago&until=2h+ago", "until"),
        ("/events?grep=(", "regular expression"),
        ("/events?field=novalue", "KEY=VALUE"),
        ("/events?table=both", "table"),
        ("/events?order=sideways", "order"),
        ("/events?cursor=nonsense", "cursor"),
        ("/events?level=err&level=warn", "only once"),
        ("/events?since=%FF", "UTF-8"),
        ("/events/stream?level=loud", "level"),
        ("/sources?level=err", "level"),
        ("/counts?interval=0s", "interval"),
        ("/counts?interval=soon", "interval"),
    ];
    for (path, reason) in cases {
        let answer = get(serve.port, path, None);
        assert_eq!(answer.status, 400, "GET {path}: {}", answer.body);
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(reason),
            "GET {path}: {error:?} should mention {reason:?}"
        );
    }
    assert_eq!(get(serve.port, "/nothing-here", None).status, 404);
}

fn live_stream(
    serve: &ServeProcess,
    rt: &tokio::runtime::Runtime,
    config: &logship::sink::CassandraConfig,
) {
    let mut stream = EventStream::open(serve.port, "/events/stream?source=live&host=web-9", None)
        .expect("open the stream");
    assert_eq!(stream.status, 200);
    let ct = stream
        .headers
        .iter()
        .find(|(n, _)| n == "content-type")
        .map(|(_, v)| v.clone());
    assert_eq!(ct.as_deref(), Some("text/event-stream"));
    // Rows written after the stream opened, in two batches a moment apart.
    let live = Stream::new("live", "web-9", Duration::from_secs(60), 99);
    let other = Stream::new("live", "web-8", Duration::from_secs(60), 98);
    let sink = rt
        .block_on(CassandraSink::connect(config, SinkOptions::default()))
        .expect("sink");
    let mut expected = Vec::new();
    for batch in 0..2u64 {
        std::thread::sleep(Duration::from_millis(700));
        let now = Timestamp::now();
        let records: Vec<_> = (batch * 10..batch * 10 + 10)
            .map(|i| live.record(i, 1000, now, now + SignedDuration::from_secs(1)))
            .collect();
        let noise: Vec<_> = (batch * 5..batch * 5 + 5)
            .map(|i| other.record(i, 1000, now, now + SignedDuration::from_secs(1)))
            .collect();
        rt.block_on(async {
            sink.write_file_unit(&records)
                .await
                .expect("write live rows");
            sink.write_file_unit(&noise)
                .await
                .expect("write other host");
        });
        expected.extend(records.iter().map(|r| r.record.message().to_owned()));
    }
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < expected.len() && std::time::Instant::now() < deadline {
        if let Some(event) = stream.next_event(Duration::from_secs(1)) {
            assert_eq!(event.kind, "message", "{}", event.data);
            let v: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(v["host"], "web-9");
            got.push(v["message"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        got, expected,
        "the stream delivers each new row once, in order"
    );
    // Nothing more: no repeats in the next polls.
    assert_eq!(stream.next_event(Duration::from_secs(2)), None);
}

fn explorer_page_is_served(serve: &ServeProcess) {
    let answer = get(serve.port, "/", None);
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(answer.body.contains("<title>logship explorer</title>"));
    let csp = answer.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    // No external assets: nothing in the page points off the server.
    for needle in ["http://", "https://", "src=\"//"] {
        assert!(
            !answer.body.contains(needle),
            "the page references {needle}"
        );
    }
}

#[test]
fn bearer_token_guards_every_endpoint_but_the_page_and_health() {
    let Some(node) = default_node() else { return };
    let keyspace = unique_keyspace("serve_token");
    let config = node.config(&keyspace);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(apply_schema(&config));
    let mut serve = ServeProcess::start(&node, &keyspace, Some("s3cret-token"));
    for path in ["/events", "/events/stream", "/sources", "/counts"] {
        for token in [None, Some("wrong"), Some("s3cret-toke")] {
            let answer = get(serve.port, path, token);
            assert_eq!(
                answer.status, 401,
                "GET {path} with {token:?}: {}",
                answer.body
            );
            assert!(answer.json()["error"].as_str().unwrap().contains("Bearer"));
            assert_eq!(
                answer.header("www-authenticate"),
                Some("Bearer realm=\"logship\"")
            );
        }
    }
    let answer = get(serve.port, "/events", Some("s3cret-token"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        serde_json::json!({"events": [], "next": null})
    );
    assert_eq!(
        get(serve.port, "/sources", Some("s3cret-token")).status,
        200
    );
    assert_eq!(get(serve.port, "/health", None).status, 200);
    assert_eq!(get(serve.port, "/", None).status, 200);
    // A live stream open does not hold up a clean stop.
    let _stream = EventStream::open(serve.port, "/events/stream", Some("s3cret-token")).unwrap();
    let status = serve.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        serve.stderr()
    );
}

#[test]
fn bad_serve_config_names_the_key_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logship.toml");
    std::fs::write(&path, "[serve]\nlisten = \"127.0.0.1:1\"\nmax_limit = 0\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("serve.max_limit") && stderr.contains("logship.toml"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        "[serve]\ntoken_file = \"/nonexistent/serve.token\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/serve.token"), "{stderr}");
}

//! One request id across nginx and the application, through the real agent: nginx lines
//! with `$http_x_request_id` (the default field) and a source whose id is in another field
//! (`request_id_field`), shipped by `logship run`; the application's events written by the
//! sink as the tracing Layer does; `logship query --request-id` prints them all, merged in
//! time order.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/query.rs"]
mod query_support;
mod support;

use std::io::Write as _;
use std::time::Duration;

use agent::{Db, Workspace, open_append};
use jiff::{SignedDuration, Timestamp};
use logship::parsers::Level;
use logship::sink::{AppRoute, CassandraSink, SinkOptions};
use query_support::{app_event, json_ids, query, stderr, stdout};

fn access_line(at: Timestamp, path: &str, id: &str) -> String {
    let t = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "10.0.0.1 - - [{}] \"GET {path} HTTP/1.1\" 200 12 \"-\" \"curl/8\" {id}\n",
        t.strftime("%d/%b/%Y:%H:%M:%S %z")
    )
}

#[test]
fn a_request_id_returns_the_nginx_lines_and_the_app_events_in_time_order() {
    let Some(db) = Db::new("query_agent") else {
        return;
    };
    let ws = Workspace::new("edge1");
    let fmt = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
    let sources = format!(
        "\n[[source]]\nname = \"nginx\"\npaths = [\"{}\"]\nformat = \"nginx\"\nlog_format = '{fmt} $http_x_request_id'\n\
         \n[[source]]\nname = \"gateway\"\npaths = [\"{}\"]\nformat = \"nginx\"\nlog_format = '{fmt} $http_x_correlation'\n\
         request_id_field = \"http_x_correlation\"\n",
        ws.log("access.log").display(),
        ws.log("gateway.log").display(),
    );
    ws.write_config(Some(&db), &sources, &[]);

    // nginx logs whole seconds: the gateway line at t, nginx at t+1 s, the app's events
    // in between and after; lines of another request around them.
    let t = Timestamp::now() - SignedDuration::from_secs(30);
    let t = Timestamp::from_second(t.as_second()).unwrap();
    let sec = |s: i64| t + SignedDuration::from_secs(s);
    {
        let mut gw = open_append(&ws.log("gateway.log"));
        gw.write_all(access_line(sec(0), "/checkout", "req-abc").as_bytes())
            .unwrap();
        gw.write_all(access_line(sec(0), "/other", "req-zzz").as_bytes())
            .unwrap();
        let mut ngx = open_append(&ws.log("access.log"));
        ngx.write_all(access_line(sec(1), "/api/checkout", "req-abc").as_bytes())
            .unwrap();
        ngx.write_all(access_line(sec(1), "/api/other", "-").as_bytes())
            .unwrap();
    }
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    db.wait_rows("gateway", "edge1", 2);
    db.wait_rows("nginx", "edge1", 2);

    let config = db.node.config(&db.keyspace);
    let events = [
        app_event(
            "shop",
            "app1",
            sec(0) + SignedDuration::from_millis(400),
            Level::Info,
            "cart loaded",
            Some("req-abc"),
        ),
        app_event(
            "shop",
            "app1",
            sec(1) + SignedDuration::from_millis(300),
            Level::Error,
            "payment refused",
            Some("req-abc"),
        ),
        app_event(
            "shop",
            "app1",
            sec(1) + SignedDuration::from_millis(500),
            Level::Info,
            "not this one",
            Some("req-zzz"),
        ),
    ];
    db.rt.block_on(async {
        let sink = CassandraSink::connect(&config, SinkOptions::default())
            .await
            .unwrap();
        sink.write_app_unit(&events, &AppRoute::default())
            .await
            .unwrap();
    });

    let out = query(
        &ws.config(),
        &["-q", "-o", "json", "--request-id", "req-abc"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let what: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_owned(),
                r["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(what.len(), 4, "{text}");
    assert_eq!(what[0].0, "gateway", "{text}");
    assert!(what[0].1.contains("GET /checkout"), "{text}");
    assert_eq!(what[1], ("shop".to_owned(), "cart loaded".to_owned()));
    assert_eq!(what[2].0, "nginx", "{text}");
    assert!(what[2].1.contains("GET /api/checkout"), "{text}");
    assert_eq!(what[3], ("shop".to_owned(), "payment refused".to_owned()));
    assert!(rows.iter().all(|r| r["request_id"] == "req-abc"), "{text}");
    assert_eq!(json_ids(&text).len(), 4);

    // An absent header (`-`) fills no request id.
    let out = query(
        &ws.config(),
        &["-q", "-o", "json", "--source", "nginx", "-n", "10"],
    );
    let text = stdout(&out);
    let other = text
        .lines()
        .find(|l| l.contains("/api/other"))
        .expect(&text);
    let other: serde_json::Value = serde_json::from_str(other).unwrap();
    assert!(other["request_id"].is_null(), "{other}");
    agent.signal(libc::SIGTERM);
    agent.wait_exit(Duration::from_secs(30));
}

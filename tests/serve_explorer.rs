//! The explorer page in Debian's headless chromium (driven by chromedriver) against a
//! running `logship serve` on the real Cassandra: it loads, a filter typed into the form
//! is applied, the rows shown are exactly the expected ones, the URL holds the query (a
//! fresh load of it shows the same rows), a row expands to its fields, levels have their
//! colours, and live follow shows rows written afterwards. A screenshot is written to the
//! test's output directory and its path printed.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/serve_process.rs"]
mod serve_process;
mod support;

use std::io::Write as _;
use std::time::Duration;

use browser::Browser;
use fleet::Stream;
use jiff::{SignedDuration, Timestamp};
use logship::parsers::Level;
use logship::sink::{CassandraSink, SinkOptions};
use serde_json::Value;
use serve_process::ServeProcess;
use support::cassandra::{apply_schema, default_node, unique_keyspace};

const PER_STREAM: u64 = 300;
const WAIT: Duration = Duration::from_secs(30);

/// The rows the page shows: [time, host, source, level, message] per row, top to bottom.
const SHOWN: &str = "return Array.from(document.querySelectorAll('#events tbody tr.event'))\
    .map(tr => Array.from(tr.children).map(td => td.textContent));";

fn shown(browser: &Browser) -> Vec<Vec<String>> {
    let v = browser.eval(SHOWN, vec![]);
    serde_json::from_value(v).expect("rows as arrays of strings")
}

/// Waits until the page has finished loading the query it was given last.
fn wait_loaded(browser: &Browser) {
    browser.wait_for(
        WAIT,
        "the page to load its events",
        "return document.body.dataset.loaded !== undefined && \
         !document.getElementById('status').textContent.startsWith('loading')",
    );
}

#[test]
fn explorer_filters_expands_and_follows_in_headless_chromium() {
    let Some(node) = default_node() else { return };
    let Some(browser) = Browser::start(1400, 900) else {
        return;
    };
    let keyspace = unique_keyspace("serve_explorer");
    let config = node.config(&keyspace);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let end = Timestamp::now() - SignedDuration::from_secs(30);
    let start = end - SignedDuration::from_secs(1800);
    let mut written = Vec::new();
    let sink = rt.block_on(async {
        let session = apply_schema(&config).await;
        let sink = CassandraSink::with_session(session, &config, SinkOptions::default())
            .await
            .expect("sink");
        let mut index = 0;
        for source in ["nginx", "haproxy"] {
            for host in ["web-1", "web-2"] {
                let stream = Stream::new(source, host, Duration::from_secs(600), index);
                let s = start + SignedDuration::from_millis(index as i64 * 3);
                let e = end + SignedDuration::from_millis(index as i64 * 3);
                let records: Vec<_> = (0..PER_STREAM)
                    .map(|i| stream.record(i, PER_STREAM, s, e))
                    .collect();
                sink.write_file_unit(&records).await.expect("write");
                written.extend(records);
                index += 1;
            }
        }
        sink
    });
    let serve = ServeProcess::start(&node, &keyspace, None);

    // Load: the newest 100 events of everything.
    browser.goto(&serve.url("/"));
    wait_loaded(&browser);
    assert_eq!(
        shown(&browser).len(),
        100,
        "the first page holds 100 events"
    );

    // Apply a filter as a user does: type, choose, click.
    browser.type_into("input[name=source]", "nginx");
    browser.type_into("input[name=host]", "web-2");
    browser.eval(
        "document.querySelector('select[name=level]').value = 'warn'; return true;",
        vec![],
    );
    browser.click("#apply");
    browser.wait_for(
        WAIT,
        "the filtered rows",
        "return location.search.includes('host=web-2') && \
         !document.getElementById('status').textContent.startsWith('loading') && \
         Array.from(document.querySelectorAll('#events tbody td.host')).every(td => td.textContent === 'web-2');",
    );
    let mut expected: Vec<_> = written
        .iter()
        .filter(|r| {
            &*r.record.source == "nginx"
                && &*r.record.host == "web-2"
                && r.record.level >= Level::Warn
        })
        .collect();
    expected.sort_by_key(|r| std::cmp::Reverse(r.record.timestamp));
    assert!(expected.len() > 10 && expected.len() < 100);
    let rows = shown(&browser);
    let got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    let want: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|r| {
            (
                r.record.host.to_string(),
                r.record.source.to_string(),
                r.record.level.as_str().to_owned(),
                r.record.message().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got, want,
        "the rows shown are nginx WARN+ on web-2, newest first"
    );
    let url = browser.current_url();
    assert!(
        url.contains("source=nginx") && url.contains("host=web-2") && url.contains("level=warn"),
        "the URL holds the query: {url}"
    );

    // Levels have their colours.
    let colour = |level: &str| -> String {
        browser
            .eval(
                "const td = Array.from(document.querySelectorAll('td.level')).find(td => td.textContent === arguments[0]); \
                 return td ? getComputedStyle(td).color : null;",
                vec![Value::from(level)],
            )
            .as_str()
            .unwrap_or_else(|| panic!("no {level} row shown"))
            .to_owned()
    };
    assert_eq!(colour("ERROR"), "rgb(196, 34, 26)");
    assert_eq!(colour("WARN"), "rgb(168, 100, 0)");

    // A row expands to its fields, and folds again.
    browser.click("#events tbody tr.event");
    let detail = browser.wait_for(
        WAIT,
        "the expanded row",
        "const d = document.querySelector('#events tbody tr.detail'); return d ? d.textContent : null;",
    );
    let detail = detail.as_str().unwrap();
    let first = expected[0];
    assert!(detail.contains("fields.status"), "{detail}");
    assert!(
        detail.contains(first.record.field("path").unwrap()),
        "{detail}"
    );
    assert!(detail.contains("file_path"), "{detail}");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve_explorer.png");
    browser.screenshot(&shot);
    // Straight to stderr, past the test harness's capture, so every run shows where it is.
    let _ = writeln!(std::io::stderr(), "explorer screenshot: {}", shot.display());

    browser.click("#events tbody tr.event");
    let folded = browser.eval(
        "return document.querySelectorAll('#events tbody tr.detail').length;",
        vec![],
    );
    assert_eq!(folded, 0);

    // The URL is the query: a fresh load of it shows the same rows and filled-in form.
    browser.goto("about:blank");
    browser.goto(&url);
    wait_loaded(&browser);
    let again: Vec<(String, String, String, String)> = shown(&browser)
        .iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    assert_eq!(again, want, "the shared URL shows the same rows");
    let host_input = browser.eval(
        "return document.querySelector('input[name=host]').value;",
        vec![],
    );
    assert_eq!(host_input, "web-2");

    // Live follow: rows written after it is switched on appear at the top.
    browser.click("#follow");
    browser.wait_for(
        WAIT,
        "follow to start",
        "return document.getElementById('status').textContent.endsWith('following…');",
    );
    let live = Stream::new("nginx", "web-2", Duration::from_secs(600), 50);
    let now = Timestamp::now();
    // Record 1049 of the pattern is an ERROR: it passes the level filter; 1000 (DEBUG)
    // does not. Their numbers are past the first rows', so their messages are new.
    let fresh = vec![
        live.record(1049, 2000, now, now + SignedDuration::from_secs(1)),
        live.record(1000, 2000, now, now + SignedDuration::from_secs(1)),
    ];
    rt.block_on(sink.write_file_unit(&fresh))
        .expect("write live rows");
    let top = browser.wait_for(
        WAIT,
        "the followed row at the top",
        "const tr = document.querySelector('#events tbody tr.event'); \
         return tr && tr.classList.contains('fresh') ? tr.children[4].textContent : null;",
    );
    assert_eq!(top.as_str(), Some(fresh[0].record.message()));
    std::thread::sleep(Duration::from_secs(2));
    let rows = shown(&browser);
    assert_eq!(
        rows.iter()
            .filter(|r| r[4] == fresh[0].record.message())
            .count(),
        1,
        "the followed row is shown once"
    );
    assert!(
        !rows.iter().any(|r| r[4] == fresh[1].record.message()),
        "a DEBUG row does not pass the filter"
    );
    let follow_url = browser.current_url();
    assert!(follow_url.contains("follow=1"), "{follow_url}");
}

//! `logship query -f`: the real binary follows a source while rows are written through the
//! sink across several bucket boundaries (2-second buckets), printing each row once, the
//! rows from before it started included, and exits 0 on SIGINT.

#[path = "support/query.rs"]
mod query_support;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use logship::parsers::Level;
use logship::sink::{CassandraSink, Placement, SinkOptions};
use query_support::{FileWriter, logship, route, write_config};
use support::cassandra::{apply_schema, default_node, unique_keyspace};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_new_rows_across_buckets_each_once() {
    let Some(node) = default_node() else { return };
    let ks = unique_keyspace("query_follow");
    let config = node.config(&ks);
    let session = apply_schema(&config).await;
    let sink = CassandraSink::with_session(session, &config, SinkOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &node.host, node.port, &ks);
    let bucket = Duration::from_secs(2);
    let app = route("app", bucket);
    let other = route("other", bucket);
    let mut web1 = FileWriter::new(&app, "web1", 1);
    let mut web2 = FileWriter::new(&app, "web2", 2);
    let mut noise = FileWriter::new(&other, "web1", 3);

    // Rows from before the follow starts: printed once, first.
    let mut want: BTreeSet<Uuid> = BTreeSet::new();
    let mut before = Vec::new();
    for i in 0..5 {
        let ts = Timestamp::now() - SignedDuration::from_secs(30 - i);
        let (r, id) = web1.record(ts, Level::Info, &format!("before {i}"), &[]);
        before.push(r);
        want.insert(id);
    }
    sink.write_file_unit(&before).await.unwrap();

    let mut child = logship()
        .args([
            "query", "-f", "-o", "json", "-q", "--source", "app", "--config",
        ])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed: HashMap<Uuid, usize> = HashMap::new();
    let collect = |until: Instant, printed: &mut HashMap<Uuid, usize>| {
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["source"], "app", "{line}");
            *printed
                .entry(Uuid::parse_str(v["id"].as_str().unwrap()).unwrap())
                .or_default() += 1;
            if Instant::now() >= until {
                break;
            }
        }
    };
    collect(Instant::now() + Duration::from_secs(5), &mut printed);
    assert_eq!(
        printed.keys().copied().collect::<BTreeSet<_>>(),
        want,
        "the rows from before"
    );

    // Eight seconds of writes, a unit every 200 ms on two hosts: four bucket boundaries.
    // Every fifth unit also carries a row stamped 3 s back (a late arrival).
    let started = Instant::now();
    let mut buckets = BTreeSet::new();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let now = Timestamp::now();
        let mut unit = Vec::new();
        for w in [&mut web1, &mut web2] {
            let (r, id) = w.record(now, Level::Warn, &format!("live {n}"), &[]);
            unit.push(r);
            want.insert(id);
            n += 1;
        }
        if n % 10 == 0 {
            let (r, id) = web2.record(
                now - SignedDuration::from_secs(3),
                Level::Error,
                "late",
                &[],
            );
            unit.push(r);
            want.insert(id);
        }
        let (r, _) = noise.record(now, Level::Error, "not followed", &[]);
        unit.push(r);
        buckets.insert(Placement::of(now, bucket).bucket);
        sink.write_file_unit(&unit).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        buckets.len() >= 4,
        "the writes span {} buckets",
        buckets.len()
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && printed.len() < want.len() {
        collect(Instant::now() + Duration::from_millis(500), &mut printed);
    }
    // A few more polls: nothing may be printed twice.
    collect(Instant::now() + Duration::from_secs(2), &mut printed);
    let got: BTreeSet<Uuid> = printed.keys().copied().collect();
    assert_eq!(got, want, "every row printed");
    let twice: Vec<_> = printed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "printed more than once: {twice:?}");

    // SIGINT ends it with status 0.
    let pid = child.id() as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "logship query -f did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

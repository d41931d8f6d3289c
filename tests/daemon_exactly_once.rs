//! Issue 10 at the daemon level: `kill -9` loops of the real binary against the real
//! Cassandra, counting rows by content. (b) a `log_format` without `$time_local`, whose
//! entries have no time of their own; (c) logrotate's `copytruncate` with the copies inside
//! the pattern. Each line must be exactly one row however often the agent is killed.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent::{Db, WAIT, Workspace, assert_exactly_once, nginx_line, open_append, wait_until};

const ROWS: &str = "logship_rows_written_total{table=\"infrastructure_logs\"}";
/// The agent is killed this many times while lines are written and shipped.
const KILLS: usize = 3;
/// Rotated copies kept (`rotate 9`): more than the test makes.
const ROTATE_KEEP: u64 = 9;

/// `combined` without `[$time_local]`: nginx lines that carry no time.
const NO_TIME_FORMAT: &str = r#"$remote_addr - $remote_user "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

fn untimed_line(n: u64) -> String {
    format!(
        "10.2.{}.{} - - \"GET /line/{n}?q=x HTTP/1.1\" 200 {} \"-\" \"curl/8.5\"\n",
        (n / 250) % 250,
        n % 250,
        100 + n % 900
    )
}

fn source_toml(name: &str, glob: &Path, log_format: Option<&str>) -> String {
    let mut s = format!(
        "\n[[source]]\nname = \"{name}\"\npaths = [\"{}\"]\nexclude = [\"*.gz\"]\nformat = \"nginx\"\n",
        glob.display()
    );
    if let Some(f) = log_format {
        s.push_str(&format!("log_format = '{f}'\n"));
    }
    s
}

/// How the writer rotates its file.
#[derive(Clone, Copy)]
enum Rotation {
    None,
    /// logrotate `copytruncate`: `.1` renamed to `.2` (and so on), the file copied to `.1`,
    /// then truncated; the copies match the source's pattern.
    CopyTruncate,
}

/// Writes `total` lines, 100 every `pause`, rotating every `every` lines; kills and restarts
/// the agent `KILLS` times mid-stream; then waits until everything is shipped and settled.
fn kill_loop(
    db: &Db,
    ws: &Workspace,
    total: u64,
    line: fn(u64) -> String,
    rotation: Rotation,
    every: u64,
    pause: Duration,
) {
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let log: PathBuf = ws.log("app.log");
        let written = Arc::clone(&written);
        std::thread::spawn(move || {
            let mut f = open_append(&log);
            let mut n = 0;
            while n < total {
                if n > 0 && n % every == 0 {
                    if let Rotation::CopyTruncate = rotation {
                        // logrotate's shift: .k to .k+1, oldest first. Enough
                        // generations are kept that none is deleted during the test:
                        // a copy deleted before a restarted agent read it would lose
                        // lines whatever the agent does.
                        for k in (1..ROTATE_KEEP).rev() {
                            let from = log.with_extension(format!("log.{k}"));
                            if from.exists() {
                                let to = log.with_extension(format!("log.{}", k + 1));
                                fs::rename(&from, &to).expect("shift a rotated copy");
                            }
                        }
                        fs::copy(&log, log.with_extension("log.1")).expect("copy");
                        f.set_len(0).expect("truncate");
                    }
                }
                let chunk: String = (n..n + 100).map(line).collect();
                f.write_all(chunk.as_bytes()).expect("write");
                n += 100;
                written.store(n, Ordering::SeqCst);
                std::thread::sleep(pause);
            }
        })
    };
    for k in 0..KILLS {
        // Killed while shipping: some rows acknowledged by this process, more in flight.
        wait_until(WAIT, "rows being written", || {
            (agent.metric(ROWS)? >= 600.0).then_some(())
        });
        agent.kill9();
        eprintln!(
            "kill {} with {} lines written",
            k + 1,
            written.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(400));
        agent = ws.spawn(&[]);
        agent.wait_ready();
    }
    writer.join().expect("writer");
    db.wait_rows("app", &ws.host, total as usize);
    agent.wait_settled();
    // Past rotate_wait (3 s), so rotated copies have been read to their end.
    std::thread::sleep(Duration::from_secs(4));
    let m = agent.metrics();
    let series: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("logship_checkpoint_lag_bytes{"))
        .collect();
    let labels: std::collections::HashSet<&str> = series
        .iter()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        labels.len(),
        series.len(),
        "one lag series per file: {series:?}"
    );
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

/// (b) A `log_format` without `$time_local`: every entry takes its file's carried time, so
/// a replay after `kill -9` lands on the row the first read wrote.
#[test]
fn kill_9_loop_with_a_log_format_without_time_writes_each_line_once() {
    let Some(db) = Db::new("k9notime") else {
        return;
    };
    let ws = Workspace::new("k9notime");
    let src = source_toml("app", &ws.log("app.log*"), Some(NO_TIME_FORMAT));
    ws.write_config(Some(&db), &src, &[]);
    const TOTAL: u64 = 6_000;
    kill_loop(
        &db,
        &ws,
        TOTAL,
        untimed_line,
        Rotation::None,
        u64::MAX,
        Duration::from_millis(30),
    );
    let rows = db.rows_of("app", &ws.host);
    assert!(
        rows.iter().all(|r| r.parse_error.is_none()),
        "the format parses these lines"
    );
    assert_exactly_once(&rows, TOTAL, "log_format without time, kill -9 loop");
}

/// (c) copytruncate with the copies matching the pattern (`app.log*`), killed mid-stream:
/// a copy continues its original, so neither the copy nor a replay adds rows.
#[test]
fn kill_9_loop_with_copytruncate_copies_in_the_pattern_writes_each_line_once() {
    let Some(db) = Db::new("k9copytr") else {
        return;
    };
    let ws = Workspace::new("k9copytr");
    let src = source_toml("app", &ws.log("app.log*"), None);
    ws.write_config(Some(&db), &src, &[]);
    const TOTAL: u64 = 9_000;
    kill_loop(
        &db,
        &ws,
        TOTAL,
        nginx_line,
        Rotation::CopyTruncate,
        2_000,
        Duration::from_millis(100),
    );
    let rows = db.rows_of("app", &ws.host);
    assert_exactly_once(
        &rows,
        TOTAL,
        "copytruncate with copies in the pattern, kill -9 loop",
    );
}

//! `kill -9` while lines are being written and shipped, with rename+create rotations before
//! and after the kill, then a restart: every line lands in Cassandra exactly once.

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::fs;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agent::{
    Db, Source, WAIT, Workspace, assert_exactly_once, nginx_line, open_append, wait_until,
};

const TOTAL: u64 = 12_000;
/// Line numbers at which the writer rotates (rename to `app.log.<k>`, create a new file).
const ROTATE_AT: [u64; 2] = [4_000, 8_000];
/// The writer waits here until the agent has been killed.
const PAUSE_AT: u64 = 6_500;

#[test]
fn kill_9_during_writes_with_rotations_then_restart_ships_every_line_once() {
    let Some(db) = Db::new("kill9") else {
        return;
    };
    let ws = Workspace::new("kill9");
    ws.write_config(Some(&db), "", &[Source::nginx("app", &ws.log("app.log*"))]);
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();

    // A writer like a web server: one open file, 100 lines every 50 ms, rotated by
    // rename+create (logrotate without copytruncate). At PAUSE_AT it waits for the kill, so
    // the kill always falls mid-stream however slow this machine is today.
    let written = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = ws.log("app.log");
        let dir = ws.log("");
        let (written, killed) = (Arc::clone(&written), Arc::clone(&killed));
        std::thread::spawn(move || {
            let mut f = open_append(&log);
            let mut n = 0;
            while n < TOTAL {
                if let Some(k) = ROTATE_AT.iter().position(|r| *r == n) {
                    fs::rename(&log, dir.join(format!("app.log.{}", k + 1))).unwrap();
                    f = open_append(&log);
                }
                if n == PAUSE_AT {
                    while !killed.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                let chunk: String = (n..n + 100).map(nginx_line).collect();
                f.write_all(chunk.as_bytes()).unwrap();
                n += 100;
                written.store(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // Kill while shipping, after the first rotation.
    wait_until(WAIT, "rows of the rotated file being written", || {
        let rows = agent.metric("logship_rows_written_total{table=\"infrastructure_logs\"}")?;
        (rows >= 5_000.0).then_some(())
    });
    let shipped = agent.metric("logship_rows_written_total{table=\"infrastructure_logs\"}");
    agent.kill9();
    killed.store(true, Ordering::SeqCst);
    eprintln!(
        "killed the agent with {} lines written, {shipped:?} rows acknowledged",
        written.load(Ordering::SeqCst)
    );
    // Down for a while: more lines and the second rotation happen meanwhile.
    let down = Instant::now();
    while written.load(Ordering::SeqCst) < ROTATE_AT[1] + 500 && down.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    writer.join().unwrap();
    db.wait_rows("app", &ws.host, TOTAL as usize);
    // Settled: every file read to its end and acknowledged, so nothing more can arrive.
    agent.wait_settled();
    let rows = db.rows_of("app", &ws.host);
    assert_exactly_once(&rows, TOTAL, "after kill -9 and restart");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

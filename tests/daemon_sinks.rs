//! `logship run` with the local sinks (`[sink] type = "file" | "stdout" | "null"`), end to
//! end with the real binary: lines are counted by content in what the sink wrote, never by
//! the agent's counters (the null sink, which writes nothing, is checked through its
//! checkpoints: a restart reads nothing again).

#[path = "support/agent.rs"]
mod agent;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::{
    Agent, Source, WAIT, Workspace, append_lines, line_number, nginx_line, open_append, wait_until,
};

fn file_sink_toml(out: &Path, max_file_bytes: u64, max_files: usize) -> String {
    format!(
        "[sink]\ntype = \"file\"\npath = \"{}\"\nmax_file_bytes = {max_file_bytes}\nmax_files = {max_files}\n\n",
        out.display()
    )
}

/// Every output file of the file sink (`records.jsonl`, `records.jsonl.1`...).
fn output_files(out: &Path) -> Vec<PathBuf> {
    let dir = out.parent().unwrap();
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&name))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// How many times each line number appears in the output files, by the records' messages.
/// Read again when the sink rotated a file away while it was being listed.
fn count_lines(out: &Path) -> BTreeMap<u64, usize> {
    for _ in 0..50 {
        if let Some(seen) = try_count_lines(out) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the output files kept moving while being read");
}

fn try_count_lines(out: &Path) -> Option<BTreeMap<u64, usize>> {
    let mut seen = BTreeMap::new();
    for f in output_files(out) {
        let text = match fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", f.display()));
            let n = line_number(v["message"].as_str().unwrap())
                .unwrap_or_else(|| panic!("no line number in {line}"));
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    Some(seen)
}

fn assert_each_once(seen: &BTreeMap<u64, usize>, range: std::ops::Range<u64>, what: &str) {
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(dups.is_empty(), "{what}: lines written twice: {dups:?}");
    let missing: Vec<u64> = range
        .clone()
        .filter(|k| !seen.contains_key(k))
        .take(20)
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: missing lines, first: {missing:?}"
    );
    let extra: Vec<_> = seen
        .keys()
        .filter(|k| !range.contains(k))
        .take(10)
        .collect();
    assert!(extra.is_empty(), "{what}: unexpected lines {extra:?}");
}

/// Waits until every file is read to its end and acknowledged and the buffer is empty.
fn wait_settled(agent: &Agent) {
    wait_until(WAIT, "checkpoint lag 0 and an empty buffer", || {
        let m = agent.metrics();
        let lag = agent::total_lag(&m);
        let depth = agent::metric_value(&m, "logship_buffer_depth{}")?;
        let files = agent::metric_value(&m, "logship_open_files{}")?;
        (lag == 0.0 && depth == 0.0 && files >= 0.0).then_some(())
    });
}

const TOTAL: u64 = 12_000;
/// The writer rotates its log (rename + create) here.
const ROTATE_AT: u64 = 4_000;
/// The writer waits here until the agent has been killed.
const PAUSE_AT: u64 = 6_500;

#[test]
fn file_sink_kill_9_and_rotations_give_every_line_exactly_once_in_the_output_files() {
    let ws = Workspace::new("filesink");
    let out = ws.path().join("out").join("records.jsonl");
    // Small output files: the sink rotates its own output many times, around the kill too.
    ws.write_config(
        None,
        &file_sink_toml(&out, 400_000, 1000),
        &[Source::nginx("app", &ws.log("app.log*"))],
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();

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
                if n == ROTATE_AT {
                    fs::rename(&log, dir.join("app.log.1")).unwrap();
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
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };

    // Kill while shipping, after the log's rotation, by what the output files hold.
    wait_until(WAIT, "5000 lines in the output files", || {
        (count_lines(&out).len() >= 5_000).then_some(())
    });
    agent.kill9();
    killed.store(true, Ordering::SeqCst);
    let before_restart = count_lines(&out);
    eprintln!(
        "killed with {} lines written, {} in the output",
        written.load(Ordering::SeqCst),
        before_restart.len()
    );
    let down = Instant::now();
    while written.load(Ordering::SeqCst) < PAUSE_AT + 1_000 && down.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    writer.join().unwrap();
    wait_until(WAIT, "every line in the output files", || {
        (count_lines(&out).len() as u64 >= TOTAL).then_some(())
    });
    wait_settled(&agent);
    let seen = count_lines(&out);
    assert_each_once(&seen, 0..TOTAL, "file sink after kill -9 and restart");
    let files = output_files(&out);
    assert!(files.len() >= 5, "the output was rotated: {files:?}");
    for f in &files {
        let len = fs::metadata(f).unwrap().len();
        assert!(len <= 400_000, "{} holds {len} bytes", f.display());
    }
    // The record is the object `logship parse` prints, plus where it came from.
    let first = fs::read_to_string(&files[0]).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    for key in [
        "timestamp",
        "level",
        "source",
        "host",
        "message",
        "fields",
        "file_path",
        "file_offset",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    assert_eq!(v["source"], "app");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

#[test]
fn file_sink_keeps_a_bounded_number_of_rotated_files() {
    let ws = Workspace::new("filebound");
    let out = ws.path().join("out").join("records.jsonl");
    ws.write_config(
        None,
        &file_sink_toml(&out, 20_000, 2),
        &[Source::nginx("web", &ws.log("*.log"))],
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    append_lines(&ws.log("access.log"), 0, 2_000);
    wait_until(WAIT, "the last line in the output", || {
        count_lines(&out).contains_key(&1_999).then_some(())
    });
    wait_settled(&agent);
    let files = output_files(&out);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["records.jsonl", "records.jsonl.1", "records.jsonl.2"],
        "the current file and max_files = 2 rotated ones"
    );
    // What is kept is the newest lines, each once, up to the last.
    let seen = count_lines(&out);
    let oldest = *seen.keys().next().unwrap();
    assert!(oldest > 0, "old files were deleted");
    assert_each_once(&seen, oldest..2_000, "bounded file sink");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

/// Runs the agent with stdout captured; returns the lines it printed once `n` arrived.
fn run_stdout_sink(ws: &Workspace, format: &str, n: u64) -> Vec<String> {
    ws.write_config(
        None,
        &format!("[sink]\ntype = \"stdout\"\nformat = \"{format}\"\n\n"),
        &[Source::nginx("web", &ws.log("*.log"))],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["run", "--config"])
        .arg(ws.config())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LOGSHIP_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn logship run");
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let log = ws.log("access.log");
    let _ = fs::remove_file(&log);
    append_lines(&log, 0, n);
    wait_until(WAIT, "every line on stdout", || {
        (lines.lock().unwrap().len() as u64 >= n).then_some(())
    });
    // SIGTERM: a clean stop.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "the agent did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    reader.join().unwrap();
    lines.lock().unwrap().clone()
}

#[test]
fn stdout_sink_prints_each_record_once_as_json_or_as_a_readable_line() {
    let ws = Workspace::new("stdoutsink");
    let lines = run_stdout_sink(&ws, "json", 500);
    let mut seen = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert_eq!(v["source"], "web");
        *seen
            .entry(line_number(v["message"].as_str().unwrap()).unwrap())
            .or_insert(0) += 1;
    }
    assert_each_once(&seen, 0..500, "stdout json");

    let ws = Workspace::new("stdouttext");
    let lines = run_stdout_sink(&ws, "text", 50);
    let mut seen = BTreeMap::new();
    for l in &lines {
        assert!(!l.starts_with('{'), "a readable line, not JSON: {l}");
        assert!(l.contains(" INFO ") && l.contains(" web "), "{l}");
        *seen.entry(line_number(l).unwrap()).or_insert(0) += 1;
    }
    assert_each_once(&seen, 0..50, "stdout text");
}

#[test]
fn null_sink_acknowledges_everything_so_a_restart_reads_nothing_again() {
    let ws = Workspace::new("nullsink");
    ws.write_config(
        None,
        "[sink]\ntype = \"null\"\n\n",
        &[Source::nginx("web", &ws.log("*.log"))],
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    append_lines(&ws.log("access.log"), 0, 5_000);
    let rows = "logship_rows_written_total{table=\"infrastructure_logs\"}";
    wait_until(WAIT, "5000 records through the null sink", || {
        (agent.metric(rows)? >= 5_000.0).then_some(())
    });
    wait_settled(&agent);
    let (code, body) = agent.get("/health").unwrap();
    assert_eq!(code, 200, "{body}");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));

    // The checkpoints hold the acknowledged offsets: nothing is read again.
    let checkpoints = fs::read_to_string(ws.path().join("data").join("checkpoints.json")).unwrap();
    let size = fs::metadata(ws.log("access.log")).unwrap().len();
    assert!(
        checkpoints.contains(&size.to_string()),
        "checkpoint at the file's end ({size}): {checkpoints}"
    );
    let mut agent = ws.spawn(&[]);
    agent.wait_ready();
    append_lines(&ws.log("access.log"), 5_000, 5_010);
    wait_until(WAIT, "the 10 new records", || {
        (agent.metric(rows)? >= 10.0).then_some(())
    });
    wait_settled(&agent);
    assert_eq!(
        agent.metric(rows),
        Some(10.0),
        "only the new lines were read"
    );
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
}

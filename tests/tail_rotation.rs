//! Rotation while a writer is appending numbered lines: every line delivered exactly once.

#[path = "support/tail.rs"]
mod tail_support;

use std::fs;
use std::io::Write;
use std::thread;

use tail_support::*;

const TOTAL: u64 = 3000;

/// logrotate's default (`create`): rename, then a new file under the old name. The writer
/// keeps writing to the renamed file for a while (nginx until it gets USR1), then reopens.
#[test]
fn rename_and_create_out_of_the_pattern() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 100);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    let p = path.clone();
    let writer = thread::spawn(move || {
        write_lines(&mut f, 100, 1000);
        fs::rename(&p, p.with_extension("log.1")).unwrap();
        // Still writing to the renamed file through the old descriptor.
        write_lines(&mut f, 1000, 1200);
        let mut g = append_open(&p);
        write_lines(&mut g, 1200, 2000);
        // A second rotation, this time the writer switches at once.
        fs::rename(&p, p.with_extension("log.2")).unwrap();
        let mut h = append_open(&p);
        write_lines(&mut h, 2000, TOTAL);
    });
    writer.join().unwrap();
    assert!(
        wait_until(LONG, || all_delivered(&agent.sink.messages(), TOTAL)),
        "not everything delivered"
    );
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, TOTAL);
}

/// A pattern that also matches the rotated names: the renamed file is the same file (same
/// identity), so it is neither read again nor dropped; compressed ones are excluded.
#[test]
fn rename_within_the_pattern_and_gzip_excluded() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 100);
    let mut s = spec("app", &[glob_in(logs.path(), "app.log*")], &raw());
    s.exclude = vec!["*.gz".into()];
    let agent = Agent::start(data.path(), fast_config(), vec![s], AckMode::InOrder);
    let p = path.clone();
    let dir = logs.path().to_owned();
    let writer = thread::spawn(move || {
        write_lines(&mut f, 100, 1000);
        fs::rename(&p, p.with_extension("log.1")).unwrap();
        let mut g = append_open(&p);
        write_lines(&mut f, 1000, 1100);
        write_lines(&mut g, 1100, 2000);
        // logrotate's compression of an older file: never read.
        let mut gz = append_open(&dir.join("app.log.2.gz"));
        gz.write_all(b"line 99999999 must never be shipped\n")
            .unwrap();
        write_lines(&mut g, 2000, TOTAL);
    });
    writer.join().unwrap();
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        TOTAL
    )));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, TOTAL);
}

/// `copytruncate`: the file is copied and truncated in place; the writer (O_APPEND) goes on
/// at offset 0. Lines written between the copy and the truncation are lost by design of
/// copytruncate (logrotate documents it), and so are lines the tailer had not read yet when
/// the truncation came; so, as a steady state, the writer truncates once the tailer has
/// caught up, as logrotate's daily run usually finds it.
#[test]
fn copytruncate() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 100);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    let records = agent.sink.records.clone();
    let p = path.clone();
    let writer = thread::spawn(move || {
        write_lines(&mut f, 100, 1000);
        for (at, next) in [(1000u64, 2000u64), (2000, TOTAL)] {
            let caught_up = || records.lock().unwrap().len() as u64 >= at;
            assert!(wait_until(LONG, caught_up));
            fs::copy(&p, p.with_extension("log.1")).unwrap();
            f.set_len(0).unwrap();
            // Shorter than before, so the shrink is visible whatever the timing.
            write_lines(&mut f, at, at + 10);
            write_lines(&mut f, at + 10, next);
        }
    });
    writer.join().unwrap();
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        TOTAL
    )));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, TOTAL);
}

/// The file is deleted while the writer still has it open and writes to it, then the
/// same name is created again: the rest of the deleted file is read through the open
/// descriptor, and the new file from its beginning.
#[test]
fn delete_then_same_name_recreated() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 100);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    let p = path.clone();
    let writer = thread::spawn(move || {
        write_lines(&mut f, 100, 1000);
        fs::remove_file(&p).unwrap();
        write_lines(&mut f, 1000, 1500);
        drop(f);
        let mut g = append_open(&p);
        write_lines(&mut g, 1500, TOTAL);
    });
    writer.join().unwrap();
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        TOTAL
    )));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, TOTAL);
}

/// Files that appear after the start are read from their beginning, even with
/// `read_from = "end"`, and many files in one directory are all followed.
#[test]
fn new_files_are_read_from_the_beginning_even_with_read_from_end() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut old = append_open(&logs.path().join("old.log"));
    writeln!(old, "history that read_from=end skips").unwrap();
    let mut s = spec("app", &[glob_in(logs.path(), "*.log")], &raw());
    s.read_from = logship::tail::ReadFrom::End;
    let agent = Agent::start(data.path(), fast_config(), vec![s], AckMode::InOrder);
    for i in 0..20u64 {
        let mut f = append_open(&logs.path().join(format!("new{i}.log")));
        write_lines(&mut f, i * 10, i * 10 + 10);
    }
    write_lines(&mut old, 200, 210);
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        210
    )));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, 210);
    assert!(!msgs.iter().any(|m| m.contains("history")));
}

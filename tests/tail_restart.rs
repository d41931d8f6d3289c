//! Checkpoints: restart resumes where the sink acknowledged, in-flight records are read
//! again, out-of-order acknowledgements never move a checkpoint over a gap, a corrupt
//! checkpoint file is survived, and a reload keeps the sources that stay.

#[path = "support/tail.rs"]
mod tail_support;

use std::fs;

use logship::tail::{ReadFrom, checkpoint};
use tail_support::*;

#[test]
fn restart_resumes_after_what_was_acknowledged() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let sources = || vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())];
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 500);

    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 500));
    let first = agent.stop();
    write_lines(&mut f, 500, 800);

    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 300));
    let second = agent.stop();

    let msgs = |r: &[logship::pipeline::FileRecord]| {
        r.iter()
            .map(|r| r.record.message().to_owned())
            .collect::<Vec<_>>()
    };
    assert_exactly_once(&msgs(&first), 500);
    let t = tally(&msgs(&second));
    assert_eq!(
        t.keys().next(),
        Some(&500),
        "resumed at the first unread line"
    );
    let mut all = msgs(&first);
    all.extend(msgs(&second));
    assert_exactly_once(&all, 800);
}

#[test]
fn unacknowledged_records_are_read_again_after_restart() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sources = || vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())];
    let mut f = append_open(&logs.path().join("app.log"));
    write_lines(&mut f, 0, 1000);

    // The sink stops acknowledging after 300 records (say Cassandra went away).
    let agent = Agent::start(
        data.path(),
        fast_config(),
        sources(),
        AckMode::StopAfter(300),
    );
    assert!(wait_until(LONG, || agent.sink.len() >= 1000));
    agent.stop();
    let saved = fs::read_to_string(data.path().join(checkpoint::FILE_NAME)).unwrap();
    let expected_offset = 300 * (line(0).len() as u64 + 1);
    assert!(
        saved.contains(&format!("\"offset\":{expected_offset}")),
        "{saved}"
    );

    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 700));
    let again = agent.stop();
    let msgs: Vec<String> = again
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    let t = tally(&msgs);
    assert_eq!(
        t.keys().next(),
        Some(&300),
        "nothing acknowledged is read again"
    );
    assert_eq!(t.len(), 700);
}

#[test]
fn out_of_order_acknowledgements_never_skip_a_line() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sources = || vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())];
    let mut f = append_open(&logs.path().join("app.log"));
    write_lines(&mut f, 0, 2000);
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::Reversed);
    assert!(wait_until(LONG, || agent
        .sink
        .acked
        .load(std::sync::atomic::Ordering::SeqCst)
        >= 2000));
    let first = agent.stop();
    write_lines(&mut f, 2000, 2100);
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 100));
    let second = agent.stop();
    let mut all: Vec<String> = first
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    all.extend(second.iter().map(|r| r.record.message().to_owned()));
    assert_exactly_once(&all, 2100);
}

#[test]
fn read_from_end_applies_to_the_first_start_only() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sources = || {
        let mut s = spec("app", &[glob_in(logs.path(), "*.log")], &raw());
        s.read_from = ReadFrom::End;
        vec![s]
    };
    let mut f = append_open(&logs.path().join("app.log"));
    write_lines(&mut f, 0, 100);
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    write_lines(&mut f, 100, 200);
    assert!(wait_until(LONG, || agent.sink.len() >= 100));
    let first = agent.stop();
    // Written while the agent was down: must not be skipped by read_from = "end".
    write_lines(&mut f, 200, 300);
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 100));
    let second = agent.stop();
    let mut all: Vec<String> = first
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    all.extend(second.iter().map(|r| r.record.message().to_owned()));
    let t = tally(&all);
    assert_eq!(t.keys().next(), Some(&100));
    assert_eq!(t.len(), 200);
    assert!(t.values().all(|c| *c == 1));
}

#[test]
fn corrupt_checkpoint_file_is_reported_and_every_file_read_from_the_start() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut f = append_open(&logs.path().join("app.log"));
    write_lines(&mut f, 0, 50);
    fs::write(data.path().join(checkpoint::FILE_NAME), b"\0\0garbage{").unwrap();
    let mut s = spec("app", &[glob_in(logs.path(), "*.log")], &raw());
    s.read_from = ReadFrom::End;
    let agent = Agent::start(data.path(), fast_config(), vec![s], AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 50));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, 50);
    let moved = fs::read_dir(data.path())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(moved, "the corrupt file is kept aside for inspection");
}

/// SIGHUP-style reload while lines are written: the source that stays loses and repeats
/// nothing; a changed source continues right after what it had queued; a removed source
/// stops; an added one starts.
#[test]
fn reconfigure_keeps_sources_that_stay() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let a_dir = logs.path().join("a");
    let b_dir = logs.path().join("b");
    fs::create_dir_all(&a_dir).unwrap();
    fs::create_dir_all(&b_dir).unwrap();
    let parser = raw();
    let a = spec("a", &[glob_in(&a_dir, "*.log")], &parser);
    let b = spec("b", &[glob_in(&b_dir, "*.log")], &parser);
    let mut fa = append_open(&a_dir.join("a.log"));
    let mut fb = append_open(&b_dir.join("b.log"));
    write_lines(&mut fa, 0, 300);
    write_lines(&mut fb, 100_000, 100_010);
    let mut agent = Agent::start(
        data.path(),
        fast_config(),
        vec![a.clone(), b.clone()],
        AckMode::InOrder,
    );

    // Unchanged a, b removed.
    let r = agent.handle.reconfigure(vec![a.clone()]).unwrap();
    assert_eq!(r.unchanged, vec!["a".to_string()]);
    assert_eq!(r.removed, vec!["b".to_string()]);
    write_lines(&mut fa, 300, 600);
    // a changed (longer max line): restarted, continues where it stopped sending.
    let mut a2 = a.clone();
    a2.max_line_bytes = 200_000;
    let r = agent
        .handle
        .reconfigure(vec![a2.clone(), b.clone()])
        .unwrap();
    assert_eq!(r.restarted, vec!["a".to_string()]);
    assert_eq!(r.added, vec!["b".to_string()]);
    write_lines(&mut fa, 600, 1000);
    // A bad reload changes nothing.
    let mut bad = a2.clone();
    bad.include = vec!["relative/*.log".into()];
    assert!(agent.handle.reconfigure(vec![bad]).is_err());
    write_lines(&mut fa, 1000, 1200);
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        1200
    )));
    let records = agent.stop();
    let a_msgs: Vec<String> = records
        .iter()
        .filter(|r| &*r.route.source == "a")
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&a_msgs, 1200);
    // b's ten lines: read once before removal, and after re-adding resumed from the
    // acknowledged checkpoint: at least once.
    let b_msgs: Vec<String> = records
        .iter()
        .filter(|r| &*r.route.source == "b")
        .map(|r| r.record.message().to_owned())
        .collect();
    let tb = tally(&b_msgs);
    assert_eq!(tb.len(), 10);
    assert!(tb.values().all(|c| *c == 1), "{tb:?}");
}

/// logrotate ran while the agent was down: the lines written to the old file after the
/// last checkpoint are read from the rotated file (found by identity, though its new name
/// is outside the pattern), and the new file from its beginning.
#[test]
fn rotation_while_stopped_loses_nothing() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("app.log");
    let sources = || vec![spec("app", &[glob_in(logs.path(), "*.log")], &raw())];
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 500);
    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 500));
    let first = agent.stop();

    write_lines(&mut f, 500, 800);
    fs::rename(&path, logs.path().join("app.log.1")).unwrap();
    let mut g = append_open(&path);
    write_lines(&mut g, 800, 1000);

    let agent = Agent::start(data.path(), fast_config(), sources(), AckMode::InOrder);
    assert!(wait_until(LONG, || agent.sink.len() >= 500));
    // The rotated file is let go after rotate_wait; lines still written to it are read.
    write_lines(&mut f, 1000, 1010);
    assert!(wait_until(LONG, || agent.sink.len() >= 510));
    let second = agent.stop();
    let mut all: Vec<String> = first
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    all.extend(second.iter().map(|r| r.record.message().to_owned()));
    assert_exactly_once(&all, 1010);
}

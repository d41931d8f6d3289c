//! Files an operator eventually meets: a multi-GiB sparse file, a file of NUL bytes, a
//! directory or FIFO matching the pattern.

#[path = "support/tail.rs"]
mod tail_support;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use tail_support::*;

const GIB: u64 = 1024 * 1024 * 1024;

/// A 5 GiB file that is a hole between real lines (what a `copytruncate` without O_APPEND,
/// or preallocation, leaves). The hole is NUL bytes at a line start: skipped, jumped over
/// with SEEK_DATA rather than read, so this takes milliseconds; memory stays bounded.
#[test]
fn sparse_5_gib_file() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("big.log");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 100);
    let head = f.metadata().unwrap().len();
    f.set_len(head + 5 * GIB).unwrap();
    let mut w = fs::OpenOptions::new().write(true).open(&path).unwrap();
    w.seek(SeekFrom::End(0)).unwrap();
    for n in 100..200 {
        writeln!(w, "{}", line(n)).unwrap();
    }
    let size = w.metadata().unwrap().len();
    assert!(size > 5 * GIB);

    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("big", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    assert!(wait_until(LONG, || all_delivered(
        &agent.sink.messages(),
        200
    )));
    let monitor = agent.handle.monitor();
    assert!(
        wait_until(LONG, || monitor
            .snapshot()
            .files
            .iter()
            .any(|f| f.acked == size && f.lag == 0)),
        "checkpoint reaches the end of the 5 GiB file: {:?}",
        monitor.snapshot().files
    );
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, 200);
}

/// A file of NUL bytes (written, not sparse): no record, no error, the checkpoint moves
/// past them, and lines appended after are delivered.
#[test]
fn file_of_nul_bytes() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = logs.path().join("nul.log");
    fs::write(&path, vec![0u8; 3 * 1024 * 1024 + 17]).unwrap();
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("nul", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    let monitor = agent.handle.monitor();
    assert!(wait_until(LONG, || {
        let s = monitor.snapshot();
        s.sources[0].bytes == 3 * 1024 * 1024 + 17 && s.files.first().is_some_and(|f| f.lag == 0)
    }));
    assert_eq!(agent.sink.len(), 0, "NUL bytes are not records");
    let mut f = append_open(&path);
    write_lines(&mut f, 0, 10);
    assert!(wait_until(LONG, || agent.sink.len() >= 10));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, 10);
    assert!(records.iter().all(|r| !r.record.message().contains('\0')));
}

/// Non-regular files that match the pattern are not read (a FIFO would block the source
/// forever) and do not stop the regular files next to them.
#[test]
fn directories_and_fifos_matching_the_pattern_are_left_alone() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    fs::create_dir(logs.path().join("dir.log")).unwrap();
    let fifo = logs.path().join("fifo.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let mut f = append_open(&logs.path().join("ok.log"));
    write_lines(&mut f, 0, 10);
    let agent = Agent::start(
        data.path(),
        fast_config(),
        vec![spec("x", &[glob_in(logs.path(), "*.log")], &raw())],
        AckMode::InOrder,
    );
    assert!(wait_until(LONG, || agent.sink.len() >= 10));
    write_lines(&mut f, 10, 20);
    assert!(wait_until(Duration::from_secs(30), || agent.sink.len() >= 20));
    let records = agent.stop();
    let msgs: Vec<String> = records
        .iter()
        .map(|r| r.record.message().to_owned())
        .collect();
    assert_exactly_once(&msgs, 20);
}

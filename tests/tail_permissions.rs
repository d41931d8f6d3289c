//! A file the agent may not read: one clear error line naming the file and the error kind,
//! the other files carry on, and once the permission is fixed the file is read.
//!
//! Root reads any file regardless of its mode, so when the tests run as root the probe
//! process is started as `nobody` (uid/gid 65534), like the packaged agent runs as its own
//! unprivileged user. As an ordinary user it runs as is.

#[path = "support/tail.rs"]
mod tail_support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use tail_support::*;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn read_lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn unreadable_file_is_reported_once_and_the_others_carry_on() {
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    for d in [logs.path(), data.path(), out_dir.path()] {
        chmod(d, 0o777);
    }
    let secret = logs.path().join("secret.log");
    let mut s = append_open(&secret);
    write_lines(&mut s, 1000, 1010);
    chmod(&secret, 0o000);
    let good = logs.path().join("good.log");
    let mut g = append_open(&good);
    write_lines(&mut g, 0, 10);
    chmod(&good, 0o644);

    let out = out_dir.path().join("delivered.txt");
    let log = out_dir.path().join("stderr.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tail-probe"));
    cmd.arg("--data")
        .arg(data.path())
        .arg("--out")
        .arg(&out)
        .arg("--glob")
        .arg(glob_in(logs.path(), "*.log"))
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).unwrap());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        cmd.uid(65534).gid(65534);
    }
    let mut probe = cmd.spawn().unwrap();
    let mut ready = String::new();
    BufReader::new(probe.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(
        ready.trim(),
        "ready",
        "stderr: {}",
        fs::read_to_string(&log).unwrap()
    );

    assert!(wait_until(LONG, || read_lines(&out).len() >= 10));
    // Several rescans (300 ms apart) see the unreadable file again.
    let errors = || {
        read_lines(&log)
            .into_iter()
            .filter(|l| l.contains("cannot read file") && l.contains("secret.log"))
            .collect::<Vec<_>>()
    };
    assert!(wait_until(LONG, || !errors().is_empty()));
    write_lines(&mut g, 10, 20);
    assert!(wait_until(LONG, || read_lines(&out).len() >= 20));
    let before = std::time::Instant::now();
    assert!(!wait_until(
        std::time::Duration::from_millis(1500),
        || errors().len() > 1
    ));
    assert!(before.elapsed().as_millis() >= 1500);
    let e = errors();
    assert_eq!(e.len(), 1, "one line per state change: {e:?}");
    assert!(e[0].contains("ERROR"), "{}", e[0]);
    assert!(e[0].contains("error_kind=permission denied"), "{}", e[0]);
    assert!(e[0].contains("source=probe"), "{}", e[0]);

    // Fixed by the operator: picked up at the next rescan.
    chmod(&secret, 0o644);
    assert!(wait_until(LONG, || read_lines(&out).len() >= 30));
    probe.kill().unwrap();
    probe.wait().unwrap();
    let delivered = read_lines(&out);
    let t = tally(&delivered);
    assert!(
        (0..20).chain(1000..1010).all(|n| t.get(&n) == Some(&1)),
        "{t:?}"
    );
    assert!(
        read_lines(&log)
            .iter()
            .any(|l| l.contains("file readable again"))
    );
    if root {
        eprintln!("ran the probe as nobody (uid 65534): root would bypass the file mode");
    }
}

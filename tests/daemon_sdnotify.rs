//! The sd_notify sequence, read from a test `NOTIFY_SOCKET`: READY=1 with STATUS=,
//! WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC then READY=1 on
//! SIGHUP, STOPPING=1 on SIGTERM.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/notify.rs"]
mod notify;
mod support;

use std::time::Duration;

use agent::{Db, Source, WAIT, Workspace, wait_until};
use notify::{Messages, listen, snapshot};

/// Index of the first message at or after `from` holding the line `state`.
fn find(m: &Messages, from: usize, state: &str) -> Option<usize> {
    snapshot(m)
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, (_, t))| t.lines().any(|l| l == state))
        .map(|(i, _)| i)
}

fn wait_for(m: &Messages, from: usize, state: &str) -> usize {
    wait_until(WAIT, &format!("{state} at or after message {from}"), || {
        find(m, from, state)
    })
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[test]
fn notify_socket_sees_ready_watchdog_reloading_and_stopping() {
    let Some(db) = Db::new("sdnotify") else {
        return;
    };
    let ws = Workspace::new("sdnotify");
    ws.write_config(Some(&db), "", &[Source::nginx("web", &ws.log("*.log"))]);
    let socket = ws.path().join("notify.sock");
    let messages = listen(&socket);
    let socket_env = socket.display().to_string();
    let mut agent = ws.spawn(&[
        ("NOTIFY_SOCKET", socket_env.as_str()),
        ("WATCHDOG_USEC", "2000000"),
    ]);

    let ready = wait_for(&messages, 0, "READY=1");
    let first = &snapshot(&messages)[ready].1;
    assert!(
        first
            .lines()
            .any(|l| l.starts_with("STATUS=") && l.contains("lines/s")),
        "READY=1 comes with a STATUS= line: {first:?}"
    );
    assert!(
        agent.stderr().contains("connected to Cassandra"),
        "READY=1 before the sink was up:\n{}",
        agent.stderr()
    );

    // Watchdog pings at about half of WATCHDOG_USEC (2 s): five of them, none late.
    let mut pings = vec![wait_for(&messages, ready, "WATCHDOG=1")];
    while pings.len() < 5 {
        let last = *pings.last().unwrap();
        pings.push(wait_for(&messages, last + 1, "WATCHDOG=1"));
    }
    let all = snapshot(&messages);
    for w in pings.windows(2) {
        let gap = all[w[1]].0 - all[w[0]].0;
        assert!(
            gap < Duration::from_millis(1900),
            "a watchdog gap of {gap:?} would let systemd's 2 s watchdog fire"
        );
    }
    let span = all[pings[4]].0 - all[pings[0]].0;
    assert!(
        span >= Duration::from_millis(2500),
        "four gaps in {span:?}: the watchdog is pinged far more often than every ~1 s"
    );

    // Reload: RELOADING=1 with the current CLOCK_MONOTONIC, then READY=1 again.
    let before = monotonic_usec();
    let from = snapshot(&messages).len();
    agent.signal(libc::SIGHUP);
    let reloading = wait_for(&messages, from, "RELOADING=1");
    let after = monotonic_usec();
    let text = &snapshot(&messages)[reloading].1;
    let usec: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {text:?}"))
        .parse()
        .unwrap();
    assert!(
        (before..=after).contains(&usec),
        "MONOTONIC_USEC={usec} is not between {before} and {after}"
    );
    wait_for(&messages, reloading + 1, "READY=1");
    agent.wait_log("config reloaded", WAIT);

    let from = snapshot(&messages).len();
    agent.signal(libc::SIGTERM);
    let stopping = wait_for(&messages, from, "STOPPING=1");
    assert_eq!(agent.wait_exit(Duration::from_secs(45)).code(), Some(0));
    let all = snapshot(&messages);
    assert!(
        all[stopping + 1..]
            .iter()
            .all(|(_, t)| !t.contains("READY=1")),
        "READY=1 after STOPPING=1: {:?}",
        &all[stopping..]
    );
}

//! The systemd watchdog proves every long-running thread alive, not a timer (issue 10,
//! defect 5): the real `logship run` with the `stdout` sink writes into a pipe nobody
//! reads, so once the pipe's 64 KiB fill, the drain loop is wedged in `write(2)` — not
//! waiting for anything it announced. The WATCHDOG=1 pings must stop and the agent must
//! say which thread is stuck; when the pipe is read again, the thread moves and the pings
//! come back. No test hook: the wedge is a real blocked system call.

#[path = "support/agent.rs"]
mod agent;
#[path = "support/notify.rs"]
mod notify;
mod support;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::{Source, Workspace, append_lines, wait_until};
use notify::{Messages, listen};

/// The agent's own bound (src/app.rs `STUCK_AFTER`, 20 s) plus the drain loop's announced
/// attempt bound (10 s) plus slack for a loaded machine.
const STUCK_WAIT: Duration = Duration::from_secs(120);

/// When the pings (`WATCHDOG=1`) arrived, oldest first.
fn pings(m: &Messages) -> Vec<Instant> {
    m.lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn a_wedged_drain_thread_stops_the_watchdog_pings_and_they_resume_when_it_moves() {
    let ws = Workspace::new("watchdog");
    ws.write_config(
        None,
        "[sink]\ntype = \"stdout\"\nformat = \"json\"\n\n",
        &[Source::nginx("web", &ws.log("*.log"))],
    );
    let socket = ws.path().join("notify.sock");
    let messages = listen(&socket);
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["run", "--config"])
        .arg(ws.config())
        .env_remove("LOGSHIP_LOG")
        .env_remove("JOURNAL_STREAM")
        .env("NOTIFY_SOCKET", &socket)
        // A ping every second (half of WATCHDOG_USEC).
        .env("WATCHDOG_USEC", "2000000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn logship run");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    {
        let pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                stderr.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
    }
    let log = || stderr.lock().unwrap().clone();

    wait_until(Duration::from_secs(60), "pings while healthy", || {
        (pings(&messages).len() >= 3).then_some(())
    });

    // ~200 bytes a JSON line: 5,000 lines are ~1 MB, far past the pipe's 64 KiB.
    append_lines(&ws.log("access.log"), 0, 5_000);
    let stuck_logged = wait_until(STUCK_WAIT, "the agent to report a stuck thread", || {
        log()
            .lines()
            .find(|l| l.contains("threads are stuck"))
            .map(str::to_owned)
    });
    assert!(
        stuck_logged.contains("sink"),
        "the stuck thread (the drain loop's, named sink) is named: {stuck_logged}"
    );
    let stuck_at = Instant::now();
    // Two seconds of grace for a ping already on its way, then none for five more.
    std::thread::sleep(Duration::from_secs(7));
    let late: Vec<_> = pings(&messages)
        .into_iter()
        .filter(|t| *t > stuck_at + Duration::from_secs(2))
        .collect();
    assert!(
        late.is_empty(),
        "{} WATCHDOG=1 pings after a thread was reported stuck\n{}",
        late.len(),
        log()
    );
    assert!(
        child.try_wait().expect("poll the agent").is_none(),
        "the agent itself keeps running: systemd decides to restart it\n{}",
        log()
    );

    // Read the pipe: the drain thread returns from write(2), beats, and the pings resume.
    let printed = Arc::new(Mutex::new(0_usize));
    {
        let printed = Arc::clone(&printed);
        std::thread::spawn(move || {
            let mut buf = vec![0_u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                *printed.lock().unwrap() += buf[..n].iter().filter(|b| **b == b'\n').count();
            }
        });
    }
    let unwedged_at = Instant::now();
    wait_until(Duration::from_secs(60), "pings to resume", || {
        (pings(&messages)
            .iter()
            .filter(|t| **t > unwedged_at)
            .count()
            >= 2)
            .then_some(())
    });
    wait_until(Duration::from_secs(60), "every line printed", || {
        (*printed.lock().unwrap() >= 5_000).then_some(())
    });

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(s) = child.try_wait().expect("poll the agent") {
            break s;
        }
        assert!(Instant::now() < until, "the agent did not stop\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", log());
}

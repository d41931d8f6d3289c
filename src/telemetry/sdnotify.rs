//! Talking to systemd: readiness, status, watchdog, reload and stop notifications.
//! Every call is a no-op when the agent is not run by systemd (`NOTIFY_SOCKET` unset).

use std::time::Duration;

use systemd::daemon;

fn send(state: &[(&str, &str)]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none_or(|s| s.is_empty()) {
        return;
    }
    if let Err(e) = daemon::notify(false, state.iter()) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Sources and sink are up.
pub fn ready(status: &str) {
    send(&[(daemon::STATE_READY, "1"), (daemon::STATE_STATUS, status)]);
}

/// A one-line status for `systemctl status`.
pub fn status(status: &str) {
    send(&[(daemon::STATE_STATUS, status)]);
}

/// The pipeline is alive.
pub fn watchdog() {
    send(&[(daemon::STATE_WATCHDOG, "1")]);
}

/// A reload begins; `MONOTONIC_USEC` lets systemd order it against `READY=1`.
pub fn reloading() {
    let usec = monotonic_usec().to_string();
    send(&[("RELOADING", "1"), ("MONOTONIC_USEC", usec.as_str())]);
}

/// Shutdown begins (`STOPPING=1`): systemd shows "deactivating" while the buffer drains.
pub fn stopping() {
    send(&[(daemon::STATE_STOPPING, "1")]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, or `None` when it is off.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

//! The agent process as the benchmarks drive and measure it: command-line numbers, the load
//! average, a process's CPU and memory from /proc, and `logship run` started and waited for.
//! Included with `#[path = "support/agent_process.rs"] mod agent_process;`.

#![allow(dead_code)] // each benchmark uses its own subset

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The number after `name` on the command line, or `default`.
pub(crate) fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == name)
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
pub(crate) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU seconds (utime + stime) of `pid`, from /proc/<pid>/stat; 0 when it is gone.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (tick(11) + tick(12)) as f64 / hz
}

/// A memory line of /proc/<pid>/status (`"VmRSS:"`, `"VmHWM:"`) in MiB; 0 when it is gone.
pub(crate) fn status_mib(pid: u32, field: &str) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Starts the release `logship run --config config`, its stderr to `log`, and waits (up to
/// 60 s) until it logs that it is ready.
pub(crate) fn start_agent(config: &Path, log: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_logship"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("stderr file"))
        .spawn()
        .expect("spawn logship run");
    let start = Instant::now();
    while !fs::read_to_string(log)
        .unwrap_or_default()
        .contains("logship ready")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent did not get ready:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Where a process's resident memory is, from /proc/<pid>/smaps, in MiB: the executable's
/// code and its data (relocated tables, statics), shared libraries, the heap and anonymous
/// mappings (malloc arenas, thread stacks, large allocations), and the thread count. File
/// pages count in RSS though they are clean and shared (the kernel maps code pages around
/// each one touched), so the split says how much of an RSS goal is code.
pub(crate) fn rss_breakdown(pid: u32) -> String {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe.to_string_lossy();
    let (mut code, mut data, mut libs, mut anon) = (0_u64, 0_u64, 0_u64, 0_u64);
    let mut kind = 0;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let perms = words.next().unwrap_or("");
            let path = words.nth(3).unwrap_or("");
            kind = match path {
                p if p == exe && perms.contains('x') => 0,
                p if p == exe => 1,
                p if p.starts_with('/') => 2,
                _ => 3,
            };
        } else if first == "Rss:" {
            let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            *[&mut code, &mut data, &mut libs, &mut anon][kind] += kib;
        }
    }
    let threads = fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    let mib = |kib: u64| kib as f64 / 1024.0;
    format!(
        "executable code {:.1} MiB, executable data {:.1} MiB, shared libraries {:.1} MiB, \
         heap and anonymous {:.1} MiB; {threads} threads",
        mib(code),
        mib(data),
        mib(libs),
        mib(anon)
    )
}

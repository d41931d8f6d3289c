//! Raw lines, file to file, beside Fluent Bit in the same run.
//!
//! The same file of `TAIL_PEER_LINES` (default 3,000,000) unique nginx combined lines,
//! read from the start to its end by:
//! - logship: the real tailer (`Tailer::start` with checkpoints and acknowledgements, a raw
//!   parser: each line's record carries the line as its message, no parse) feeding a
//!   writer thread that appends each record's message and a newline to an output file and
//!   acknowledges the unit. It runs in a child process of this benchmark.
//! - Fluent Bit (`FLUENT_BIT=/path/to/fluent-bit`): its tail input into its file output
//!   with `Format template`, `Template {log}` (the raw line), and the settings of issue 14:
//!   `Read_from_Head On`, `Exit_On_Eof On`, `File_Cache_Advise Off`, `Flush 0.2`,
//!   `Mem_Buf_Limit 32MB`. Without the variable the row says it was not run and why.
//!
//! CPU is user + system time of each child process, from `wait4`; wall time is from spawn
//! to exit (Fluent Bit's includes its shutdown grace, set to 1 s). Both outputs are checked
//! by content against the input: the same number of lines and the same multiset of lines
//! (an order-independent sum of per-line hashes).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logship::pipeline::queue::{self, RecvError};
use logship::tail::{Checkpointer, ParserSpec, TailConfig, Tailer};

/// Lines of the shared input unless `TAIL_PEER_LINES` says otherwise.
const DEFAULT_LINES: u64 = 3_000_000;

/// Runs both sides on the same input and prints them side by side.
pub(crate) fn compare(dir: &Path) {
    let lines: u64 = std::env::var("TAIL_PEER_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_LINES);
    let input = dir.join("peer").join("in").join("access.log");
    fs::create_dir_all(input.parent().unwrap()).unwrap();
    generate(&input, lines);
    let bytes = fs::metadata(&input).unwrap().len();
    let expected = digest(&input);
    assert_eq!(expected.lines, lines);
    // Warm the page cache: both readers see the same cached file.
    let _ = Command::new("cat")
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .status();

    println!(
        "\n## Raw lines, file to file: logship's tailer beside Fluent Bit ({} cores, {}, load average {})\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model(),
        load_average()
    );
    println!(
        "{lines} unique nginx combined lines, {:.0} MiB, page cache warm; CPU = user + sys of the child process (wait4).\n",
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "| reader | what it does | wall s | CPU s | lines per CPU s | output checked by content |"
    );
    println!("|---|---|---:|---:|---:|---|");

    let me = std::env::current_exe().unwrap();
    let out = dir.join("peer").join("logship.out");
    let mut cmd = Command::new(&me);
    cmd.arg("--part=peer-logship")
        .arg(format!("--dir={}", dir.display()))
        .arg(format!("--lines={lines}"));
    let ours = run_child(cmd);
    assert!(ours.ok, "logship side failed");
    let ours_check = check(&out, &expected);
    print_row(
        "logship",
        "tailer (raw parser, checkpoints, acks) → queue → raw line writer",
        lines,
        &ours,
        &ours_check,
    );

    let theirs = match std::env::var_os("FLUENT_BIT") {
        None => {
            println!(
                "| Fluent Bit | not run: `FLUENT_BIT` is not set (give the path of a fluent-bit binary) | – | – | – | – |"
            );
            None
        }
        Some(bin) if !Path::new(&bin).is_file() => {
            println!(
                "| Fluent Bit | not run: `FLUENT_BIT={}` is not a file | – | – | – | – |",
                Path::new(&bin).display()
            );
            None
        }
        Some(bin) => {
            let out_dir = dir.join("peer").join("fb");
            fs::create_dir_all(&out_dir).unwrap();
            let conf = dir.join("peer").join("fluent-bit.conf");
            fs::write(&conf, fluent_bit_conf(&input, &out_dir)).unwrap();
            let mut cmd = Command::new(&bin);
            cmd.arg("-c")
                .arg(&conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let run = run_child(cmd);
            let checked = check(&out_dir.join("fb.out"), &expected);
            print_row(
                "Fluent Bit",
                &format!(
                    "{}: tail input → file output (template `{{log}}`)",
                    version(&bin)
                ),
                lines,
                &run,
                &checked,
            );
            Some(run)
        }
    };
    if let Some(fb) = theirs {
        let ours_rate = lines as f64 / ours.cpu.as_secs_f64();
        let theirs_rate = lines as f64 / fb.cpu.as_secs_f64();
        println!(
            "\nlogship / Fluent Bit, lines per CPU second: {:.2}× (goal ≥ 1.5×); wall: {:.2}×",
            ours_rate / theirs_rate,
            fb.wall.as_secs_f64() / ours.wall.as_secs_f64()
        );
    }
    println!("load average after the run: {}", load_average());
}

/// The logship side, in its own process: reads `peer/in/*.log` to the end and writes
/// every line to `peer/logship.out`.
pub(crate) fn logship_side(dir: &Path) {
    let lines: u64 = std::env::args()
        .find_map(|a| a.strip_prefix("--lines=").and_then(|n| n.parse().ok()))
        .expect("--lines");
    let include = format!("{}/peer/in/*.log", dir.display());
    let out_path = dir.join("peer").join("logship.out");
    let data = tempfile::tempdir().unwrap();
    let (cp, loaded) = Checkpointer::open(data.path()).unwrap();
    let (tx, rx) = queue::bounded(10_000);
    let spec = crate::source("peer", include, ParserSpec::Custom(Arc::new(crate::Raw)));
    let mut handle = Tailer::start(TailConfig::default(), vec![spec], cp, loaded, tx).unwrap();
    let acks = handle.acks();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&out_path).unwrap());
        let mut written = 0u64;
        let deadline = Instant::now() + Duration::from_secs(600);
        while written < lines {
            assert!(Instant::now() < deadline, "logship side: timed out");
            match rx.recv_batch(1000, Duration::from_millis(100), Duration::ZERO) {
                Ok(unit) => {
                    for rec in &unit {
                        w.write_all(rec.record.message().as_bytes()).unwrap();
                        w.write_all(b"\n").unwrap();
                    }
                    acks.ack_records(&unit);
                    written += unit.len() as u64;
                    // As the agent's sink thread does (src/app/sink_thread.rs).
                    rx.give_back(unit);
                }
                Err(RecvError::Timeout) => {}
                Err(RecvError::Closed) => break,
            }
        }
        w.flush().unwrap();
        rx
    });
    let rx = writer.join().unwrap();
    handle.stop_reading();
    drop(rx);
    handle.finish().unwrap();
}

fn fluent_bit_conf(input: &Path, out_dir: &Path) -> String {
    format!(
        "[SERVICE]
    Flush        0.2
    Grace        1
    Log_Level    warn
    Daemon       Off

[INPUT]
    Name              tail
    Path              {}
    Read_from_Head    On
    Exit_On_Eof       On
    File_Cache_Advise Off
    Mem_Buf_Limit     32MB

[OUTPUT]
    Name     file
    Match    *
    Path     {}
    File     fb.out
    Format   template
    Template {{log}}
",
        input.display(),
        out_dir.display()
    )
}

struct Run {
    wall: Duration,
    cpu: Duration,
    ok: bool,
}

/// Spawns `cmd` and waits for it with `wait4`, which gives the child's own CPU time.
fn run_child(mut cmd: Command) -> Run {
    let t = Instant::now();
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero is a valid rusage for wait4 to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed();
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    // The child is reaped: dropping the handle does not wait again.
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Run {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

fn print_row(who: &str, what: &str, lines: u64, run: &Run, checked: &str) {
    println!(
        "| {who} | {what} | {:.2} | {:.2} | {:.0} | {checked} |",
        run.wall.as_secs_f64(),
        run.cpu.as_secs_f64(),
        lines as f64 / run.cpu.as_secs_f64()
    );
}

/// How many lines a file holds and an order-independent digest of their content.
#[derive(Debug, PartialEq, Eq)]
struct Digest {
    lines: u64,
    sum: u64,
}

fn digest(path: &Path) -> Digest {
    let mut d = Digest { lines: 0, sum: 0 };
    let Ok(f) = File::open(path) else {
        return d;
    };
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut line = Vec::new();
    while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        d.lines += 1;
        d.sum = d.sum.wrapping_add(mix(fnv1a(body)));
        line.clear();
    }
    d
}

fn check(out: &Path, expected: &Digest) -> String {
    let got = digest(out);
    if &got == expected {
        format!("all {} lines", got.lines)
    } else if got.lines == expected.lines {
        format!("**MISMATCH**: {} lines but different content", got.lines)
    } else {
        format!("**MISMATCH**: {} of {} lines", got.lines, expected.lines)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A finaliser, so that sums of hashes of similar lines do not cancel out.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Unique nginx combined lines (the request path carries the line number).
fn generate(path: &PathBuf, lines: u64) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "curl/8.5.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    ];
    let statuses = [200, 200, 200, 304, 404, 500, 301];
    for n in 0..lines {
        writeln!(
            w,
            "10.{}.{}.{} - - [24/Nov/2026:10:{:02}:{:02} +0000] \"GET /api/v1/items/{n} HTTP/1.1\" {} {} \"-\" \"{}\"",
            n % 250,
            (n / 250) % 250,
            n % 7,
            (n / 60) % 60,
            n % 60,
            statuses[(n % 7) as usize],
            100 + n % 9000,
            agents[(n % 3) as usize],
        )
        .unwrap();
    }
    w.flush().unwrap();
}

fn version(bin: &std::ffi::OsStr) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Fluent Bit".to_owned())
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

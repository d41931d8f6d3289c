//! Peer benchmark (issue 14): `logship parse --count`'s path, Vector's parsers and a plain
//! Python `re` parser, on the same files, in the same run, for every format logship parses
//! (RFC 3164 and RFC 5424 syslog apart).
//!
//! - **logship**: what `logship parse --count` does per line: assemble the entry
//!   (`Assembler::push_ref`), parse it, own it into a `Record` (the daemon's path up to the
//!   queue).
//! - **vrl**: the `vrl` crate from crates.io, its compiler and standard library, running the
//!   program a Vector user writes (`. = parse_nginx_log!(.message, "combined")`,
//!   `parse_nginx_log!(.message, "error")`, `. = parse_syslog!(.message)`,
//!   `. = parse_json!(.message)`) on an event holding the line as `.message`, as Vector's
//!   `remap` transform does. VRL has no PostgreSQL stderr or csvlog parser: `n/a`.
//! - **python re**: `parsers/benches/re_baseline.py --no-time`: a compiled regex that
//!   matches the line and builds the dict (no `strptime`), as in the issue's measurement.
//!
//! Also prints allocations per record for logship and VRL (a counting global allocator),
//! and the load average before and after, since the machine is shared.
//!
//! `cargo run --release --manifest-path benches/vrl_peer/Cargo.toml [-- --quick]
//! [--no-python] [--no-vrl] [--format LABEL]`. Sample files are the parsers throughput
//! benchmark's (same generator, same seed; RFC 5424 from its own generator), kept in the
//! system temp directory between runs.

#[path = "../../../parsers/benches/throughput/alloc_count.rs"]
mod alloc_count;
#[path = "../../../parsers/benches/throughput/samples.rs"]
#[allow(dead_code)]
mod samples;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use logship_parsers::{Assembler, Format, FormatSpec, Parser, RecordContext};
use vrl::compiler::{Context, Program, TargetValue, TimeZone, state::RuntimeState};
use vrl::value::{ObjectMap, Secrets, Value};

#[global_allocator]
static ALLOCATOR: alloc_count::CountingAllocator = alloc_count::CountingAllocator;

/// The parsers throughput benchmark's sample version: the files are shared with it.
const SAMPLE_VERSION: u32 = 1;

struct Settings {
    quick: bool,
    python: bool,
    /// `--no-vrl`: logship (and Python) only, e.g. to profile logship's path.
    vrl: bool,
    /// Only these formats (`--format LABEL`, repeatable); all when empty.
    only: Vec<String>,
}

impl Settings {
    fn from_args() -> Settings {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Settings {
            quick: args.iter().any(|a| a == "--quick"),
            python: !args.iter().any(|a| a == "--no-python"),
            vrl: !args.iter().any(|a| a == "--no-vrl"),
            only: args
                .windows(2)
                .filter(|w| w[0] == "--format")
                .map(|w| w[1].clone())
                .collect(),
        }
    }

    fn wants(&self, label: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == label)
    }

    fn lines(&self, format: Format) -> usize {
        match (format, self.quick) {
            (Format::Nginx, false) => 1_000_000,
            (_, false) => 300_000,
            (Format::Nginx, true) => 100_000,
            (_, true) => 20_000,
        }
    }

    fn runs(&self) -> usize {
        if self.quick { 1 } else { 3 }
    }
}

/// One row of the table: a format, its sample, and the peers' programs for it.
struct Case {
    /// Name in the table, the sample file and the Python baseline's format argument.
    label: &'static str,
    format: Format,
    /// The VRL program a Vector user writes for this format; `None`: VRL has no parser
    /// for it (PostgreSQL's stderr and csvlog forms).
    vrl: Option<&'static str>,
    sample: fn(usize) -> String,
}

/// The formats compared: every format logship parses, RFC 3164 and RFC 5424 syslog apart.
const CASES: [Case; 7] = [
    Case {
        label: "nginx",
        format: Format::Nginx,
        vrl: Some(r#". = parse_nginx_log!(.message, "combined")"#),
        sample: |n| samples::generate(Format::Nginx, n),
    },
    Case {
        label: "nginx-error",
        format: Format::NginxError,
        vrl: Some(r#". = parse_nginx_log!(.message, "error")"#),
        sample: |n| samples::generate(Format::NginxError, n),
    },
    Case {
        label: "syslog",
        format: Format::Syslog,
        vrl: Some(". = parse_syslog!(.message)"),
        sample: |n| samples::generate(Format::Syslog, n),
    },
    Case {
        label: "syslog-5424",
        format: Format::Syslog,
        vrl: Some(". = parse_syslog!(.message)"),
        sample: samples::syslog_rfc5424,
    },
    Case {
        label: "postgres",
        format: Format::Postgres,
        vrl: None,
        sample: |n| samples::generate(Format::Postgres, n),
    },
    Case {
        label: "postgres-csv",
        format: Format::PostgresCsv,
        vrl: None,
        sample: |n| samples::generate(Format::PostgresCsv, n),
    },
    Case {
        label: "postgres-json",
        format: Format::PostgresJson,
        // What a Vector user writes for JSON lines: the object, no time or level mapping.
        vrl: Some(". = parse_json!(.message)"),
        sample: |n| samples::generate(Format::PostgresJson, n),
    },
];

struct Line<'a> {
    bytes: &'a [u8],
    start: u64,
    end: u64,
}

fn split_lines(content: &[u8]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0usize;
    for newline in memchr::memchr_iter(b'\n', content) {
        lines.push(Line {
            bytes: &content[start..newline],
            start: start as u64,
            end: newline as u64 + 1,
        });
        start = newline + 1;
    }
    lines
}

/// `logship parse --count`'s path: assemble, parse, own into a `Record`. Returns the count
/// of records and of parse errors.
fn logship_pass(parser: &dyn Parser, lines: &[Line<'_>], ctx: &RecordContext) -> (usize, usize) {
    let now = Timestamp::now();
    let mut assembler = Assembler::new(1 << 20);
    let (mut records, mut errors) = (0, 0);
    let mut ship = |bytes: &[u8]| {
        let record = black_box(parser.record(bytes, ctx, now));
        records += 1;
        errors += usize::from(record.parse_error.is_some());
    };
    for line in lines {
        if let Some(entry) = assembler.push_ref(parser, line.bytes, line.start, line.end) {
            ship(entry.bytes);
        }
    }
    if let Some(entry) = assembler.flush() {
        ship(&entry.bytes);
    }
    (records, errors)
}

/// The VRL program on every line, each as a fresh event `{"message": line}`. Returns the
/// count of events and of runtime errors (a line the function rejects).
fn vrl_pass(program: &Program, lines: &[Line<'_>]) -> (usize, usize) {
    // UTC for timestamps without a zone (RFC 3164), as logship's `timezone = "UTC"`.
    let tz = TimeZone::Named(chrono_tz::UTC);
    let mut state = RuntimeState::default();
    let mut errors = 0;
    for line in lines {
        let mut event = ObjectMap::new();
        event.insert(
            "message".into(),
            Value::Bytes(bytes::Bytes::copy_from_slice(line.bytes)),
        );
        let mut target = TargetValue {
            value: Value::Object(event),
            metadata: Value::Object(BTreeMap::new()),
            secrets: Secrets::default(),
        };
        let mut ctx = Context::new(&mut target, &mut state, &tz);
        errors += usize::from(program.resolve(&mut ctx).is_err());
        black_box(&target.value);
        state.clear();
    }
    (lines.len(), errors)
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f();
        best = best.min(start.elapsed());
        out = Some(value);
    }
    (best, out.expect("at least one run"))
}

fn sample_file(dir: &Path, case: &Case, lines: usize) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{}-{lines}-v{SAMPLE_VERSION}.log", case.label));
    if !path.exists() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, (case.sample)(lines))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// Lines per second of the Python baseline, or why there is none.
fn python_rate(label: &str, path: &Path) -> Result<f64, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../parsers/benches/re_baseline.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg("--no-time")
        .arg(label)
        .arg(path)
        .output()
        .map_err(|e| format!("python3 not run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "python baseline failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("bad report: {e}"))?;
    report["lines_per_second"]
        .as_f64()
        .ok_or_else(|| "no lines_per_second in the report".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else {
        format!("{:.0} k", r / 1e3)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_args();
    let dir = std::env::temp_dir().join("logship-bench");
    std::fs::create_dir_all(&dir)?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "one core each, release build, {}; {cores} cores; load average at start: {}",
        if settings.quick {
            "--quick (1 run)"
        } else {
            "best of 3"
        },
        load_average()
    );
    let header = |cols: [&str; 10]| {
        println!(
            "{:<13} {:>9} {:>12} {:>12} {:>12} {:>9} {:>9} {:>15} {:>12} {:>8}",
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5],
            cols[6],
            cols[7],
            cols[8],
            cols[9]
        );
    };
    header([
        "format",
        "lines",
        "logship/s",
        "vrl/s",
        "python re/s",
        "vs vrl",
        "vs python",
        "allocs/record",
        "allocs/event",
        "errors",
    ]);
    header([
        "",
        "",
        "(record)",
        "(program)",
        "(no time)",
        "",
        "",
        "(logship)",
        "(vrl)",
        "ls/vrl",
    ]);
    let functions = vrl::stdlib::all();
    for case in CASES.iter().filter(|c| settings.wants(c.label)) {
        let format = case.format;
        let path = sample_file(&dir, case, settings.lines(format))?;
        let content = std::fs::read(&path)?;
        let lines = split_lines(&content);
        let n = lines.len() as f64;

        let parser = FormatSpec {
            timezone: (format != Format::Nginx).then(|| "UTC".into()),
            // The samples use Debian's prefix, not PostgreSQL's default.
            prefix: (format == Format::Postgres).then(|| samples::POSTGRES_PREFIX.into()),
            ..FormatSpec::new(format)
        }
        .build()?;
        let ctx = RecordContext::new(format.name(), "bench-host");
        let (elapsed, (records, ls_errors)) =
            best_of(settings.runs(), || logship_pass(&*parser, &lines, &ctx));
        let logship_rate = n / elapsed.as_secs_f64();
        let (_, allocs) = alloc_count::count(|| logship_pass(&*parser, &lines, &ctx));
        let logship_allocs = allocs as f64 / records as f64;

        let vrl = match case.vrl.filter(|_| settings.vrl) {
            Some(source) => {
                let compiled = vrl::compiler::compile(source, &functions)
                    .map_err(|d| format!("VRL program {source:?} does not compile: {d:?}"))?;
                let program = compiled.program;
                let (elapsed, (events, errors)) =
                    best_of(settings.runs(), || vrl_pass(&program, &lines));
                let (_, allocs) = alloc_count::count(|| vrl_pass(&program, &lines));
                Some((
                    events as f64 / elapsed.as_secs_f64(),
                    allocs as f64 / events as f64,
                    errors,
                ))
            }
            None => None,
        };
        let python = settings.python.then(|| python_rate(case.label, &path));
        let (python_col, python_ratio) = match &python {
            Some(Ok(p)) => (rate(*p), format!("{:.1}x", logship_rate / p)),
            Some(Err(_)) => ("failed".into(), "n/a".into()),
            None => ("skipped".into(), "n/a".into()),
        };
        let (vrl_col, vrl_ratio, vrl_allocs, errors) = match vrl {
            Some((r, allocs, errors)) => (
                rate(r),
                format!("{:.1}x", logship_rate / r),
                format!("{allocs:.2}"),
                format!("{ls_errors}/{errors}"),
            ),
            None => (
                "n/a".into(),
                "n/a".into(),
                "n/a".into(),
                format!("{ls_errors}/-"),
            ),
        };
        println!(
            "{:<13} {:>9} {:>12} {:>12} {:>12} {:>9} {:>9} {:>15.2} {:>12} {:>8}",
            case.label,
            n,
            rate(logship_rate),
            vrl_col,
            python_col,
            vrl_ratio,
            python_ratio,
            logship_allocs,
            vrl_allocs,
            errors,
        );
        if let Some(Err(e)) = python {
            println!("{:<13} python: {e}", "");
        }
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

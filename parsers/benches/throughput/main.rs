//! Lines per second of every parser on one core, against a plain Python `re` parser of
//! the same format on the same file, and allocations per line.
//!
//! `cargo bench -p logship-parsers --bench throughput` (add `-- --quick` for a smoke run,
//! `-- --format nginx` for one format, `-- --no-python` to skip the baseline).
//! Sample files are generated into the system temp directory and kept between runs.

mod alloc_count;
mod samples;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use logship_parsers::{Assembler, Format, FormatSpec, Parser, RecordContext};

#[global_allocator]
static ALLOCATOR: alloc_count::CountingAllocator = alloc_count::CountingAllocator;

/// Bump when the generators change, so stale sample files are not reused.
const SAMPLE_VERSION: u32 = 1;

struct Settings {
    quick: bool,
    python: bool,
    /// Only these formats (`--format NAME`, repeatable); all when empty.
    only: Vec<String>,
}

impl Settings {
    fn from_args() -> Settings {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Settings {
            quick: args.iter().any(|a| a == "--quick"),
            python: !args.iter().any(|a| a == "--no-python"),
            only: args
                .windows(2)
                .filter(|w| w[0] == "--format")
                .map(|w| w[1].clone())
                .collect(),
        }
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

/// One line of the file and its byte range.
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

/// Entries as the tailer would hand them to the parser.
fn assemble(parser: &dyn Parser, lines: &[Line<'_>]) -> Vec<Vec<u8>> {
    let mut assembler = Assembler::new(1 << 20);
    let mut entries: Vec<Vec<u8>> = lines
        .iter()
        .filter_map(|l| assembler.push(parser, l.bytes, l.start, l.end))
        .map(|e| e.bytes)
        .collect();
    entries.extend(assembler.flush().map(|e| e.bytes));
    entries
}

/// The full path a daemon takes: assemble (multi-line formats), parse, own into a Record.
fn record_pass(parser: &dyn Parser, lines: &[Line<'_>], ctx: &RecordContext) -> usize {
    let now = Timestamp::now();
    let mut errors = 0;
    if parser.is_multiline() {
        let mut assembler = Assembler::new(1 << 20);
        for line in lines {
            // As `logship parse` reads: single-line entries borrowed, not copied.
            if let Some(entry) = assembler.push_ref(parser, line.bytes, line.start, line.end) {
                errors += usize::from(
                    black_box(parser.record(entry.bytes, ctx, now))
                        .parse_error
                        .is_some(),
                );
            }
        }
        if let Some(entry) = assembler.flush() {
            errors += usize::from(
                black_box(parser.record(&entry.bytes, ctx, now))
                    .parse_error
                    .is_some(),
            );
        }
    } else {
        for line in lines {
            errors += usize::from(
                black_box(parser.record(line.bytes, ctx, now))
                    .parse_error
                    .is_some(),
            );
        }
    }
    errors
}

/// Parsing alone, on entries assembled beforehand.
fn parse_pass(parser: &dyn Parser, entries: &[Vec<u8>]) -> usize {
    entries
        .iter()
        .map(|e| usize::from(black_box(parser.parse(e)).is_err()))
        .sum()
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

#[derive(Default)]
struct Row {
    format: &'static str,
    lines: usize,
    stub: bool,
    record_rate: f64,
    parse_rate: f64,
    python_rate: Option<f64>,
    record_allocs: f64,
    parse_allocs: f64,
    errors: usize,
    first_error: Option<String>,
}

fn sample_file(dir: &Path, format: Format, lines: usize) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{}-{lines}-v{SAMPLE_VERSION}.log", format.name()));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, samples::generate(format, lines))?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

fn python_rate(format: Format, path: &Path) -> Option<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/re_baseline.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(format.name())
        .arg(path)
        .output()
        .map_err(|e| eprintln!("python3 not run: {e}"))
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "python baseline for {format} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    report["lines_per_second"].as_f64()
}

fn bench(format: Format, settings: &Settings, dir: &Path) -> std::io::Result<Row> {
    let lines_wanted = settings.lines(format);
    let path = sample_file(dir, format, lines_wanted)?;
    let content = std::fs::read(&path)?;
    let lines = split_lines(&content);
    let parser = FormatSpec {
        timezone: (format != Format::Nginx).then(|| "UTC".into()),
        // The samples use Debian's prefix, not PostgreSQL's default.
        prefix: (format == Format::Postgres).then(|| samples::POSTGRES_PREFIX.into()),
        ..FormatSpec::new(format)
    }
    .build()
    .expect("default spec builds");
    let parser = &*parser;
    let mut row = Row {
        format: format.name(),
        lines: lines.len(),
        ..Row::default()
    };
    let entries = assemble(parser, &lines);
    if let Some(Err(e)) = entries.first().map(|e| parser.parse(e)) {
        if e.reason.contains("not implemented") {
            row.stub = true;
            return Ok(row);
        }
    }
    let ctx = RecordContext::new(format.name(), "bench-host");
    let n = lines.len() as f64;
    row.first_error = entries.iter().find_map(|e| {
        parser
            .parse(e)
            .err()
            .map(|err| format!("{}: {}", err.reason, String::from_utf8_lossy(e)))
    });

    let (elapsed, errors) = best_of(settings.runs(), || record_pass(parser, &lines, &ctx));
    row.record_rate = n / elapsed.as_secs_f64();
    row.errors = errors;
    let (elapsed, _) = best_of(settings.runs(), || parse_pass(parser, &entries));
    row.parse_rate = n / elapsed.as_secs_f64();

    let (_, allocs) = alloc_count::count(|| record_pass(parser, &lines, &ctx));
    row.record_allocs = allocs as f64 / n;
    let (_, allocs) = alloc_count::count(|| parse_pass(parser, &entries));
    row.parse_allocs = allocs as f64 / n;

    if settings.python {
        row.python_rate = python_rate(format, &path);
    }
    Ok(row)
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else {
        format!("{:.0} k", r / 1e3)
    }
}

fn main() -> std::io::Result<()> {
    let settings = Settings::from_args();
    let dir = std::env::temp_dir().join("logship-bench");
    std::fs::create_dir_all(&dir)?;
    println!(
        "one core, release build{}; samples in {}; load average at start: {}",
        if settings.quick {
            ", --quick"
        } else {
            ", best of 3"
        },
        dir.display(),
        load_average()
    );
    println!(
        "{:<14} {:>9} {:>13} {:>13} {:>11} {:>7} {:>13} {:>13} {:>7}",
        "format",
        "lines",
        "record/s",
        "parse/s",
        "python re/s",
        "ratio",
        "allocs/line",
        "allocs/line",
        "errors"
    );
    println!(
        "{:<14} {:>9} {:>13} {:>13} {:>11} {:>7} {:>13} {:>13} {:>7}",
        "", "", "(full)", "(parse only)", "", "(full)", "(full)", "(parse only)", ""
    );
    for format in Format::ALL {
        if !settings.only.is_empty() && !settings.only.iter().any(|f| f == format.name()) {
            continue;
        }
        let row = bench(format, &settings, &dir)?;
        if row.stub {
            println!(
                "{:<14} {:>9} parser is still a stub: not measured",
                row.format, row.lines
            );
            continue;
        }
        let (python, ratio) = match row.python_rate {
            Some(p) => (rate(p), format!("{:.1}x", row.record_rate / p)),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "{:<14} {:>9} {:>13} {:>13} {:>11} {:>7} {:>13.2} {:>13.2} {:>7}",
            row.format,
            row.lines,
            rate(row.record_rate),
            rate(row.parse_rate),
            python,
            ratio,
            row.record_allocs,
            row.parse_allocs,
            row.errors
        );
        if let Some(error) = &row.first_error {
            println!("{:<14} first parse error: {error}", "");
        }
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

/// The machine is shared: numbers are read beside its load.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

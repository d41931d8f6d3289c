//! `logship parse`: try a format on a file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use jiff::Timestamp;
use logship::parsers::{Assembler, FormatSpec, RecordContext};

use crate::cli::ParseArgs;

/// Entries larger than this are cut (the daemon's default `max_line_bytes`).
const MAX_ENTRY_BYTES: usize = 1024 * 1024;

pub(crate) fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let spec = FormatSpec {
        format: args.format.into(),
        log_format: args.log_format,
        prefix: args.prefix,
        timezone: args.timezone,
    };
    let parser = spec.build()?;
    let host = match args.host {
        Some(h) => h,
        None => logship::host::hostname(),
    };
    let ctx = RecordContext::new(spec.format.name(), host);

    let input: Box<dyn BufRead> = match &args.file {
        Some(path) if path.as_os_str() != "-" => Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        _ => Box::new(BufReader::with_capacity(1 << 20, io::stdin().lock())),
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut summary = Summary::default();
    let started = Instant::now();

    let mut emit = |entry: &[u8], summary: &mut Summary| -> io::Result<()> {
        let record = parser.record(entry, &ctx, Timestamp::now());
        summary.records += 1;
        if record.parse_error.is_some() {
            summary.parse_errors += 1;
        }
        if !args.count {
            serde_json::to_writer(&mut out, &record)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };

    let mut assembler = Assembler::new(MAX_ENTRY_BYTES);
    let mut reader = input;
    let mut line = Vec::with_capacity(4096);
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .context("cannot read input")?;
        if n == 0 {
            break;
        }
        summary.lines += 1;
        let start = offset;
        offset += n as u64;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(entry) = assembler.push_ref(parser.as_ref(), body, start, offset) {
            emit(entry.bytes, &mut summary).context("cannot write output")?;
        }
    }
    if let Some(entry) = assembler.flush() {
        emit(&entry.bytes, &mut summary).context("cannot write output")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if args.count {
        let rate = if elapsed > 0.0 {
            summary.lines as f64 / elapsed
        } else {
            0.0
        };
        writeln!(
            out,
            "{} lines, {} records, {} parse errors, {:.0} lines/s",
            summary.lines, summary.records, summary.parse_errors, rate
        )?;
    }
    out.flush().context("cannot write output")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Summary {
    lines: u64,
    records: u64,
    parse_errors: u64,
}

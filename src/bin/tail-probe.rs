//! Test helper, not shipped: tails files into an output file, one delivered line per
//! line, acknowledging each flush unit only after it is fsync'ed. Used by the `kill -9` and
//! permission tests, which need a real process to kill or to run as another user.
//!
//! Usage: tail-probe --data DIR --out FILE --glob PATTERN [--exclude GLOB] [--read-from end]
//! Prints `ready` on stdout once the files are found. Logs go to stderr, one line each.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use logship::parsers::raw::Raw;
use logship::pipeline::queue::{self, RecvError};
use logship::pipeline::{Route, Table};
use logship::tail::{Checkpointer, ParserSpec, ReadFrom, SourceSpec, TailConfig, Tailer};

/// Prints each event as `LEVEL message key=value ...` on stderr.
struct StderrLog;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for StderrLog {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut f = Fields(e.metadata().level().to_string());
        e.record(&mut f);
        eprintln!("{}", f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn main() -> ExitCode {
    let _ = tracing::subscriber::set_global_default(StderrLog);
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tail-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut data, mut out, mut globs, mut exclude) = (None, None, Vec::new(), Vec::new());
    let mut read_from = ReadFrom::Beginning;
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--data" => data = Some(val()?),
            "--out" => out = Some(val()?),
            "--glob" => globs.push(val()?),
            "--exclude" => exclude.push(val()?),
            "--read-from" => {
                read_from = match val()?.as_str() {
                    "end" => ReadFrom::End,
                    _ => ReadFrom::Beginning,
                }
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let data = data.ok_or("--data is required")?;
    let out = out.ok_or("--out is required")?;
    let route = Arc::new(Route {
        source: "probe".into(),
        table: Table::InfrastructureLogs,
        ttl: None,
        bucket: Duration::from_secs(3600),
    });
    let mut spec = SourceSpec::new(
        "probe",
        globs,
        ParserSpec::Custom(Arc::new(Raw)),
        route,
        "probe-host",
    );
    spec.exclude = exclude;
    spec.read_from = read_from;
    let config = TailConfig {
        rescan_interval: Duration::from_millis(300),
        poll_interval: Duration::from_millis(200),
        rotate_wait: Duration::from_millis(1000),
        checkpoint_interval: Duration::from_millis(100),
        ..TailConfig::default()
    };
    let (cp, loaded) = Checkpointer::open(data.as_ref())?;
    let (tx, rx) = queue::bounded(500);
    let tailer = Tailer::start(config, vec![spec], cp, loaded, tx)?;
    let acks = tailer.acks();
    println!("ready");
    std::io::stdout().flush()?;
    let mut sink = OpenOptions::new().create(true).append(true).open(&out)?;
    loop {
        match rx.recv_batch(200, Duration::from_millis(200), Duration::from_millis(5)) {
            Ok(unit) => {
                let mut buf = Vec::new();
                for r in &unit {
                    buf.extend_from_slice(r.record.message().as_bytes());
                    buf.push(b'\n');
                }
                sink.write_all(&buf)?;
                sink.sync_data()?;
                acks.ack_records(&unit);
            }
            Err(RecvError::Timeout) => {}
            Err(RecvError::Closed) => break,
        }
    }
    tailer.finish()?;
    Ok(())
}

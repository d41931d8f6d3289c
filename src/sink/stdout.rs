//! The stdout sink: each record as a JSON line or a readable line, for trying a config.
//! Acknowledged once written to the pipe; nothing is durable, so checkpoints promise
//! nothing more than "printed".

use std::io::Write as _;

use super::deadletter::DeadLetterEntry;
use super::output::{JsonLine, LineFormat, text_line};
use super::retry::{Failure, RowFailure};
use crate::pipeline::FileRecord;
use crate::pipeline::drain::{self, Stop};

/// Prints records on standard output.
#[derive(Debug)]
pub struct StdoutSink {
    format: LineFormat,
    buf: Vec<u8>,
}

impl StdoutSink {
    /// A sink printing in `format`.
    pub fn new(format: LineFormat) -> StdoutSink {
        StdoutSink {
            format,
            buf: Vec::with_capacity(1 << 16),
        }
    }
}

impl drain::Sink for StdoutSink {
    type Item = FileRecord;

    fn write(&mut self, unit: &[FileRecord], pending: &[usize], _stop: &Stop) -> Vec<RowFailure> {
        self.buf.clear();
        for &i in pending {
            match self.format {
                LineFormat::Text => text_line(&unit[i], &mut self.buf),
                _ => {
                    if serde_json::to_writer(&mut self.buf, &JsonLine::of(&unit[i])).is_ok() {
                        self.buf.push(b'\n');
                    }
                }
            }
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(&self.buf).and_then(|()| out.flush()) {
            Ok(()) => Vec::new(),
            Err(e) => RowFailure::all(
                pending.iter().copied(),
                &Failure::Retry(format!("cannot write to stdout: {e}")),
            ),
        }
    }

    fn dead_letter(&self, item: &FileRecord, reason: &str) -> DeadLetterEntry {
        super::file::dead_letter_entry(item, reason)
    }
}

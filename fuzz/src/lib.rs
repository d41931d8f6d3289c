//! What every fuzz target does with its input: parse it whole, then feed it line by line
//! through the multi-line assembler and parse each entry, as the daemon would.

use std::sync::OnceLock;

use jiff::Timestamp;
use logship_parsers::{Assembler, Format, FormatSpec, Parser, RecordContext};

/// The parser for `format` with its default settings (UTC where a zone is needed), built once.
pub fn parser(format: Format, cell: &'static OnceLock<Box<dyn Parser>>) -> &'static dyn Parser {
    &**cell.get_or_init(|| {
        FormatSpec {
            timezone: Some("UTC".into()),
            ..FormatSpec::new(format)
        }
        .build()
        .expect("default format settings build")
    })
}

/// Runs `data` through `parser` as one entry and as a file of lines.
pub fn exercise(parser: &dyn Parser, data: &[u8]) {
    let ctx = RecordContext::new("fuzz", "fuzz-host");
    let read_time = Timestamp::UNIX_EPOCH;
    if let Ok(parsed) = parser.parse(data) {
        let record = parsed.to_record(&ctx, read_time);
        assert!(record.parse_error.is_none());
    }
    let _ = parser.record(data, &ctx, read_time);

    let mut assembler = Assembler::new(4096);
    let mut offset = 0u64;
    let mut last_end = 0u64;
    for line in data.split(|b| *b == b'\n') {
        let end = offset + line.len() as u64 + 1;
        if let Some(entry) = assembler.push(parser, line, offset, end) {
            assert!(entry.start >= last_end && entry.end > entry.start);
            last_end = entry.end;
            let _ = parser.record(&entry.bytes, &ctx, read_time);
        }
        offset = end;
    }
    if let Some(entry) = assembler.flush() {
        let _ = parser.record(&entry.bytes, &ctx, read_time);
    }
}

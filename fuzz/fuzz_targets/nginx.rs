#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use logship_parsers::nginx::AccessParser;
use logship_parsers::{Format, Parser};

static PARSER: OnceLock<Box<dyn Parser>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    // The default `combined` parser on the whole input...
    logship_fuzz::exercise(logship_fuzz::parser(Format::Nginx, &PARSER), data);
    // ...and the first line as a log_format of its own, compiled and run on the rest.
    let (format, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(format) = std::str::from_utf8(format) {
        if let Ok(parser) = AccessParser::new(format) {
            logship_fuzz::exercise(&parser, rest);
        }
    }
});

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use logship_parsers::{Format, Parser};

static PARSER: OnceLock<Box<dyn Parser>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    logship_fuzz::exercise(logship_fuzz::parser(Format::PostgresJson, &PARSER), data);
});

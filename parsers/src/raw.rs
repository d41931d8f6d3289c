//! The raw-line parser: every line is a record of its own, at INFO, its message the line
//! (invalid UTF-8 replaced). No format of the agent's config uses it; tests, benchmarks and
//! the tail probe do, to measure and check the tailer without any parsing cost.

use crate::{Level, ParseError, Parsed, Parser, record::text};

/// Every line is its own record, message = the line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Parser for Raw {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Ok(Parsed::new(None, Level::Info, text(entry)))
    }

    fn name(&self) -> &'static str {
        "raw"
    }
}

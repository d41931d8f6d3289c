//! The raw-line parser of the tail tests (and of anything that includes this file): every
//! entry is its own record, at INFO, its message the line (invalid UTF-8 replaced).

use std::sync::Arc;

use logship::parsers::{Level, ParseError, Parsed, Parser};

/// Every line is its own record, message = the line.
pub(crate) struct Raw;

impl Parser for Raw {
    fn parse<'a>(&'a self, entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Ok(Parsed::new(
            None,
            Level::Info,
            String::from_utf8_lossy(entry),
        ))
    }
    fn name(&self) -> &'static str {
        "raw"
    }
}

/// [`Raw`], ready for `ParserSpec::Custom`.
pub(crate) fn raw() -> Arc<dyn Parser> {
    Arc::new(Raw)
}

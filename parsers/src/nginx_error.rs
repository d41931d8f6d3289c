//! STUB: being written (issue 3).

use crate::{ParseError, Parsed, Parser};

pub struct ErrorParser;

impl ErrorParser {
    pub fn new(_tz: jiff::tz::TimeZone) -> Self {
        ErrorParser
    }
}

impl Parser for ErrorParser {
    fn parse<'a>(&'a self, _entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Err(ParseError::new("not implemented yet"))
    }

    fn name(&self) -> &'static str {
        "nginx-error"
    }
}

//! STUB: being written (issue 3).

use crate::{ParseError, Parsed, Parser};

pub struct SyslogParser;

impl SyslogParser {
    pub fn new(_tz: jiff::tz::TimeZone) -> Self {
        SyslogParser
    }
}

impl Parser for SyslogParser {
    fn parse<'a>(&'a self, _entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Err(ParseError::new("not implemented yet"))
    }

    fn name(&self) -> &'static str {
        "syslog"
    }
}

//! STUB: being written (issue 3).

use crate::{ParseError, Parsed, Parser};

pub struct StderrParser;

impl StderrParser {
    pub fn new(_prefix: &str) -> Result<Self, crate::SpecError> {
        Ok(StderrParser)
    }
}

impl Parser for StderrParser {
    fn parse<'a>(&'a self, _entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Err(ParseError::new("not implemented yet"))
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}

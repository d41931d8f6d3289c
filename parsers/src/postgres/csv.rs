//! STUB: being written (issue 3).

use crate::{ParseError, Parsed, Parser};

pub struct CsvParser;

impl CsvParser {
    pub fn new() -> Self {
        CsvParser
    }
}

impl Parser for CsvParser {
    fn parse<'a>(&'a self, _entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Err(ParseError::new("not implemented yet"))
    }

    fn name(&self) -> &'static str {
        "postgres-csv"
    }
}

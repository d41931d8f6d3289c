//! STUB: being written (issue 3).

use crate::{ParseError, Parsed, Parser};

pub struct JsonParser;

impl JsonParser {
    pub fn new() -> Self {
        JsonParser
    }
}

impl Parser for JsonParser {
    fn parse<'a>(&'a self, _entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Err(ParseError::new("not implemented yet"))
    }

    fn name(&self) -> &'static str {
        "postgres-json"
    }
}

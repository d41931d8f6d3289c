//! STUB: being written (issue 3).

use crate::{ParseError, Parsed, Parser};

pub struct AccessParser;

impl AccessParser {
    pub fn new(_log_format: &str) -> Result<Self, crate::SpecError> {
        Ok(AccessParser)
    }
}

impl Parser for AccessParser {
    fn parse<'a>(&'a self, _entry: &'a [u8]) -> Result<Parsed<'a>, ParseError> {
        Err(ParseError::new("not implemented yet"))
    }

    fn name(&self) -> &'static str {
        "nginx"
    }
}
pub const COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

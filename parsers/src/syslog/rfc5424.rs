//! RFC 5424 after the hostname: `APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.
//!
//! Structured-data params become fields named `sd.<SD-ID>.<PARAM-NAME>` (for example
//! `sd.timeQuality.tzKnown`, `sd.exampleSDID@32473.iut`); an element without params becomes
//! `sd.<SD-ID>` with an empty value, so its presence is kept. A param repeated in one element
//! (RFC 5424 allows `[origin ip="a" ip="b"]`) keeps every value, joined by `,`. Escapes in
//! values (`\"`, `\\`, `\]`) are undone; a backslash before any other byte stays, as the RFC
//! says. NILVALUE (`-`) header fields produce no field at all.

use std::borrow::Cow;

use nom::IResult;
use nom::Parser as _;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::char;

use crate::Parsed;
use crate::record::text;

/// The UTF-8 byte order mark RFC 5424 puts before a UTF-8 MSG.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why the part after the hostname is not RFC 5424.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// APP-NAME, PROCID or MSGID missing or not printable ASCII.
    Header,
    /// STRUCTURED-DATA that is neither `-` nor well-formed elements.
    StructuredData,
}

impl Error {
    /// The record's `parse_error` for this error.
    pub fn reason(self) -> &'static str {
        match self {
            Error::Header => "syslog: bad RFC 5424 APP-NAME/PROCID/MSGID",
            Error::StructuredData => "syslog: bad RFC 5424 structured data",
        }
    }
}

/// Parses `input` (starting at APP-NAME) into `out`'s fields and returns MSG, BOM removed.
/// On error `out` is left as it was, so the caller can try another reading.
pub fn after_hostname<'a>(input: &'a [u8], out: &mut Parsed<'a>) -> Result<&'a [u8], Error> {
    let mark = out.fields.len();
    let result = header_and_sd(input, out);
    if result.is_err() {
        out.fields.truncate(mark);
    }
    result
}

fn header_and_sd<'a>(input: &'a [u8], out: &mut Parsed<'a>) -> Result<&'a [u8], Error> {
    let (rest, (app, _, procid, _, msgid, _)) =
        (header_field, sp, header_field, sp, header_field, sp)
            .parse(input)
            .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| Error::Header)?;
    for (name, value) in [("appname", app), ("procid", procid), ("msgid", msgid)] {
        if value != b"-" {
            out.push(name, text(value));
        }
    }
    let rest = structured_data(rest, out).ok_or(Error::StructuredData)?;
    match rest {
        [] => Ok(rest),
        [b' ' | b'\n', msg @ ..] => Ok(msg.strip_prefix(BOM).unwrap_or(msg)),
        _ => Err(Error::StructuredData),
    }
}

/// A header field: printable US-ASCII, no spaces (RFC 5424 PRINTUSASCII).
pub fn header_field(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| (33..=126).contains(&b)).parse(input)
}

fn sp(input: &[u8]) -> IResult<&[u8], &[u8]> {
    tag(" ").parse(input)
}

/// SD-NAME: printable US-ASCII except `=`, space, `]` and `"`.
fn sd_name(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"')).parse(input)
}

/// `-`, or one or more `[SD-ID param="value" ...]` elements. Returns what follows.
fn structured_data<'a>(input: &'a [u8], out: &mut Parsed<'a>) -> Option<&'a [u8]> {
    if let Some(rest) = input.strip_prefix(b"-") {
        return Some(rest);
    }
    let mut rest = input;
    let mut elements = 0;
    while let Some(after_open) = rest.strip_prefix(b"[") {
        rest = element(after_open, out)?;
        elements += 1;
    }
    (elements > 0).then_some(rest)
}

/// One element after its `[`, up to and including its `]`.
fn element<'a>(input: &'a [u8], out: &mut Parsed<'a>) -> Option<&'a [u8]> {
    let (mut rest, id) = sd_name(input).ok()?;
    let id = text(id);
    let first_param = out.fields.len();
    let mut params = 0;
    loop {
        let after_spaces = skip_spaces(rest);
        if let [b']', after @ ..] = after_spaces {
            if params == 0 {
                out.push(format!("sd.{id}"), "");
            }
            return Some(after);
        }
        if after_spaces.len() == rest.len() {
            return None;
        }
        let (after_name, (name, _, _)) =
            (sd_name, char('='), char('"')).parse(after_spaces).ok()?;
        let (value, after_value) = param_value(after_name)?;
        rest = after_value;
        params += 1;
        let key = format!("sd.{id}.{}", text(name));
        match out.fields[first_param..]
            .iter_mut()
            .find(|(k, _)| *k == key)
        {
            Some((_, existing)) => {
                let joined = existing.to_mut();
                joined.push(',');
                joined.push_str(&value);
            }
            None => out.push(key, value),
        }
    }
}

/// Exactly one space separates params; extra ones are tolerated.
fn skip_spaces(input: &[u8]) -> &[u8] {
    let n = input.iter().take_while(|&&b| b == b' ').count();
    &input[n..]
}

/// A param value after its opening quote: the unescaped text and what follows the closing
/// quote. Borrowed when the value has no backslash.
fn param_value(input: &[u8]) -> Option<(Cow<'_, str>, &[u8])> {
    let mut i = 0;
    let mut escaped = false;
    loop {
        i += memchr::memchr2(b'"', b'\\', input.get(i..)?)?;
        match input.get(i..)? {
            [b'"', ..] => break,
            [b'\\', ..] => {
                escaped = true;
                i += 2;
            }
            _ => return None,
        }
    }
    let raw = &input[..i];
    let rest = &input[i + 1..];
    if !escaped {
        return Some((text(raw), rest));
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            unescaped.push(b);
            continue;
        }
        match bytes.next() {
            Some(next @ (b'"' | b'\\' | b']')) => unescaped.push(next),
            Some(other) => unescaped.extend_from_slice(&[b'\\', other]),
            None => unescaped.push(b'\\'),
        }
    }
    let value = match String::from_utf8(unescaped) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Some((Cow::Owned(value), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Level;

    fn parse(input: &str) -> Result<(Vec<(String, String)>, String), Error> {
        let mut out = Parsed::new(None, Level::Info, Cow::Borrowed(""));
        let msg = after_hostname(input.as_bytes(), &mut out)?;
        let fields = out
            .fields
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok((fields, String::from_utf8_lossy(msg).into_owned()))
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rfc_example_with_sd_and_bom() {
        let (fields, msg) = parse(
            "evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
        )
        .unwrap();
        assert_eq!(
            fields,
            kv(&[
                ("appname", "evntslog"),
                ("msgid", "ID47"),
                ("sd.exampleSDID@32473.iut", "3"),
                ("sd.exampleSDID@32473.eventSource", "Application"),
                ("sd.exampleSDID@32473.eventID", "1011"),
            ])
        );
        assert_eq!(msg, "An application event log entry...");
    }

    #[test]
    fn several_elements_no_message() {
        let (fields, msg) = parse(
            "- - - [exampleSDID@32473 iut=\"3\"][examplePriority@32473 class=\"high\"][meta]",
        )
        .unwrap();
        assert_eq!(
            fields,
            kv(&[
                ("sd.exampleSDID@32473.iut", "3"),
                ("sd.examplePriority@32473.class", "high"),
                ("sd.meta", ""),
            ])
        );
        assert_eq!(msg, "");
    }

    #[test]
    fn escapes_in_values() {
        let (fields, _) =
            parse(r#"app 1 - [x@1 a="say \"hi\"" b="back\\slash" c="br\]acket" d="keep \n"] m"#)
                .unwrap();
        assert_eq!(
            fields,
            kv(&[
                ("appname", "app"),
                ("procid", "1"),
                ("sd.x@1.a", "say \"hi\""),
                ("sd.x@1.b", "back\\slash"),
                ("sd.x@1.c", "br]acket"),
                ("sd.x@1.d", "keep \\n"),
            ])
        );
    }

    #[test]
    fn repeated_param_keeps_every_value() {
        let (fields, msg) = parse(r#"a b c [origin ip="10.0.0.1" ip="10.0.0.2"] hi"#).unwrap();
        assert_eq!(
            fields[3..],
            kv(&[("sd.origin.ip", "10.0.0.1,10.0.0.2")])[..]
        );
        assert_eq!(msg, "hi");
    }

    #[test]
    fn nil_sd_and_message_with_leading_space() {
        let (fields, msg) = parse("CRON 20856 - -  (root) CMD").unwrap();
        assert_eq!(fields, kv(&[("appname", "CRON"), ("procid", "20856")]));
        assert_eq!(msg, " (root) CMD");
    }

    #[test]
    fn malformed_leaves_no_fields() {
        for bad in [
            "app 1 - [x a=\"unterminated] m",
            "app 1 - [x a=unquoted] m",
            "app 1 - [x a=\"v\"]junk",
            "app 1 - [] m",
            "app 1 - nosd m",
            "app 1 -",
            "app 1",
            "app  1 - - m",
            "",
        ] {
            let mut out = Parsed::new(None, Level::Info, Cow::Borrowed(""));
            assert!(after_hostname(bad.as_bytes(), &mut out).is_err(), "{bad}");
            assert!(out.fields.is_empty(), "{bad}");
        }
    }
}

//! Compiles an nginx `log_format` string into the steps that split a line.
//!
//! A format is a leading literal followed by variables, each ending where the literal
//! after it begins (or at the end of the line for a final variable). nginx escapes `"`
//! and `\` inside values (`escape=default`), so the first occurrence of the following
//! literal is where a value ends: no backtracking is needed.

use memchr::memmem;

use crate::SpecError;

/// What a variable means beyond being a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Plain,
    /// `$time_local`: `10/Oct/2000:13:55:36 -0700`.
    TimeLocal,
    /// `$time_iso8601`: `2000-10-10T13:55:36-07:00`.
    TimeIso8601,
    /// `$msec`: seconds since the epoch with milliseconds, `971211336.123`.
    Msec,
    /// `$status`: sets the level.
    Status,
    /// `$request`: split into `method`, `path`, `protocol`.
    Request,
    /// A variable nginx always writes as one word (an address, a port, a number, the
    /// host name): a value with a space in it means the line has text the format does not
    /// describe (a `$host` in front of `combined`, a forwarded-for list), and the values
    /// would be shifted, so the line is a parse error instead.
    Word,
}

impl Role {
    fn of(name: &str) -> Role {
        match name {
            "time_local" => Role::TimeLocal,
            "time_iso8601" => Role::TimeIso8601,
            "msec" => Role::Msec,
            "status" => Role::Status,
            "request" => Role::Request,
            "remote_addr"
            | "realip_remote_addr"
            | "server_addr"
            | "remote_port"
            | "realip_remote_port"
            | "server_port"
            | "host"
            | "body_bytes_sent"
            | "bytes_sent"
            | "request_length"
            | "request_time"
            | "connection"
            | "connection_requests"
            | "pid"
            | "request_id"
            | "scheme"
            | "server_protocol" => Role::Word,
            _ => Role::Plain,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Literal {
    bytes: Box<[u8]>,
    finder: memmem::Finder<'static>,
}

impl Literal {
    fn new(bytes: &[u8]) -> Literal {
        Literal {
            bytes: bytes.into(),
            finder: memmem::Finder::new(bytes).into_owned(),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Position of the first occurrence of the literal in `haystack`. Literals in log
    /// formats are short and values too: finding the first byte with `memchr` and
    /// comparing the rest beats a general substring search there.
    #[inline]
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<usize> {
        match *self.bytes {
            [b] => memchr::memchr(b, haystack),
            [first, ref tail @ ..] if tail.len() <= 4 => {
                memchr::memchr_iter(first, haystack).find(|&at| {
                    haystack
                        .get(at + 1..at + 1 + tail.len())
                        .is_some_and(|next| next.iter().zip(tail).all(|(a, b)| a == b))
                })
            }
            _ => self.finder.find(haystack),
        }
    }
}

/// One variable and the literal that ends it.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) name: Box<str>,
    pub(crate) role: Role,
    /// The literal that ends the value; `None` for a last variable, which takes the rest
    /// of the line.
    pub(crate) delimiter: Option<Literal>,
}

/// A compiled `log_format`.
#[derive(Debug, Clone)]
pub(crate) struct LogFormat {
    /// Literal text before the first variable (may be empty).
    pub(crate) lead: Box<[u8]>,
    pub(crate) slots: Vec<Slot>,
}

enum Piece {
    Literal(Vec<u8>),
    /// A variable name and the byte offset of its `$`.
    Variable(String, usize),
}

impl LogFormat {
    /// Compiles `format`. Two variables with nothing between them are rejected: nginx
    /// accepts them, but their values cannot be told apart when reading the line back.
    pub(crate) fn compile(format: &str) -> Result<LogFormat, SpecError> {
        if format.is_empty() {
            return Err(bad(format, 0, "the log_format is empty"));
        }
        let pieces = tokenize(format)?;
        let mut lead = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        let mut previous: Option<(String, usize)> = None;
        for piece in pieces {
            match piece {
                Piece::Literal(bytes) => match previous.take() {
                    Some((name, _)) => slots.push(Slot {
                        role: Role::of(&name),
                        name: name.into(),
                        delimiter: Some(Literal::new(&bytes)),
                    }),
                    None => lead = bytes,
                },
                Piece::Variable(name, at) => {
                    if let Some((before, _)) = &previous {
                        return Err(bad(
                            format,
                            at,
                            &format!(
                                "${before} and ${name} have nothing between them, so their values \
                                 cannot be told apart; name one variable for both (e.g. \
                                 ${before}_{name})"
                            ),
                        ));
                    }
                    previous = Some((name, at));
                }
            }
        }
        if let Some((name, _)) = previous {
            slots.push(Slot {
                role: Role::of(&name),
                name: name.into(),
                delimiter: None,
            });
        }
        Ok(LogFormat {
            lead: lead.into(),
            slots,
        })
    }
}

/// Splits the format into literals and variables the way nginx's `ngx_http_log_compile`
/// reads it: `$name` or `${name}`, names made of ASCII letters, digits and `_`.
fn tokenize(format: &str) -> Result<Vec<Piece>, SpecError> {
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(dollar) = memchr::memchr(b'$', &bytes[i..]).map(|p| i + p) else {
            literal.extend_from_slice(&bytes[i..]);
            break;
        };
        literal.extend_from_slice(&bytes[i..dollar]);
        let (name_start, braced) = match bytes.get(dollar + 1) {
            Some(b'{') => (dollar + 2, true),
            Some(_) => (dollar + 1, false),
            None => return Err(bad(format, dollar, "`$` at the end, with no variable name")),
        };
        let name_len = bytes
            .get(name_start..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        let name_end = name_start + name_len;
        if name_len == 0 {
            let reason = if braced {
                "`${` not followed by a variable name"
            } else {
                "`$` not followed by a variable name (letters, digits, `_`)"
            };
            return Err(bad(format, dollar, reason));
        }
        let next = if braced {
            if bytes.get(name_end) != Some(&b'}') {
                return Err(bad(format, dollar, "`${` without its closing `}`"));
            }
            name_end + 1
        } else {
            name_end
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        // Name bytes are ASCII, so this slice is on char boundaries.
        let name = format.get(name_start..name_end).unwrap_or_default();
        pieces.push(Piece::Variable(name.to_owned(), dollar));
        i = next;
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

fn bad(format: &str, at: usize, reason: &str) -> SpecError {
    let fragment: String = format
        .get(at..)
        .unwrap_or_default()
        .chars()
        .take(24)
        .collect();
    SpecError::BadLogFormat {
        at,
        fragment,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: &LogFormat) -> Vec<&str> {
        f.slots.iter().map(|s| &*s.name).collect()
    }

    fn delim(s: &Slot) -> Option<&[u8]> {
        s.delimiter.as_ref().map(Literal::bytes)
    }

    #[test]
    fn combined_compiles_to_nine_variables_with_their_delimiters() {
        let f = LogFormat::compile(super::super::COMBINED).unwrap();
        assert_eq!(&*f.lead, b"");
        assert_eq!(
            names(&f),
            [
                "remote_addr",
                "remote_user",
                "time_local",
                "request",
                "status",
                "body_bytes_sent",
                "http_referer",
                "http_user_agent"
            ]
        );
        let delims: Vec<_> = f.slots.iter().map(delim).collect();
        assert_eq!(
            delims,
            [
                Some(&b" - "[..]),
                Some(b" ["),
                Some(b"] \""),
                Some(b"\" "),
                Some(b" "),
                Some(b" \""),
                Some(b"\" \""),
                Some(b"\"")
            ]
        );
        assert_eq!(f.slots[2].role, Role::TimeLocal);
        assert_eq!(f.slots[3].role, Role::Request);
        assert_eq!(f.slots[4].role, Role::Status);
    }

    #[test]
    fn braced_names_leading_literal_and_final_variable() {
        let f = LogFormat::compile("[${host}]:$server_port $request_time").unwrap();
        assert_eq!(&*f.lead, b"[");
        assert_eq!(names(&f), ["host", "server_port", "request_time"]);
        assert_eq!(delim(&f.slots[0]), Some(&b"]:"[..]));
        assert!(f.slots[2].delimiter.is_none());
    }

    #[test]
    fn a_name_ends_at_the_first_byte_that_cannot_be_in_a_name() {
        let f = LogFormat::compile("$host.$uri-x").unwrap();
        assert_eq!(names(&f), ["host", "uri"]);
        assert_eq!(delim(&f.slots[1]), Some(&b"-x"[..]));
    }

    fn error_at(format: &str) -> (usize, String, String) {
        match LogFormat::compile(format) {
            Err(SpecError::BadLogFormat {
                at,
                fragment,
                reason,
            }) => (at, fragment, reason),
            other => panic!("expected BadLogFormat for {format:?}, got {other:?}"),
        }
    }

    #[test]
    fn bad_formats_name_the_offset_and_fragment() {
        let (at, fragment, reason) = error_at("$remote_addr [${time_local");
        assert_eq!((at, fragment.as_str()), (14, "${time_local"));
        assert!(reason.contains("closing `}`"), "{reason}");

        let (at, _, reason) = error_at("$status $");
        assert_eq!(at, 8);
        assert!(reason.contains("at the end"), "{reason}");

        let (at, fragment, reason) = error_at("$host$request_uri");
        assert_eq!((at, fragment.as_str()), (5, "$request_uri"));
        assert!(reason.contains("$host and $request_uri"), "{reason}");

        let (at, _, _) = error_at("a $-b");
        assert_eq!(at, 2);
        let (at, _, _) = error_at("${}");
        assert_eq!(at, 0);
        assert_eq!(error_at("").0, 0);
    }

    #[test]
    fn a_format_without_variables_is_a_lead_literal_only() {
        let f = LogFormat::compile("static text").unwrap();
        assert_eq!(&*f.lead, b"static text");
        assert!(f.slots.is_empty());
    }
}

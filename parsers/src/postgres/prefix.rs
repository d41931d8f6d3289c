//! `log_line_prefix` compiled into a matcher.
//!
//! A prefix is literals and escapes. Escapes whose output has a fixed shape (pid, line
//! number, timestamps, SQLSTATE, ...) are matched strictly; free-text escapes (user, database,
//! application name, backend type, command tag, hosts) may hold any byte, spaces included, so
//! they are matched lazily and the matcher backtracks: a split is accepted only when the rest
//! of the prefix matches and a severity header (`LOG:  `) follows. Where a line splits more
//! than one way, a first pass keeps spaces out of the values that hardly ever have them
//! (user, database, hosts), so `client backend bob@my db` reads as backend type
//! `client backend`, user `bob`; a second pass lets any value hold spaces. A step budget
//! bounds the work on hostile lines.

use super::severity::{self, Header};
use super::timestamp;
use crate::SpecError;

/// The escapes PostgreSQL documents for `log_line_prefix`, one per value they print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    ApplicationName,
    User,
    Database,
    RemoteHostPort,
    RemoteHost,
    LocalAddress,
    BackendType,
    Pid,
    LeaderPid,
    Time,
    TimeMillis,
    Epoch,
    CommandTag,
    SqlState,
    SessionId,
    LineNum,
    SessionStart,
    VirtualXid,
    Xid,
    QueryId,
}

const ESCAPES: usize = 20;

impl Escape {
    fn from_letter(letter: u8) -> Option<Escape> {
        let escape = match letter {
            b'a' => Escape::ApplicationName,
            b'u' => Escape::User,
            b'd' => Escape::Database,
            b'r' => Escape::RemoteHostPort,
            b'h' => Escape::RemoteHost,
            b'L' => Escape::LocalAddress,
            b'b' => Escape::BackendType,
            b'p' => Escape::Pid,
            b'P' => Escape::LeaderPid,
            b't' => Escape::Time,
            b'm' => Escape::TimeMillis,
            b'n' => Escape::Epoch,
            b'i' => Escape::CommandTag,
            b'e' => Escape::SqlState,
            b'c' => Escape::SessionId,
            b'l' => Escape::LineNum,
            b's' => Escape::SessionStart,
            b'v' => Escape::VirtualXid,
            b'x' => Escape::Xid,
            b'Q' => Escape::QueryId,
            _ => return None,
        };
        Some(escape)
    }

    /// Escapes whose text can be anything; they are matched lazily.
    const fn is_free_text(self) -> bool {
        matches!(
            self,
            Escape::ApplicationName
                | Escape::User
                | Escape::Database
                | Escape::RemoteHostPort
                | Escape::RemoteHost
                | Escape::LocalAddress
                | Escape::BackendType
                | Escape::CommandTag
        )
    }

    /// Values that often hold spaces (`client backend`, `idle in transaction`, `pgAdmin 4`).
    const fn spaces_usual(self) -> bool {
        matches!(
            self,
            Escape::ApplicationName | Escape::BackendType | Escape::CommandTag
        )
    }

    /// Length of this escape's text at the start of `input`, for fixed-shape escapes.
    fn strict_len(self, input: &[u8]) -> Option<usize> {
        let digits = |from: usize| {
            input
                .get(from..)
                .map_or(0, |s| s.iter().take_while(|b| b.is_ascii_digit()).count())
        };
        match self {
            Escape::Pid | Escape::LineNum | Escape::Xid => Some(digits(0)).filter(|&n| n > 0),
            // Empty outside parallel workers.
            Escape::LeaderPid => Some(digits(0)),
            Escape::QueryId => {
                let sign = usize::from(input.first() == Some(&b'-'));
                Some(digits(sign)).filter(|&n| n > 0).map(|n| n + sign)
            }
            // `backend/local-xid`, empty when the process has none.
            Escape::VirtualXid => {
                let a = digits(0);
                if a > 0 && input.get(a) == Some(&b'/') {
                    let b = digits(a + 1);
                    if b > 0 {
                        return Some(a + 1 + b);
                    }
                }
                Some(0)
            }
            Escape::SqlState => input
                .get(..5)
                .filter(|code| {
                    code.iter()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
                })
                .map(|_| 5),
            Escape::SessionId => {
                let hex = |from: usize| {
                    input.get(from..).map_or(0, |s| {
                        s.iter().take_while(|b| b.is_ascii_hexdigit()).count()
                    })
                };
                let a = hex(0);
                if a == 0 || input.get(a) != Some(&b'.') {
                    return None;
                }
                let b = hex(a + 1);
                (b > 0).then_some(a + 1 + b)
            }
            Escape::Time | Escape::TimeMillis | Escape::SessionStart => {
                timestamp::scan(input).map(|(_, len)| len)
            }
            Escape::Epoch => timestamp::scan_epoch(input).map(|(_, len)| len),
            Escape::ApplicationName
            | Escape::User
            | Escape::Database
            | Escape::RemoteHostPort
            | Escape::RemoteHost
            | Escape::LocalAddress
            | Escape::BackendType
            | Escape::CommandTag => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(Box<[u8]>),
    /// `padded`: a width was given (`%-10u`), so the text carries spaces to trim and any
    /// escape may be blank; it is matched as free text.
    Escape {
        escape: Escape,
        padded: bool,
    },
    /// `%q`: non-session processes stop the prefix here.
    SessionOnly,
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prefix {
    items: Vec<Item>,
    /// What tells processes apart: `%p`, else `%c`, else nothing.
    identity: Option<Escape>,
}

/// Step budget per line: far above what real prefixes need, low enough that a hostile line
/// cannot make the backtracking slow.
const BUDGET: u32 = 4096;

impl Prefix {
    /// Compiles a prefix; an unknown or incomplete escape is an error naming its byte offset.
    pub(crate) fn compile(spec: &str) -> Result<Prefix, SpecError> {
        let bytes = spec.as_bytes();
        let mut items = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b != b'%' {
                literal.push(b);
                i += 1;
                continue;
            }
            let at = i;
            i += 1;
            if bytes.get(i) == Some(&b'%') {
                literal.push(b'%');
                i += 1;
                continue;
            }
            let pad_start = i;
            if bytes.get(i) == Some(&b'-') {
                i += 1;
            }
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            let padded = i > pad_start;
            let Some(letter) = spec.get(i..).and_then(|rest| rest.chars().next()) else {
                return Err(bad_prefix(
                    spec,
                    at,
                    bytes.len(),
                    "incomplete escape at the end",
                ));
            };
            let end = i + letter.len_utf8();
            i = end;
            let item = if letter == 'q' {
                Item::SessionOnly
            } else {
                let escape = u8::try_from(letter)
                    .ok()
                    .and_then(Escape::from_letter)
                    .ok_or_else(|| bad_prefix(spec, at, end, "unknown escape"))?;
                Item::Escape { escape, padded }
            };
            if !literal.is_empty() {
                items.push(Item::Literal(std::mem::take(&mut literal).into()));
            }
            items.push(item);
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal.into()));
        }
        let has = |wanted: Escape| {
            items
                .iter()
                .any(|item| matches!(item, Item::Escape { escape, .. } if *escape == wanted))
        };
        let identity = if has(Escape::Pid) {
            Some(Escape::Pid)
        } else if has(Escape::SessionId) {
            Some(Escape::SessionId)
        } else {
            None
        };
        Ok(Prefix { items, identity })
    }

    /// Matches the prefix and the severity header that must follow it at the start of `line`.
    pub(crate) fn match_line<'a>(&self, line: &'a [u8]) -> Option<Match<'a>> {
        let mut captures = Captures::default();
        let mut budget = BUDGET;
        let found = self
            .step(0, line, 0, &mut captures, &mut budget, false)
            .or_else(|| {
                captures = Captures::default();
                self.step(0, line, 0, &mut captures, &mut budget, true)
            });
        let (header, header_at) = found?;
        Some(Match {
            captures,
            header,
            header_at,
        })
    }

    /// The value that tells processes apart in `captures` (`%p`, else `%c`); `None` when the
    /// prefix has neither, and then every labelled line joins the entry before it.
    pub(crate) fn identity<'a>(&self, captures: &Captures<'a>) -> Option<&'a [u8]> {
        self.identity.and_then(|e| captures.get(e))
    }

    pub(crate) fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    fn step<'a>(
        &self,
        index: usize,
        line: &'a [u8],
        pos: usize,
        captures: &mut Captures<'a>,
        budget: &mut u32,
        any_spaces: bool,
    ) -> Option<(Header<'a>, usize)> {
        *budget = budget.checked_sub(1)?;
        let rest = line.get(pos..)?;
        let Some(item) = self.items.get(index) else {
            return severity::header(rest).map(|h| (h, pos));
        };
        match item {
            Item::Literal(literal) => {
                if rest.starts_with(literal) {
                    self.step(
                        index + 1,
                        line,
                        pos + literal.len(),
                        captures,
                        budget,
                        any_spaces,
                    )
                } else {
                    None
                }
            }
            Item::SessionOnly => match severity::header(rest) {
                Some(header) => Some((header, pos)),
                None => self.step(index + 1, line, pos, captures, budget, any_spaces),
            },
            Item::Escape { escape, padded } if !padded && !escape.is_free_text() => {
                let len = escape.strict_len(rest)?;
                let old = captures.set(*escape, rest.get(..len)?);
                let found = self.step(index + 1, line, pos + len, captures, budget, any_spaces);
                if found.is_none() {
                    captures.restore(*escape, old);
                }
                found
            }
            Item::Escape { escape, padded } => {
                let next_literal = match self.items.get(index + 1) {
                    Some(Item::Literal(literal)) => Some(&**literal),
                    _ => None,
                };
                let mut end = pos;
                while end <= line.len() {
                    if let Some(literal) = next_literal {
                        end += memchr::memmem::find(line.get(end..)?, literal)?;
                    }
                    let mut value = line.get(pos..end)?;
                    if *padded {
                        value = value.trim_ascii();
                    }
                    if !any_spaces && !escape.spaces_usual() && value.contains(&b' ') {
                        // Longer candidates only add bytes: none can do without the space.
                        return None;
                    }
                    let old = captures.set(*escape, value);
                    if let Some(found) =
                        self.step(index + 1, line, end, captures, budget, any_spaces)
                    {
                        return Some(found);
                    }
                    captures.restore(*escape, old);
                    if *budget == 0 {
                        return None;
                    }
                    end += 1;
                }
                None
            }
        }
    }
}

fn bad_prefix(spec: &str, at: usize, end: usize, reason: &str) -> SpecError {
    SpecError::BadPrefix {
        at,
        fragment: spec.get(at..end).unwrap_or_default().to_owned(),
        reason: reason.to_owned(),
    }
}

/// A matched prefix: the escapes' texts and the header after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match<'a> {
    pub captures: Captures<'a>,
    pub header: Header<'a>,
    /// Where the header starts in the line.
    pub header_at: usize,
}

/// The text each escape printed (the last one, if an escape appears twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Captures<'a> {
    values: [Option<&'a [u8]>; ESCAPES],
}

impl<'a> Captures<'a> {
    pub(crate) fn get(&self, escape: Escape) -> Option<&'a [u8]> {
        self.values.get(escape as usize).copied().flatten()
    }

    fn set(&mut self, escape: Escape, value: &'a [u8]) -> Option<&'a [u8]> {
        self.values
            .get_mut(escape as usize)
            .and_then(|slot| slot.replace(value))
    }

    fn restore(&mut self, escape: Escape, old: Option<&'a [u8]>) {
        if let Some(slot) = self.values.get_mut(escape as usize) {
            *slot = old;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(m: &Match<'a>, e: Escape) -> Option<&'a str> {
        m.captures.get(e).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn default_prefix() {
        let p = Prefix::compile("%m [%p] ").unwrap();
        let line = b"2019-07-23 12:06:24.406 UTC [25] LOG:  00000: hello";
        let m = p.match_line(line).unwrap();
        assert_eq!(
            text(&m, Escape::TimeMillis),
            Some("2019-07-23 12:06:24.406 UTC")
        );
        assert_eq!(text(&m, Escape::Pid), Some("25"));
        assert_eq!(m.header_at, 33);
        assert_eq!(m.header.sql_state, Some(&b"00000"[..]));
    }

    #[test]
    fn debian_prefix_with_and_without_session() {
        let p = Prefix::compile("%m [%p] %q%u@%d ").unwrap();
        let m = p
            .match_line(b"2017-07-31 13:36:42.956 CEST [4980] [unknown]@[unknown] LOG:  x")
            .unwrap();
        assert_eq!(text(&m, Escape::User), Some("[unknown]"));
        assert_eq!(text(&m, Escape::Database), Some("[unknown]"));
        let m = p
            .match_line(b"2017-07-31 13:36:42.585 CEST [4974] LOG:  a@b c LOG:  d")
            .unwrap();
        assert_eq!(text(&m, Escape::User), None);
        assert_eq!(m.header_at, 36);
        let m = p
            .match_line(b"2017-07-31 13:46:23.016 CEST [5502] postgres@_clients$db LOG:  d")
            .unwrap();
        assert_eq!(text(&m, Escape::Database), Some("_clients$db"));
    }

    #[test]
    fn free_text_with_spaces_backtracks() {
        let p = Prefix::compile("%t %b %u@%d ").unwrap();
        let m = p
            .match_line(b"2024-01-05 10:00:00 +03 client backend bob@mydb ERROR:  boom")
            .unwrap();
        assert_eq!(text(&m, Escape::BackendType), Some("client backend"));
        assert_eq!(text(&m, Escape::User), Some("bob"));
        assert_eq!(text(&m, Escape::Database), Some("mydb"));
        let p = Prefix::compile("%u@%d ").unwrap();
        let m = p.match_line(b"bob@my db ERROR:  boom").unwrap();
        assert_eq!(text(&m, Escape::Database), Some("my db"));
    }

    #[test]
    fn every_escape() {
        let p = Prefix::compile("%a|%u|%d|%r|%h|%L|%b|%p|%P|%t|%m|%n|%i|%e|%c|%l|%s|%v|%x|%Q|%% ")
            .unwrap();
        let line = b"psql|bob|db|10.0.0.1(5432)|10.0.0.1|10.0.0.2|client backend|42|41|\
2024-01-05 10:00:00 UTC|2024-01-05 10:00:00.123 UTC|1704448800.123|SELECT|42P01|\
659e1f20.2a|7|2024-01-05 09:00:00 UTC|3/17|0|-123|% LOG:  m";
        let m = p.match_line(line).unwrap();
        let expect = [
            (Escape::ApplicationName, "psql"),
            (Escape::User, "bob"),
            (Escape::Database, "db"),
            (Escape::RemoteHostPort, "10.0.0.1(5432)"),
            (Escape::RemoteHost, "10.0.0.1"),
            (Escape::LocalAddress, "10.0.0.2"),
            (Escape::BackendType, "client backend"),
            (Escape::Pid, "42"),
            (Escape::LeaderPid, "41"),
            (Escape::Time, "2024-01-05 10:00:00 UTC"),
            (Escape::TimeMillis, "2024-01-05 10:00:00.123 UTC"),
            (Escape::Epoch, "1704448800.123"),
            (Escape::CommandTag, "SELECT"),
            (Escape::SqlState, "42P01"),
            (Escape::SessionId, "659e1f20.2a"),
            (Escape::LineNum, "7"),
            (Escape::SessionStart, "2024-01-05 09:00:00 UTC"),
            (Escape::VirtualXid, "3/17"),
            (Escape::Xid, "0"),
            (Escape::QueryId, "-123"),
        ];
        for (escape, value) in expect {
            assert_eq!(text(&m, escape), Some(value), "{escape:?}");
        }
    }

    #[test]
    fn padding_is_trimmed() {
        let p = Prefix::compile("%-8p|%10u ").unwrap();
        let m = p.match_line(b"42      |       bob LOG:  x").unwrap();
        assert_eq!(text(&m, Escape::Pid), Some("42"));
        assert_eq!(text(&m, Escape::User), Some("bob"));
    }

    #[test]
    fn empty_optional_values() {
        let p = Prefix::compile("[%p|%P|%v] ").unwrap();
        let m = p.match_line(b"[42||] LOG:  x").unwrap();
        assert_eq!(text(&m, Escape::LeaderPid), Some(""));
        assert_eq!(text(&m, Escape::VirtualXid), Some(""));
    }

    #[test]
    fn unknown_escape_is_named() {
        let err = Prefix::compile("%m [%p] %z ").unwrap_err();
        assert_eq!(
            err,
            SpecError::BadPrefix {
                at: 8,
                fragment: "%z".into(),
                reason: "unknown escape".into()
            }
        );
        assert!(err.to_string().contains("byte 8"));
        let err = Prefix::compile("x %-12é").unwrap_err();
        assert!(
            matches!(err, SpecError::BadPrefix { at: 2, ref fragment, .. } if fragment == "%-12é")
        );
        let err = Prefix::compile("%m %").unwrap_err();
        assert!(matches!(err, SpecError::BadPrefix { at: 3, .. }));
    }

    #[test]
    fn no_match_without_header() {
        let p = Prefix::compile("%m [%p] ").unwrap();
        assert!(
            p.match_line(b"2019-07-23 12:06:24.406 UTC [25] hello")
                .is_none()
        );
        assert!(p.match_line(b"\tcontinued").is_none());
        assert!(p.match_line(b"").is_none());
    }

    #[test]
    fn hostile_line_stays_bounded() {
        let p = Prefix::compile("%u%d%a%b%i ").unwrap();
        let line = vec![b'a'; 10_000];
        assert!(p.match_line(&line).is_none());
    }
}

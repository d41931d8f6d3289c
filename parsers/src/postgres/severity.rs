//! The word after the prefix: an entry's severity (`LOG`, `ERROR`, ...) or the label of a
//! line that belongs to the entry before it (`DETAIL`, `STATEMENT`, ...).

use crate::Level;

/// What the word after the prefix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    /// Starts an entry.
    Severity(Level),
    /// A line carrying one more part of the entry before it.
    Label(Label),
}

/// The parts PostgreSQL writes on lines of their own after an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Detail,
    Hint,
    Context,
    Statement,
    Query,
    Location,
}

impl Label {
    pub(crate) const ALL: [Label; 6] = [
        Label::Detail,
        Label::Hint,
        Label::Context,
        Label::Statement,
        Label::Query,
        Label::Location,
    ];

    /// The record field the part goes into.
    pub(crate) const fn field(self) -> &'static str {
        match self {
            Label::Detail => "detail",
            Label::Hint => "hint",
            Label::Context => "context",
            Label::Statement => "statement",
            Label::Query => "query",
            Label::Location => "location",
        }
    }

    /// The word PostgreSQL prints (the property tests write lines with it).
    #[cfg(test)]
    pub(crate) const fn word(self) -> &'static str {
        match self {
            Label::Detail => "DETAIL",
            Label::Hint => "HINT",
            Label::Context => "CONTEXT",
            Label::Statement => "STATEMENT",
            Label::Query => "QUERY",
            Label::Location => "LOCATION",
        }
    }
}

/// Reads a severity or label word (as PostgreSQL prints it, upper case).
///
/// PostgreSQL prints `DEBUG` for DEBUG1..DEBUG5; the numbered forms are accepted too.
pub(crate) fn word(bytes: &[u8]) -> Option<Word> {
    let word = match bytes {
        b"LOG" | b"INFO" => Word::Severity(Level::Info),
        b"NOTICE" => Word::Severity(Level::Notice),
        b"WARNING" => Word::Severity(Level::Warn),
        b"ERROR" => Word::Severity(Level::Error),
        b"FATAL" => Word::Severity(Level::Critical),
        b"PANIC" => Word::Severity(Level::Emergency),
        b"DEBUG" | b"DEBUG1" | b"DEBUG2" | b"DEBUG3" | b"DEBUG4" | b"DEBUG5" => {
            Word::Severity(Level::Debug)
        }
        b"DETAIL" => Word::Label(Label::Detail),
        b"HINT" => Word::Label(Label::Hint),
        b"CONTEXT" => Word::Label(Label::Context),
        b"STATEMENT" => Word::Label(Label::Statement),
        b"QUERY" => Word::Label(Label::Query),
        b"LOCATION" => Word::Label(Label::Location),
        _ => return None,
    };
    Some(word)
}

/// The level of a severity name as csvlog and jsonlog write it; unknown names are `None`.
pub(crate) fn level(name: &str) -> Option<Level> {
    match word(name.as_bytes())? {
        Word::Severity(level) => Some(level),
        Word::Label(_) => None,
    }
}

/// The header after the prefix: `WORD:  message`, or with `log_error_verbosity = verbose`
/// `WORD:  SQLSTATE: message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    pub word: Word,
    pub name: &'a [u8],
    pub sql_state: Option<&'a [u8]>,
    /// Where the message starts, relative to the header's start.
    pub message_at: usize,
}

/// Reads the header at the start of `input`.
pub(crate) fn header(input: &[u8]) -> Option<Header<'_>> {
    let colon = input
        .iter()
        .take(10)
        .position(|&b| !b.is_ascii_uppercase() && !b.is_ascii_digit())?;
    let name = input.get(..colon)?;
    let word = word(name)?;
    if input.get(colon) != Some(&b':') {
        return None;
    }
    let mut at = colon + 1;
    // PostgreSQL writes two spaces; tolerate one, or none at the end of the line.
    match input.get(at..) {
        Some([b' ', b' ', ..]) => at += 2,
        Some([b' ', ..]) => at += 1,
        Some([]) => {}
        _ => return None,
    }
    let mut sql_state = None;
    if let Word::Severity(_) = word {
        if let Some(code) = input.get(at..at + 5).filter(|c| is_sql_state(c)) {
            if input.get(at + 5..at + 7) == Some(b": ") {
                sql_state = Some(code);
                at += 7;
            }
        }
    }
    Some(Header {
        word,
        name,
        sql_state,
        message_at: at,
    })
}

/// Five characters of digits and upper-case letters, at least one digit (every SQLSTATE has
/// one; a message starting with an upper-case word then does not pass for a code).
pub(crate) fn is_sql_state(code: &[u8]) -> bool {
    code.len() == 5
        && code
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && code.iter().any(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        for (name, expected) in [
            ("DEBUG", Level::Debug),
            ("DEBUG3", Level::Debug),
            ("LOG", Level::Info),
            ("INFO", Level::Info),
            ("NOTICE", Level::Notice),
            ("WARNING", Level::Warn),
            ("ERROR", Level::Error),
            ("FATAL", Level::Critical),
            ("PANIC", Level::Emergency),
        ] {
            assert_eq!(level(name), Some(expected), "{name}");
        }
        assert_eq!(level("DETAIL"), None);
        assert_eq!(level("DEBUG6"), None);
        assert_eq!(level("log"), None);
    }

    #[test]
    fn plain_header() {
        let h = header(b"LOG:  database system is ready").unwrap();
        assert_eq!(h.word, Word::Severity(Level::Info));
        assert_eq!(h.sql_state, None);
        assert_eq!(h.message_at, 6);
    }

    #[test]
    fn verbose_header_has_sql_state() {
        let input = b"ERROR:  42P01: relation \"x\" does not exist";
        let h = header(input).unwrap();
        assert_eq!(h.sql_state, Some(&b"42P01"[..]));
        assert_eq!(&input[h.message_at..], b"relation \"x\" does not exist");
        // An upper-case word without a digit is message, not a code.
        let h = header(b"LOG:  ABORT: something").unwrap();
        assert_eq!(h.sql_state, None);
    }

    #[test]
    fn labels_and_rejects() {
        let h = header(b"STATEMENT:  select 1").unwrap();
        assert_eq!(h.word, Word::Label(Label::Statement));
        assert!(header(b"HINT:").is_some());
        assert!(header(b"LOGS:  x").is_none());
        assert!(header(b"LOG  x").is_none());
        assert!(header(b"LOG:x").is_none());
        assert!(header(b"").is_none());
    }
}

//! Undoing nginx's `escape=default`: `"`, `\` and bytes below 0x20 or above 0x7e are
//! written as `\xHH`.

use std::borrow::Cow;

/// A value as text. Borrowed unless it holds an escape. `\xHH` sequences are decoded only
/// when the result is printable UTF-8 (a `\x22` quote, a UTF-8 user agent); otherwise
/// (TLS handshakes and other binary sent as a request) nginx's escaped form is kept, so
/// no byte is lost to U+FFFD and no control character reaches the record.
#[inline]
pub(crate) fn unescape(raw: &[u8]) -> Cow<'_, str> {
    if memchr::memchr(b'\\', raw).is_none() {
        return crate::record::text(raw);
    }
    match decode(raw) {
        Some(decoded) => Cow::Owned(decoded),
        None => crate::record::text(raw),
    }
}

fn decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw.get(i..i + 4) {
            Some([b'\\', b'x', h, l]) => match (hex(*h), hex(*l)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 4;
                    continue;
                }
                _ => out.push(b'\\'),
            },
            _ => out.push(raw.get(i).copied().unwrap_or_default()),
        }
        i += 1;
    }
    let text = String::from_utf8(out).ok()?;
    if text.chars().any(char::is_control) {
        return None;
    }
    Some(text)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Escapes a value the way nginx's `escape=default` does (the inverse of [`unescape`] for
/// printable text); used by tests and the benchmark to render lines.
pub fn escape_default(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        if b == b'"' || b == b'\\' || !(0x20..=0x7e).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed() {
        assert!(matches!(
            unescape(b"GET / HTTP/1.1"),
            Cow::Borrowed("GET / HTTP/1.1")
        ));
    }

    #[test]
    fn quotes_backslashes_and_utf8_are_decoded() {
        assert_eq!(unescape(br"say \x22hi\x22 \x5C"), r#"say "hi" \"#);
        assert_eq!(unescape(br"\xD0\x9F\xD1\x80\xD0\xB8"), "При");
        assert_eq!(
            escape_default("При \"x\"".as_bytes()),
            r"\xD0\x9F\xD1\x80\xD0\xB8 \x22x\x22"
        );
    }

    #[test]
    fn binary_keeps_the_escaped_form() {
        let tls = br"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03";
        assert_eq!(unescape(tls), String::from_utf8_lossy(tls));
        // Valid UTF-8 but control characters: kept escaped too.
        assert_eq!(unescape(br"a\x0Ab"), r"a\x0Ab");
    }

    #[test]
    fn a_backslash_not_starting_an_escape_stays() {
        assert_eq!(unescape(br"C:\dir \x4"), r"C:\dir \x4");
        assert_eq!(unescape(br"\xZZ\x41"), r"\xZZA");
    }
}

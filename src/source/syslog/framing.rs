//! TCP framing (RFC 6587): octet counting (`LEN SP MSG`) or a newline after each message,
//! told apart per message by its first byte being a digit.

/// How a framed message came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole message.
    Whole,
    /// The first `max_message_bytes` of a longer message; the rest is skipped.
    Cut,
    /// The connection closed in the middle of an octet-counted frame: `expected` bytes
    /// were announced.
    Broken {
        /// The announced length.
        expected: usize,
    },
}

/// What is skipped before the next message starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of a cut octet-counted frame.
    Bytes(usize),
    /// The rest of a cut newline-framed message.
    Line,
}

/// What the bytes at the start of a message say about octet counting.
enum Count {
    /// `LEN SP`: the message length and the header's length.
    Len(usize, usize),
    /// Only digits so far: wait for more bytes.
    Incomplete,
    /// Not a count: the message is newline-framed.
    No,
}

/// More digits than this is not a length (a message is at most about a gigabyte).
const MAX_DIGITS: usize = 9;

fn count(rest: &[u8]) -> Count {
    for (i, &b) in rest.iter().enumerate().take(MAX_DIGITS + 1) {
        match b {
            b'0'..=b'9' if i < MAX_DIGITS => {}
            b' ' if i > 0 => {
                let len = rest[..i]
                    .iter()
                    .fold(0_usize, |n, d| n * 10 + usize::from(d - b'0'));
                return Count::Len(len, i + 1);
            }
            _ => return Count::No,
        }
    }
    Count::Incomplete
}

/// Splits one connection's byte stream into messages, holding at most about
/// `max_message_bytes` plus what one read returns.
#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    max: usize,
    skip: Skip,
}

impl Framer {
    /// A framer keeping messages up to `max_message_bytes` (at least 1).
    pub(crate) fn new(max_message_bytes: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            max: max_message_bytes.max(1),
            skip: Skip::Nothing,
        }
    }

    /// Takes the bytes of one read and hands every message they complete to `emit`, in
    /// order. Empty messages are dropped.
    pub(crate) fn push<E: FnMut(&[u8], Frame)>(&mut self, data: &[u8], mut emit: E) {
        self.buf.extend_from_slice(data);
        let buf = &self.buf;
        let max = self.max;
        let mut pos = 0;
        loop {
            match self.skip {
                Skip::Nothing => {}
                Skip::Bytes(n) => {
                    let k = n.min(buf.len() - pos);
                    pos += k;
                    if k < n {
                        self.skip = Skip::Bytes(n - k);
                        break;
                    }
                    self.skip = Skip::Nothing;
                }
                Skip::Line => match memchr::memchr(b'\n', &buf[pos..]) {
                    Some(i) => {
                        pos += i + 1;
                        self.skip = Skip::Nothing;
                    }
                    None => {
                        pos = buf.len();
                        break;
                    }
                },
            }
            let rest = &buf[pos..];
            if rest.is_empty() {
                break;
            }
            let counted = if rest[0].is_ascii_digit() {
                count(rest)
            } else {
                Count::No
            };
            match counted {
                Count::Incomplete => break,
                Count::Len(len, header) => {
                    let body = &rest[header..];
                    if len <= max {
                        if body.len() < len {
                            break;
                        }
                        if len > 0 {
                            emit(&body[..len], Frame::Whole);
                        }
                        pos += header + len;
                    } else {
                        if body.len() < max {
                            break;
                        }
                        emit(&body[..max], Frame::Cut);
                        pos += header + max;
                        self.skip = Skip::Bytes(len - max);
                    }
                }
                Count::No => match memchr::memchr(b'\n', rest) {
                    Some(i) if i <= max => {
                        let line = trim_line(&rest[..i]);
                        if !line.is_empty() {
                            emit(line, Frame::Whole);
                        }
                        pos += i + 1;
                    }
                    Some(_) => {
                        emit(&rest[..max], Frame::Cut);
                        pos += max;
                        self.skip = Skip::Line;
                    }
                    None if rest.len() > max => {
                        emit(&rest[..max], Frame::Cut);
                        pos += max;
                        self.skip = Skip::Line;
                    }
                    None => break,
                },
            }
        }
        self.buf.drain(..pos);
    }

    /// The connection closed: what is left. An unterminated newline-framed message is
    /// whole (many senders end without a newline); an octet-counted frame short of its
    /// length is broken.
    pub(crate) fn finish<E: FnMut(&[u8], Frame)>(&mut self, mut emit: E) {
        let rest = std::mem::take(&mut self.buf);
        if rest.is_empty() || self.skip != Skip::Nothing {
            return;
        }
        let counted = if rest[0].is_ascii_digit() {
            count(&rest)
        } else {
            Count::No
        };
        match counted {
            Count::Len(expected, _) => emit(&rest, Frame::Broken { expected }),
            Count::Incomplete | Count::No => {
                let line = trim_line(&rest);
                if !line.is_empty() {
                    emit(line, Frame::Whole);
                }
            }
        }
    }
}

/// A newline-framed message without its trailing CR or NULs (some senders end with `\0`).
fn trim_line(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != 0)
        .map_or(0, |i| i + 1);
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(String, Frame)> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        let mut emit = |m: &[u8], k: Frame| out.push((String::from_utf8_lossy(m).into_owned(), k));
        for c in chunks {
            f.push(c, &mut emit);
        }
        f.finish(&mut emit);
        out
    }

    fn whole(m: &str) -> (String, Frame) {
        (m.to_owned(), Frame::Whole)
    }

    #[test]
    fn octet_counting_and_newlines_mix_per_message() {
        let got = frames(100, &[b"5 <13>a<13>b c\r\n9 <13>hello\n\n<14>z"]);
        assert_eq!(
            got,
            [
                whole("<13>a"),
                whole("<13>b c"),
                whole("<13>hello"),
                whole("<14>z")
            ]
        );
    }

    #[test]
    fn messages_split_across_reads_come_out_whole() {
        let input = b"12 <13>abcdefgh<13>line one\n";
        for cut in 1..input.len() {
            let got = frames(100, &[&input[..cut], &input[cut..]]);
            assert_eq!(
                got,
                [whole("<13>abcdefgh"), whole("<13>line one")],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn over_long_messages_are_cut_and_the_rest_skipped() {
        let got = frames(4, &[b"10 0123456789", b"3 abc", b"abcdefgh\nxy\n"]);
        assert_eq!(
            got,
            [
                ("0123".to_owned(), Frame::Cut),
                whole("abc"),
                ("abcd".to_owned(), Frame::Cut),
                whole("xy")
            ]
        );
        // An endless line without a newline is cut as it comes, holding nothing back.
        let mut f = Framer::new(4);
        let mut n = 0;
        for _ in 0..1000 {
            f.push(b"abcdefghij", |_, k| {
                assert_eq!(k, Frame::Cut);
                n += 1;
            });
            assert!(f.buf.len() <= 10);
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn a_frame_cut_by_the_close_is_broken_and_a_last_line_without_newline_is_whole() {
        assert_eq!(
            frames(100, &[b"20 <13>short"]),
            [("20 <13>short".to_owned(), Frame::Broken { expected: 20 })]
        );
        assert_eq!(frames(100, &[b"<13>last"]), [whole("<13>last")]);
        assert_eq!(frames(100, &[b"123"]), [whole("123")]);
    }

    #[test]
    fn garbage_is_newline_framed() {
        let got = frames(100, &[b"\xff\xfe 12x\n1234567890123 a\n0 \n"]);
        assert_eq!(
            got,
            [
                ("\u{fffd}\u{fffd} 12x".to_owned(), Frame::Whole),
                whole("1234567890123 a"),
            ]
        );
    }
}

//! What follows the timestamp in a BSD-style line (RFC 3164 and rsyslog's RFC 3339 file
//! format): `HOST TAG[PID]: MSG`.
//!
//! Lenient, as real files require: the tag is optional (`host message` has none), the PID
//! too (`sudo: ...`), and a line whose first word after the time is a tag has no host
//! (messages straight from `/dev/log`). macOS writes `--- last message repeated N times ---`
//! right after the time, with no host.

/// The parts of a BSD-style body, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body<'a> {
    /// The HOSTNAME, if the line has one.
    pub hostname: Option<&'a [u8]>,
    /// The TAG's name (`sshd` in `sshd[42]:`).
    pub appname: Option<&'a [u8]>,
    /// The TAG's `[pid]`, without brackets.
    pub procid: Option<&'a [u8]>,
    /// The MSG.
    pub message: &'a [u8],
}

/// Splits `rest`, the bytes right after the timestamp. Never fails: at worst everything is
/// the message.
pub fn body(rest: &[u8]) -> Body<'_> {
    let rest = skip_separator(rest);
    let (first, after) = token(rest);
    if first == b"---" {
        return Body {
            hostname: None,
            appname: None,
            procid: None,
            message: rest,
        };
    }
    if first.last() == Some(&b':') {
        if let Some(tag) = tag(rest) {
            return Body {
                hostname: None,
                ..tag
            };
        }
    }
    let after = skip_separator(after);
    let hostname = (!first.is_empty()).then_some(first);
    match tag(after) {
        Some(tag) => Body { hostname, ..tag },
        None => Body {
            hostname,
            appname: None,
            procid: None,
            message: after,
        },
    }
}

/// `app[pid]: msg`, `app: msg` or `app[pid] msg` at the start of `input`; one space after
/// the tag is the separator rsyslog writes, not part of the message.
pub fn tag(input: &[u8]) -> Option<Body<'_>> {
    let (word, after) = token(input);
    let (name, procid, message) = if let Some(name) = word.strip_suffix(b":") {
        let (name, procid) = split_pid(name).unwrap_or((name, None));
        (name, procid, skip_separator(after))
    } else {
        let (name, procid) = split_pid(word)?;
        (name, procid, skip_separator(after))
    };
    if name.is_empty() {
        return None;
    }
    Some(Body {
        hostname: None,
        appname: Some(name),
        procid,
        message,
    })
}

/// `name[pid]` into its parts; `None` unless the word has that shape.
fn split_pid(word: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let inner = word.strip_suffix(b"]")?;
    let open = memchr::memrchr(b'[', inner)?;
    let (name, pid) = (&inner[..open], &inner[open + 1..]);
    if name.is_empty() || pid.is_empty() {
        return None;
    }
    Some((name, Some(pid)))
}

/// The bytes up to the next space or newline, and the rest starting at it.
pub fn token(input: &[u8]) -> (&[u8], &[u8]) {
    let end = memchr::memchr2(b' ', b'\n', input).unwrap_or(input.len());
    input.split_at(end)
}

/// Drops the one space (or newline, when the header ends the first line) between two
/// header parts.
pub fn skip_separator(input: &[u8]) -> &[u8] {
    match input {
        [b' ' | b'\n', rest @ ..] => rest,
        _ => input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(rest: &str) -> (Option<&str>, Option<&str>, Option<&str>, &str) {
        let b = body(rest.as_bytes());
        fn s(v: &[u8]) -> &str {
            std::str::from_utf8(v).unwrap()
        }
        (
            b.hostname.map(s),
            b.appname.map(s),
            b.procid.map(s),
            s(b.message),
        )
    }

    #[test]
    fn host_tag_pid_message() {
        assert_eq!(
            parts(" localhost sshd[3402]: Accepted publickey"),
            (
                Some("localhost"),
                Some("sshd"),
                Some("3402"),
                "Accepted publickey"
            )
        );
        assert_eq!(
            parts(" veridian sudo: timstack : TTY=pts/6"),
            (Some("veridian"), Some("sudo"), None, "timstack : TTY=pts/6")
        );
        assert_eq!(
            parts(" web1 tomcat.log: 127.0.0.1 - -"),
            (Some("web1"), Some("tomcat.log"), None, "127.0.0.1 - -")
        );
    }

    #[test]
    fn message_keeps_its_own_leading_spaces() {
        assert_eq!(
            parts(" precise32 sudo:      tsg : user NOT in sudoers").3,
            "     tsg : user NOT in sudoers"
        );
    }

    #[test]
    fn tag_with_colons_inside_and_pid_without_colon() {
        assert_eq!(
            parts(" h pam_unix(sudo-i:session): session opened"),
            (
                Some("h"),
                Some("pam_unix(sudo-i:session)"),
                None,
                "session opened"
            )
        );
        assert_eq!(
            parts(" mac com.apple.xpc.launchd[1] (com.apple.x[12]): exited"),
            (
                Some("mac"),
                Some("com.apple.xpc.launchd"),
                Some("1"),
                "(com.apple.x[12]): exited"
            )
        );
    }

    #[test]
    fn no_tag_means_all_message() {
        assert_eq!(
            parts(" greedy multiline"),
            (Some("greedy"), None, None, "multiline")
        );
        assert_eq!(
            parts(" kernel-host [12.5] oops"),
            (Some("kernel-host"), None, None, "[12.5] oops")
        );
        assert_eq!(parts(" host"), (Some("host"), None, None, ""));
        assert_eq!(parts(""), (None, None, None, ""));
    }

    #[test]
    fn no_host_when_the_first_word_is_a_tag() {
        assert_eq!(
            parts(" sshd[3402]: Accepted"),
            (None, Some("sshd"), Some("3402"), "Accepted")
        );
        assert_eq!(parts(" su: ok"), (None, Some("su"), None, "ok"));
    }

    #[test]
    fn repeated_marker_has_no_host() {
        assert_eq!(
            parts(" --- last message repeated 1 time ---"),
            (None, None, None, "--- last message repeated 1 time ---")
        );
    }

    #[test]
    fn header_ending_at_the_first_line_end() {
        assert_eq!(
            parts(" host app:\n\tcontinued"),
            (Some("host"), Some("app"), None, "\tcontinued")
        );
    }
}

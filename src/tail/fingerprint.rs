//! File identity: device and inode, plus a hash of the file's head so that an inode the
//! kernel hands to a new file is not mistaken for the file that had it before.
//!
//! The head is the first line (with its newline) or the first [`HEAD_BYTES`] bytes,
//! whichever is shorter, as Vector's `checksum` fingerprint with `lines = 1` does. A file
//! with neither yet has no fingerprint: it holds no complete line, so there is nothing to
//! read or checkpoint until it has one, and an append-only file's head never changes after.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::pipeline::FileId;

/// How many leading bytes at most identify a file.
pub const HEAD_BYTES: usize = 256;

/// The fingerprint of an open file, or `None` while its head is incomplete.
pub fn read_fingerprint(file: &File) -> io::Result<Option<u64>> {
    let mut head = [0u8; HEAD_BYTES];
    let mut filled = 0;
    while filled < HEAD_BYTES {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(head_fingerprint(head.get(..filled).unwrap_or(&[])))
}

/// The fingerprint of a file's first bytes, or `None` if they hold neither a newline nor
/// [`HEAD_BYTES`] bytes.
pub fn head_fingerprint(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(HEAD_BYTES)];
    let used = match memchr::memchr(b'\n', head) {
        Some(nl) => &head[..=nl],
        None if head.len() == HEAD_BYTES => head,
        None => return None,
    };
    Some(fnv1a(used))
}

/// The identity of a file from its metadata and fingerprint.
pub fn file_id(meta: &Metadata, fingerprint: u64) -> FileId {
    FileId {
        dev: meta.dev(),
        inode: meta.ino(),
        fingerprint,
    }
}

/// FNV-1a: tiny and, unlike std's hasher, guaranteed stable across releases, which the
/// checkpoint file needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_head_without_newline_has_no_fingerprint_yet() {
        assert_eq!(head_fingerprint(b""), None);
        assert_eq!(head_fingerprint(b"partial line"), None);
    }

    #[test]
    fn fingerprint_is_stable_as_the_file_grows() {
        let a = head_fingerprint(b"first line\n").unwrap();
        let b = head_fingerprint(b"first line\nsecond line\n").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, head_fingerprint(b"other line\n").unwrap());
    }

    #[test]
    fn long_first_line_uses_the_first_head_bytes() {
        let mut long = vec![b'x'; HEAD_BYTES];
        let a = head_fingerprint(&long).unwrap();
        long.extend_from_slice(b"more\n");
        assert_eq!(head_fingerprint(&long), Some(a));
    }

    #[test]
    fn known_value_never_changes() {
        // Checkpoint files written by earlier versions depend on this exact function.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

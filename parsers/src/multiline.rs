//! Groups lines into entries before parsing (PostgreSQL continuation and DETAIL lines,
//! syslog TAB-indented continuations, CSV fields with embedded newlines).

use crate::Parser;

/// One complete entry and where it lies in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's lines joined by `\n`, without trailing `\r`.
    pub bytes: Vec<u8>,
    /// Byte offset of the entry's first line.
    pub start: u64,
    /// Byte offset just past the newline of the entry's last line: where reading resumes.
    pub end: u64,
    /// The entry was cut at the size cap.
    pub truncated: bool,
}

/// One complete entry, borrowed from the line or from the assembler: what
/// [`Assembler::push_ref`] hands out without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The entry's lines joined by `\n`, without trailing `\r`.
    pub bytes: &'a [u8],
    /// Byte offset of the entry's first line.
    pub start: u64,
    /// Byte offset just past the newline of the entry's last line: where reading resumes.
    pub end: u64,
    /// The entry was cut at the size cap.
    pub truncated: bool,
}

impl EntryRef<'_> {
    /// The entry, owned.
    pub fn to_entry(&self) -> Entry {
        Entry {
            bytes: self.bytes.to_vec(),
            start: self.start,
            end: self.end,
            truncated: self.truncated,
        }
    }
}

/// Puts lines together into entries for one file. Owns at most one pending entry.
#[derive(Debug)]
pub struct Assembler {
    pending: Option<Entry>,
    /// The last entry [`Assembler::push_ref`] completed; its buffer is reused for the
    /// next pending entry, so a steady stream of entries allocates nothing.
    done: Vec<u8>,
    max_bytes: usize,
}

impl Assembler {
    /// `max_bytes` caps an assembled entry; what is beyond is dropped and the entry flagged.
    pub fn new(max_bytes: usize) -> Self {
        Assembler {
            pending: None,
            done: Vec::new(),
            max_bytes,
        }
    }

    /// Feeds one line (no newline; a trailing `\r` is removed) spanning `start..end` in the
    /// file. Returns the entry this line completed, if any: an entry is complete once a line
    /// arrives that does not continue it.
    pub fn push(
        &mut self,
        parser: &dyn Parser,
        line: &[u8],
        start: u64,
        end: u64,
    ) -> Option<Entry> {
        let line = crate::record::strip_cr(line);
        if self.continue_pending(parser, line, end) {
            return None;
        }
        let truncated = line.len() > self.max_bytes;
        let entry = Entry {
            bytes: line[..line.len().min(self.max_bytes)].to_vec(),
            start,
            end,
            truncated,
        };
        if parser.is_multiline() {
            self.pending.replace(entry)
        } else {
            Some(entry)
        }
    }

    /// Adds `line` to the pending entry when it continues it (cut at `max_bytes`, the
    /// entry then flagged truncated); false when there is none or the line starts a new one.
    fn continue_pending(&mut self, parser: &dyn Parser, line: &[u8], end: u64) -> bool {
        let Some(pending) = &mut self.pending else {
            return false;
        };
        if !parser.continues(&pending.bytes, line) {
            return false;
        }
        let room = self.max_bytes.saturating_sub(pending.bytes.len());
        if room > line.len() {
            pending.bytes.push(b'\n');
            pending.bytes.extend_from_slice(line);
        } else {
            pending.truncated = true;
        }
        pending.end = end;
        true
    }

    /// As [`Assembler::push`], without copying: a single-line format's entry is the line
    /// itself, and a multi-line format's completed entry is lent from the assembler until
    /// the next call, its buffer then reused.
    pub fn push_ref<'a>(
        &'a mut self,
        parser: &dyn Parser,
        line: &'a [u8],
        start: u64,
        end: u64,
    ) -> Option<EntryRef<'a>> {
        let line = crate::record::strip_cr(line);
        if !parser.is_multiline() && self.pending.is_none() {
            let truncated = line.len() > self.max_bytes;
            return Some(EntryRef {
                bytes: &line[..line.len().min(self.max_bytes)],
                start,
                end,
                truncated,
            });
        }
        if self.continue_pending(parser, line, end) {
            return None;
        }
        let mut buffer = std::mem::take(&mut self.done);
        buffer.clear();
        buffer.extend_from_slice(&line[..line.len().min(self.max_bytes)]);
        let entry = Entry {
            bytes: buffer,
            start,
            end,
            truncated: line.len() > self.max_bytes,
        };
        let completed = if parser.is_multiline() {
            self.pending.replace(entry)
        } else {
            Some(entry)
        }?;
        self.done = completed.bytes;
        Some(EntryRef {
            bytes: &self.done,
            start: completed.start,
            end: completed.end,
            truncated: completed.truncated,
        })
    }

    /// Takes the pending entry (quiet file, flush timeout, end of input).
    pub fn flush(&mut self) -> Option<Entry> {
        self.pending.take()
    }

    /// Offset of the first byte not yet in a completed entry: a checkpoint never passes it.
    pub fn pending_start(&self) -> Option<u64> {
        self.pending.as_ref().map(|e| e.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, FormatSpec};

    /// Feeds `lines` through both `push` and `push_ref`; they must give the same entries.
    fn both(format: Format, lines: &[&str], max: usize) -> Vec<Entry> {
        let parser = FormatSpec {
            timezone: Some("UTC".into()),
            ..FormatSpec::new(format)
        }
        .build()
        .unwrap();
        let (mut owned, mut lent) = (Assembler::new(max), Assembler::new(max));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for line in lines {
            let end = offset + line.len() as u64 + 1;
            a.extend(owned.push(&*parser, line.as_bytes(), offset, end));
            b.extend(
                lent.push_ref(&*parser, line.as_bytes(), offset, end)
                    .map(|e| e.to_entry()),
            );
            offset = end;
        }
        a.extend(owned.flush());
        b.extend(lent.flush());
        assert_eq!(a, b);
        a
    }

    #[test]
    fn lent_entries_are_the_owned_ones() {
        let syslog = [
            "Mar  9 22:00:00 web-01 app[1]: one\r",
            "\tcontinued",
            " and again",
            "Mar  9 22:00:01 web-01 app[1]: two",
            "Mar  9 22:00:02 web-01 app[1]: three",
        ];
        let entries = both(Format::Syslog, &syslog, 1 << 20);
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].bytes,
            b"Mar  9 22:00:00 web-01 app[1]: one\n\tcontinued\n and again"
        );
        let cut = both(Format::Syslog, &syslog, 40);
        assert!(cut[0].truncated && !cut[1].truncated);
        let nginx = ["a\r", "b", "", "a much longer line than the cap"];
        let entries = both(Format::Nginx, &nginx, 10);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].bytes, b"a");
        assert!(entries[3].truncated);
        assert_eq!(entries[3].bytes, b"a much lon");
    }
}

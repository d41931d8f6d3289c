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

/// Puts lines together into entries for one file. Owns at most one pending entry.
#[derive(Debug)]
pub struct Assembler {
    pending: Option<Entry>,
    max_bytes: usize,
}

impl Assembler {
    /// `max_bytes` caps an assembled entry; what is beyond is dropped and the entry flagged.
    pub fn new(max_bytes: usize) -> Self {
        Assembler {
            pending: None,
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
        if let Some(pending) = &mut self.pending {
            if parser.continues(&pending.bytes, line) {
                let room = self.max_bytes.saturating_sub(pending.bytes.len());
                if room > line.len() {
                    pending.bytes.push(b'\n');
                    pending.bytes.extend_from_slice(line);
                } else {
                    pending.truncated = true;
                }
                pending.end = end;
                return None;
            }
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

    /// Takes the pending entry (quiet file, flush timeout, end of input).
    pub fn flush(&mut self) -> Option<Entry> {
        self.pending.take()
    }

    /// Offset of the first byte not yet in a completed entry: a checkpoint never passes it.
    pub fn pending_start(&self) -> Option<u64> {
        self.pending.as_ref().map(|e| e.start)
    }
}

//! Line splitting for the file source: `\n`, `\r\n` and a lone `\r` end a line; an
//! unterminated last line (and a `\r` that may still be followed by `\n`) waits for more
//! data. Positions are byte offsets in the file.

/// Accumulates file bytes and hands out complete lines with the position just after each.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    start: usize,
    /// File position of `buf[0]`.
    base: u64,
}

impl LineSplitter {
    /// A splitter whose first byte will be at file position `position`.
    pub fn new(position: u64) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            base: position,
        }
    }

    /// Appends bytes read from the file.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.base += self.start as u64;
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.base += self.start as u64;
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete line (without its terminator) and the file position after its
    /// terminator, or `None` until more data arrives.
    pub fn next_line(&mut self) -> Option<(&[u8], u64)> {
        let rest = &self.buf[self.start..];
        let i = memchr::memchr2(b'\n', b'\r', rest)?;
        let end = if rest[i] == b'\r' {
            match rest.get(i + 1) {
                None => return None,
                Some(b'\n') => i + 2,
                Some(_) => i + 1,
            }
        } else {
            i + 1
        };
        let from = self.start;
        self.start += end;
        Some((&self.buf[from..from + i], self.base + self.start as u64))
    }

    /// The position after the last line handed out.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Bytes held back (a partial last line).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut LineSplitter) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        while let Some((l, p)) = s.next_line() {
            out.push((String::from_utf8(l.to_vec()).unwrap(), p));
        }
        out
    }

    #[test]
    fn every_terminator_and_byte_positions() {
        let mut s = LineSplitter::new(0);
        s.push("a\nbé\r\nc\rd".as_bytes());
        assert_eq!(
            drain(&mut s),
            vec![("a".into(), 2), ("bé".into(), 7), ("c".into(), 9)]
        );
        assert_eq!(s.position(), 9);
        assert_eq!(s.pending(), 1);
        s.push(b"\n");
        assert_eq!(drain(&mut s), vec![("d".into(), 11)]);
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let mut s = LineSplitter::new(100);
        s.push(b"hel");
        assert!(s.next_line().is_none());
        s.push(b"lo");
        assert!(s.next_line().is_none());
        s.push(b"\nx");
        assert_eq!(drain(&mut s), vec![("hello".into(), 106)]);
        assert_eq!(s.position(), 106);
    }

    #[test]
    fn carriage_return_at_the_end_waits_to_see_a_line_feed() {
        let mut s = LineSplitter::new(0);
        s.push(b"a\r");
        assert!(s.next_line().is_none());
        s.push(b"\n");
        assert_eq!(drain(&mut s), vec![("a".into(), 3)]);
        assert!(s.next_line().is_none(), "no empty line from a split CRLF");
    }

    #[test]
    fn empty_lines_and_compaction() {
        let mut s = LineSplitter::new(0);
        let mut expect = 0u64;
        for _ in 0..50_000 {
            s.push(b"0123456789\n\n");
            expect += 12;
            let got = drain(&mut s);
            assert_eq!(got.len(), 2);
            assert_eq!(got[1], (String::new(), expect));
        }
        assert_eq!(s.position(), expect);
    }
}

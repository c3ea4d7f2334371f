//! Write-ahead log records: framing, checksums, encoding and decoding.
//!
//! Every record is framed as `[length u32 LE][crc32c u32 LE][body]`, where the CRC-32C
//! covers the body and `length` is the body's length. The body starts with a type byte and
//! the transaction id (`u64 LE`):
//!
//! | type | payload |
//! |---|---|
//! | `1` put | header count `u32`, each `key len u32, key, value len u32, value`, body len `u32`, body |
//! | `2` take | the [`Pointer`] of the put it takes (`u64`) |
//! | `3` commit | – |
//! | `4` rollback | – |
//! | `5` committed takes | count `u32`, then the [`Pointer`] (`u64`) of each put it takes |
//!
//! A take transaction is written as one type-5 record (its checksum makes it all or
//! nothing, so it needs no commit record); type `2` take records (with a commit record) are
//! still read. A put transaction is its put records followed by a commit record; a put's
//! [`Pointer`] is the offset of its frame, so replay can read any put directly.
//!
//! A reader that finds a frame whose length runs past the end of the data, a zero length,
//! or a checksum that does not match stops there: that is a torn (partly written) tail.

use bytes::Bytes;

use crate::event::{Event, Headers};

/// Magic bytes at the start of every log file.
pub const FILE_MAGIC: &[u8; 8] = b"FLMWAL01";
/// Size of a record's frame header (length + CRC).
pub const FRAME_HEADER: usize = 8;
/// Largest record body accepted by the decoder (guards against garbage lengths).
pub const MAX_RECORD: usize = 1 << 30;

const PUT: u8 = 1;
const TAKE: u8 = 2;
const COMMIT: u8 = 3;
const ROLLBACK: u8 = 4;
const TAKES: u8 = 5;

/// Where a put record lives: log file id in the high 32 bits, byte offset in the low 32
/// (Flume's `FlumeEventPointer`). Pointers grow with write order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pointer(pub u64);

impl Pointer {
    /// The pointer of the record at `offset` of file `file_id`.
    pub fn new(file_id: u32, offset: u32) -> Self {
        Pointer(((file_id as u64) << 32) | offset as u64)
    }
    /// The log file id.
    pub fn file_id(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The byte offset inside the file.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An event put by transaction `tx`.
    Put {
        /// Transaction id.
        tx: u64,
        /// The event.
        event: Event,
    },
    /// Transaction `tx` took the event put at `target`.
    Take {
        /// Transaction id.
        tx: u64,
        /// The put record taken.
        target: Pointer,
    },
    /// Transaction `tx` committed.
    Commit {
        /// Transaction id.
        tx: u64,
    },
    /// Transaction `tx` rolled back.
    Rollback {
        /// Transaction id.
        tx: u64,
    },
    /// Transaction `tx` took the events put at `targets` and committed.
    Takes {
        /// Transaction id.
        tx: u64,
        /// The put records taken.
        targets: Vec<Pointer>,
    },
}

fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    body(out);
    seal(out, start);
}

/// Fills in the header of the frame that starts at `start` and runs to the end of `out`:
/// its body's length and checksum.
fn seal(out: &mut [u8], start: usize) {
    let len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a put record of `event` to `out` (one reservation; the frame header's space,
/// type, transaction and header count go in as one piece).
pub fn encode_put(out: &mut Vec<u8>, tx: u64, event: &Event) {
    let headers: usize = event
        .headers
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum();
    let len = 1 + 8 + 4 + headers + 4 + event.body.len();
    out.reserve(FRAME_HEADER + len);
    let start = out.len();
    let mut head = [0u8; FRAME_HEADER + 13];
    head[8] = PUT;
    head[9..17].copy_from_slice(&tx.to_le_bytes());
    head[17..21].copy_from_slice(&(event.headers.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    for (k, v) in &event.headers {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&(event.body.len() as u32).to_le_bytes());
    out.extend_from_slice(&event.body);
    seal(out, start);
}

/// Appends a take record to `out`.
pub fn encode_take(out: &mut Vec<u8>, tx: u64, target: Pointer) {
    frame(out, |b| {
        b.push(TAKE);
        b.extend_from_slice(&tx.to_le_bytes());
        b.extend_from_slice(&target.0.to_le_bytes());
    });
}

/// Appends one committed take record for all of `targets` to `out`.
pub fn encode_takes(out: &mut Vec<u8>, tx: u64, targets: &[Pointer]) {
    frame(out, |b| {
        b.reserve(13 + targets.len() * 8);
        b.push(TAKES);
        b.extend_from_slice(&tx.to_le_bytes());
        b.extend_from_slice(&(targets.len() as u32).to_le_bytes());
        for t in targets {
            b.extend_from_slice(&t.0.to_le_bytes());
        }
    });
}

/// Appends a commit record to `out`.
pub fn encode_commit(out: &mut Vec<u8>, tx: u64) {
    frame(out, |b| {
        b.push(COMMIT);
        b.extend_from_slice(&tx.to_le_bytes());
    });
}

/// Appends a rollback record to `out`.
pub fn encode_rollback(out: &mut Vec<u8>, tx: u64) {
    frame(out, |b| {
        b.push(ROLLBACK);
        b.extend_from_slice(&tx.to_le_bytes());
    });
}

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The data ended exactly at a record boundary.
    End,
    /// A frame is incomplete, has a zero or absurd length, or fails its checksum.
    Torn,
}

/// Decodes the record at the start of `buf`: the record and the bytes it used, or why none.
/// `data` is the shared buffer `buf` is a slice of, so event bodies are not copied.
pub fn decode(data: &Bytes, at: usize) -> Result<(Record, usize), Stop> {
    let buf = &data[at..];
    if buf.is_empty() {
        return Err(Stop::End);
    }
    if buf.len() < FRAME_HEADER {
        return Err(Stop::Torn);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    if !(9..=MAX_RECORD).contains(&len) || buf.len() - FRAME_HEADER < len {
        return Err(Stop::Torn);
    }
    let body = &buf[FRAME_HEADER..FRAME_HEADER + len];
    if crc32c::crc32c(body) != crc {
        return Err(Stop::Torn);
    }
    let body_at = at + FRAME_HEADER;
    let rec = parse_body(data, body_at, body_at + len).ok_or(Stop::Torn)?;
    Ok((rec, FRAME_HEADER + len))
}

/// A record's kind and transaction without its event (replay's first pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    /// A put by transaction `tx`.
    Put(u64),
    /// Transaction `tx` took the put at the pointer.
    Take(u64, Pointer),
    /// Transaction `tx` committed.
    Commit(u64),
    /// Transaction `tx` rolled back.
    Rollback(u64),
    /// Transaction `tx` took these puts and committed.
    Takes(u64, Vec<Pointer>),
}

/// Checks the frame at the start of `buf` (length and checksum) and reads its kind and
/// transaction, without decoding an event: the meta data and the frame's length.
pub fn check(buf: &[u8]) -> Result<(Meta, usize), Stop> {
    if buf.is_empty() {
        return Err(Stop::End);
    }
    if buf.len() < FRAME_HEADER {
        return Err(Stop::Torn);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    if !(9..=MAX_RECORD).contains(&len) || buf.len() - FRAME_HEADER < len {
        return Err(Stop::Torn);
    }
    let body = &buf[FRAME_HEADER..FRAME_HEADER + len];
    if crc32c::crc32c(body) != crc {
        return Err(Stop::Torn);
    }
    let u64_at = |i: usize| {
        body.get(i..i + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let tx = u64_at(1).ok_or(Stop::Torn)?;
    let meta = match body[0] {
        PUT => Meta::Put(tx),
        TAKE if len == 17 => Meta::Take(tx, Pointer(u64_at(9).ok_or(Stop::Torn)?)),
        COMMIT if len == 9 => Meta::Commit(tx),
        ROLLBACK if len == 9 => Meta::Rollback(tx),
        TAKES => {
            let n = body
                .get(9..13)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
                .ok_or(Stop::Torn)?;
            if len != 13 + n * 8 {
                return Err(Stop::Torn);
            }
            Meta::Takes(
                tx,
                (0..n)
                    .map(|i| u64_at(13 + i * 8).map(Pointer).ok_or(Stop::Torn))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => return Err(Stop::Torn),
    };
    Ok((meta, FRAME_HEADER + len))
}

fn parse_body(data: &Bytes, start: usize, end: usize) -> Option<Record> {
    let mut r = Reader {
        data,
        pos: start,
        end,
    };
    let kind = r.u8()?;
    let tx = r.u64()?;
    let rec = match kind {
        PUT => {
            let n = r.u32()? as usize;
            let mut headers = Headers::new();
            for _ in 0..n {
                let k = r.string()?;
                let v = r.string()?;
                headers.insert(k, v);
            }
            let blen = r.u32()? as usize;
            let body = r.bytes(blen)?;
            Record::Put {
                tx,
                event: Event { headers, body },
            }
        }
        TAKE => Record::Take {
            tx,
            target: Pointer(r.u64()?),
        },
        COMMIT => Record::Commit { tx },
        ROLLBACK => Record::Rollback { tx },
        TAKES => {
            let n = r.u32()? as usize;
            let mut targets = Vec::with_capacity(n.min(end - start));
            for _ in 0..n {
                targets.push(Pointer(r.u64()?));
            }
            Record::Takes { tx, targets }
        }
        _ => return None,
    };
    (r.pos == end).then_some(rec)
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
    end: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.end - self.pos < n {
            return None;
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn bytes(&mut self, n: usize) -> Option<Bytes> {
        if self.end - self.pos < n {
            return None;
        }
        let b = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<Record>) {
        let mut e = Event::new("hello world");
        e.headers.insert("host".into(), "h1".into());
        e.headers.insert("k".into(), String::new());
        let recs = vec![
            Record::Put {
                tx: 7,
                event: e.clone(),
            },
            Record::Put {
                tx: 7,
                event: Event::new(""),
            },
            Record::Commit { tx: 7 },
            Record::Take {
                tx: 8,
                target: Pointer::new(3, 1234),
            },
            Record::Rollback { tx: 8 },
            Record::Takes {
                tx: 9,
                targets: vec![Pointer::new(3, 8), Pointer::new(4, 16)],
            },
        ];
        let mut out = Vec::new();
        for r in &recs {
            match r {
                Record::Put { tx, event } => encode_put(&mut out, *tx, event),
                Record::Take { tx, target } => encode_take(&mut out, *tx, *target),
                Record::Commit { tx } => encode_commit(&mut out, *tx),
                Record::Rollback { tx } => encode_rollback(&mut out, *tx),
                Record::Takes { tx, targets } => encode_takes(&mut out, *tx, targets),
            }
        }
        (out, recs)
    }

    fn decode_all(data: &Bytes) -> (Vec<Record>, Stop, usize) {
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            match decode(data, at) {
                Ok((r, n)) => {
                    out.push(r);
                    at += n;
                }
                Err(s) => return (out, s, at),
            }
        }
    }

    #[test]
    fn round_trip() {
        let (buf, recs) = sample();
        let (got, stop, at) = decode_all(&Bytes::from(buf.clone()));
        assert_eq!(got, recs);
        assert_eq!(stop, Stop::End);
        assert_eq!(at, buf.len());
        let p = Pointer::new(3, 1234);
        assert_eq!((p.file_id(), p.offset()), (3, 1234));
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let (buf, recs) = sample();
        let (_, _, last_start) = {
            let mut no_last = Vec::new();
            for r in &recs[..recs.len() - 1] {
                if let Record::Put { tx, event } = r {
                    encode_put(&mut no_last, *tx, event)
                } else if let Record::Commit { tx } = r {
                    encode_commit(&mut no_last, *tx)
                } else if let Record::Take { tx, target } = r {
                    encode_take(&mut no_last, *tx, *target)
                } else if let Record::Rollback { tx } = r {
                    encode_rollback(&mut no_last, *tx)
                }
            }
            decode_all(&Bytes::from(no_last))
        };
        for cut in last_start..buf.len() {
            let (got, stop, at) = decode_all(&Bytes::copy_from_slice(&buf[..cut]));
            assert_eq!(got, recs[..recs.len() - 1], "cut at {cut}");
            assert_eq!(at, last_start);
            let expect = if cut == last_start {
                Stop::End
            } else {
                Stop::Torn
            };
            assert_eq!(stop, expect, "cut at {cut}");
        }
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let (buf, recs) = sample();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let (got, _, _) = decode_all(&Bytes::from(bad));
            assert!(got.len() < recs.len(), "flip at {i} went unnoticed");
            assert_eq!(got[..], recs[..got.len()]);
        }
    }

    #[test]
    fn check_agrees_with_decode() {
        let (buf, recs) = sample();
        let mut at = 0;
        for r in &recs {
            let (meta, n) = check(&buf[at..]).unwrap();
            let want = match r {
                Record::Put { tx, .. } => Meta::Put(*tx),
                Record::Take { tx, target } => Meta::Take(*tx, *target),
                Record::Commit { tx } => Meta::Commit(*tx),
                Record::Rollback { tx } => Meta::Rollback(*tx),
                Record::Takes { tx, targets } => Meta::Takes(*tx, targets.clone()),
            };
            assert_eq!(meta, want);
            at += n;
        }
        assert_eq!(check(&buf[at..]), Err(Stop::End));
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let mut at = 0;
            let mut ok = 0;
            while let Ok((_, n)) = check(&bad[at..]) {
                at += n;
                ok += 1;
            }
            assert!(ok < recs.len(), "flip at {i} went unnoticed");
        }
    }
}

//! Magic-2 record batch headers: parsing, validation and the broker-owned field rewrites.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12,
//! magic i8 @16, crc u32 @17 (CRC-32C of bytes 21..end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57, records @61.

use crate::error::LogError;

/// Bytes before `batchLength` counts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of a magic-2 batch header.
pub const HEADER_LEN: usize = 61;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;
/// Attribute bit 3: the batch's timestamps are LogAppendTime.
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The fields of a batch header the engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// baseOffset.
    pub base_offset: i64,
    /// Whole batch size in bytes, log overhead included (`batchLength + 12`).
    pub size: usize,
    /// magic byte.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// attributes.
    pub attributes: i16,
    /// lastOffsetDelta.
    pub last_offset_delta: i32,
    /// baseTimestamp.
    pub base_timestamp: i64,
    /// maxTimestamp.
    pub max_timestamp: i64,
    /// recordsCount.
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the size of the batch starting at `buf` from its first 12 bytes.
    /// `None` if fewer than 12 bytes or the length field is negative.
    pub fn peek_size(buf: &[u8]) -> Option<usize> {
        if buf.len() < LOG_OVERHEAD {
            return None;
        }
        let len = i32_at(buf, 8);
        (len >= 0).then(|| len as usize + LOG_OVERHEAD)
    }

    /// Parses a header from at least [`HEADER_LEN`] bytes (no validation).
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        let size = BatchHeader::peek_size(buf)?;
        Some(BatchHeader {
            base_offset: i64_at(buf, 0),
            size,
            magic: buf[MAGIC_AT] as i8,
            crc: u32::from_be_bytes(buf[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes")),
            attributes: i16_at(buf, ATTRIBUTES_AT),
            last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: i64_at(buf, BASE_TIMESTAMP_AT),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP_AT),
            records_count: i32_at(buf, RECORDS_COUNT_AT),
        })
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x7) as u8
    }

    /// Whether the batch carries LogAppendTime timestamps.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
}

/// Checks one whole batch (`buf` is exactly the batch): length, magic, size limit, CRC-32C,
/// record count against lastOffsetDelta, and for uncompressed batches the record framing.
pub fn validate(buf: &[u8], max_message_bytes: Option<u32>) -> Result<BatchHeader, LogError> {
    if buf.len() > MAGIC_AT {
        let magic = buf[MAGIC_AT] as i8;
        if magic != 2 {
            return Err(LogError::UnsupportedMagic { magic });
        }
    }
    let header = BatchHeader::parse(buf).ok_or_else(|| {
        LogError::corrupt(format!(
            "batch of {} bytes is shorter than the {HEADER_LEN}-byte header",
            buf.len()
        ))
    })?;
    if header.size != buf.len() {
        return Err(LogError::corrupt(format!(
            "batchLength says {} bytes but {} are present",
            header.size,
            buf.len()
        )));
    }
    if let Some(limit) = max_message_bytes {
        if header.size > limit as usize {
            return Err(LogError::RecordTooLarge {
                size: header.size,
                limit,
            });
        }
    }
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
    if crc != header.crc {
        return Err(LogError::corrupt(format!(
            "CRC-32C mismatch at base offset {}: stored {:#010x}, computed {crc:#010x}",
            header.base_offset, header.crc
        )));
    }
    if header.records_count < 1 || header.last_offset_delta != header.records_count - 1 {
        return Err(LogError::corrupt(format!(
            "recordsCount {} does not match lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.compression() == 0 {
        let mut count = 0i32;
        for record in Records::new(&header, buf) {
            let record = record?;
            if record.offset_delta != count {
                return Err(LogError::corrupt(format!(
                    "record {count} has offsetDelta {}",
                    record.offset_delta
                )));
            }
            count += 1;
        }
        if count != header.records_count {
            return Err(LogError::corrupt(format!(
                "recordsCount says {} but the batch holds {count} records",
                header.records_count
            )));
        }
    }
    Ok(header)
}

/// Overwrites baseOffset (outside the CRC range, so the CRC stays valid).
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    buf[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps LogAppendTime: sets attribute bit 3 and maxTimestamp, then recomputes the CRC
/// (both fields lie inside the CRC range).
pub fn set_log_append_time(buf: &mut [u8], now: i64) {
    let attributes = i16_at(buf, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Checks the CRC of a whole batch already known to be `header.size` bytes.
pub fn crc_ok(header: &BatchHeader, buf: &[u8]) -> bool {
    buf.len() == header.size && crc32c::crc32c(&buf[ATTRIBUTES_AT..]) == header.crc
}

/// The fields of one record of an uncompressed batch that the engine looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// Absolute timestamp (baseTimestamp + timestampDelta).
    pub timestamp: i64,
    /// offsetDelta.
    pub offset_delta: i32,
}

/// Iterates the records of an uncompressed batch, reading only their framing.
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    base_timestamp: i64,
    failed: bool,
}

impl<'a> Records<'a> {
    /// Iterates `buf` (a whole uncompressed batch).
    pub fn new(header: &BatchHeader, buf: &'a [u8]) -> Records<'a> {
        Records {
            buf,
            pos: HEADER_LEN,
            base_timestamp: header.base_timestamp,
            failed: false,
        }
    }
}

fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

impl Iterator for Records<'_> {
    type Item = Result<RecordMeta, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let bad = |what: &str| LogError::corrupt(format!("malformed record: {what}"));
        let mut pos = self.pos;
        let result = (|| {
            let len = read_varlong(self.buf, &mut pos).ok_or_else(|| bad("length"))?;
            let start = pos;
            if len < 3 || start as i64 + len > self.buf.len() as i64 {
                return Err(bad("length runs past the batch"));
            }
            let end = start + len as usize;
            pos += 1; // attributes
            let ts_delta =
                read_varlong(&self.buf[..end], &mut pos).ok_or_else(|| bad("timestampDelta"))?;
            let offset_delta =
                read_varlong(&self.buf[..end], &mut pos).ok_or_else(|| bad("offsetDelta"))?;
            Ok((
                end,
                RecordMeta {
                    timestamp: self.base_timestamp.wrapping_add(ts_delta),
                    offset_delta: offset_delta as i32,
                },
            ))
        })();
        match result {
            Ok((end, meta)) => {
                self.pos = end;
                Some(Ok(meta))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Builds a valid uncompressed magic-2 batch (for tests and benchmarks): `records` values
/// with no key and no headers, timestamps `base_timestamp + i`.
pub fn build_batch(base_timestamp: i64, values: &[&[u8]]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    let mut records = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        varint(&mut body, i as i64); // timestampDelta
        varint(&mut body, i as i64); // offsetDelta
        varint(&mut body, -1); // key = null
        varint(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        varint(&mut body, 0); // headers
        varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let n = values.len() as i64;
    let mut b = Vec::with_capacity(HEADER_LEN + records.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&((n - 1) as i32).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&(base_timestamp + (n - 1).max(0)).to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(n as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates() {
        let b = build_batch(1000, &[b"a", b"bb", b"ccc"]);
        let h = validate(&b, Some(1_048_588)).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 1002);
        let ts: Vec<i64> = Records::new(&h, &b).map(|r| r.unwrap().timestamp).collect();
        assert_eq!(ts, vec![1000, 1001, 1002]);
    }

    #[test]
    fn rejects_bad_crc_magic_size_and_count() {
        let b = build_batch(0, &[b"hello"]);
        let mut bad = b.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            validate(&bad, None),
            Err(LogError::CorruptBatch { .. })
        ));
        let mut legacy = b.clone();
        legacy[16] = 1;
        assert!(matches!(
            validate(&legacy, None),
            Err(LogError::UnsupportedMagic { magic: 1 })
        ));
        match validate(&b, Some(10)) {
            Err(LogError::RecordTooLarge { size, limit }) => {
                assert_eq!((size, limit), (b.len(), 10))
            }
            other => panic!("{other:?}"),
        }
        let mut count = b.clone();
        count[57..61].copy_from_slice(&2i32.to_be_bytes());
        let crc = crc32c::crc32c(&count[21..]);
        count[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate(&count, None),
            Err(LogError::CorruptBatch { .. })
        ));
        assert!(matches!(
            validate(&b[..b.len() - 1], None),
            Err(LogError::CorruptBatch { .. })
        ));
    }

    #[test]
    fn log_append_time_keeps_crc_valid() {
        let mut b = build_batch(5, &[b"x", b"y"]);
        set_base_offset(&mut b, 42);
        set_log_append_time(&mut b, 777);
        let h = validate(&b, None).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.max_timestamp, 777);
        assert!(h.is_log_append_time());
    }
}

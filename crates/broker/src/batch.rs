//! Reading the fixed header of magic-2 record batches without decoding the records (the
//! storage engine validates CRC and lengths; the broker only needs producer fields).
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12,
//! magic i8 @16, crc u32 @17, attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64
//! @27, maxTimestamp i64 @35, producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordsCount i32 @57, records @61.

/// Size of a batch header.
pub const HEADER_LEN: usize = 61;

/// The broker-relevant fields of one batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Base offset as stored (the producer sends 0).
    pub base_offset: i64,
    /// Total size of the batch in bytes (12 + batchLength).
    pub size: usize,
    /// Magic byte.
    pub magic: i8,
    /// Attributes.
    pub attributes: i16,
    /// Last offset delta.
    pub last_offset_delta: i32,
    /// Producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Base sequence.
    pub base_sequence: i32,
    /// Record count.
    pub records_count: i32,
}

impl BatchHeader {
    /// Whether the transactional bit is set.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    /// Whether the control bit is set.
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Compression codec (0 none … 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    /// Last sequence number, wrapping at i32::MAX as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Parses the header of the batch at the start of `buf`; `None` if `buf` is too short or the
/// length field is inconsistent.
pub fn parse_header(buf: &[u8]) -> Option<BatchHeader> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let batch_length = i32_at(buf, 8);
    if batch_length < (HEADER_LEN - 12) as i32 {
        return None;
    }
    let size = 12 + batch_length as usize;
    Some(BatchHeader {
        base_offset: i64_at(buf, 0),
        size,
        magic: buf[16] as i8,
        attributes: i16_at(buf, 21),
        last_offset_delta: i32_at(buf, 23),
        producer_id: i64_at(buf, 43),
        producer_epoch: i16_at(buf, 51),
        base_sequence: i32_at(buf, 53),
        records_count: i32_at(buf, 57),
    })
}

/// Iterates over the headers of the whole batches in `buf` (stops at a partial batch).
pub fn headers(buf: &[u8]) -> impl Iterator<Item = BatchHeader> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let h = parse_header(buf.get(pos..)?)?;
        if pos + h.size > buf.len() {
            return None;
        }
        pos += h.size;
        Some(h)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal uncompressed batch with `count` empty records (valid CRC-less header
    /// for parsing tests; not CRC-correct).
    pub fn fake_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[8..12].copy_from_slice(&((HEADER_LEN - 12) as i32).to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        b
    }

    #[test]
    fn parses_producer_fields_and_iterates() {
        let mut two = fake_batch(7, 1, 10, 5);
        two.extend(fake_batch(7, 1, 15, 1));
        let hs: Vec<_> = headers(&two).collect();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].producer_id, 7);
        assert_eq!(hs[0].last_sequence(), 14);
        assert_eq!(hs[1].base_sequence, 15);
        assert!(parse_header(&two[..10]).is_none());
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let h = parse_header(&fake_batch(1, 0, i32::MAX, 2)).unwrap();
        assert_eq!(h.last_sequence(), 0);
    }
}

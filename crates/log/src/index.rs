//! Sparse indexes of a segment, kept in memory and saved in Kafka's file format.
//!
//! `.index`: 8-byte entries (relative offset u32, file position u32), big-endian, one every
//! `index.interval.bytes` of log; an entry names the *first* offset of a batch and the batch's
//! position. `.timeindex`: 12-byte entries (timestamp i64, relative offset u32): the largest
//! timestamp seen so far and the offset of the batch holding it, appended only when it grows.
//! Both are rebuildable from the `.log`, so they are written at roll / close and checked on load.

use std::fs;
use std::io;
use std::path::Path;

use crate::types::{FilePosition, RelativeOffset, Timestamp};

/// Entries per block of the in-memory summary: a lookup binary-searches the summary (one
/// key per block, small enough to stay in cache), then one block.
const BLOCK: usize = 64;

/// Sorted keys with a summary of every [`BLOCK`]th key, for cache-friendly searches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Keys<K> {
    keys: Vec<K>,
    summary: Vec<K>,
}

impl<K: Copy + Ord> Keys<K> {
    fn push(&mut self, k: K) {
        if self.keys.len() & (BLOCK - 1) == 0 {
            self.summary.push(k);
        }
        self.keys.push(k);
    }
    /// Number of keys satisfying `pred`, where `pred` is true for a prefix.
    fn partition_point(&self, pred: impl Fn(&K) -> bool) -> usize {
        let b = self.summary.partition_point(&pred);
        if b == 0 {
            return 0;
        }
        let lo = (b - 1) * BLOCK;
        let hi = (lo + BLOCK).min(self.keys.len());
        lo + self.keys[lo..hi].partition_point(&pred)
    }
}

/// What the engine knows in memory about the batch an offset-index entry points at, so a
/// lookup that lands in that batch needs no read of the `.log`. Not part of Kafka's file
/// format: known for entries made by appends and rebuilds in this process, unknown
/// ([`BatchInfo::UNKNOWN`]) for entries loaded from an `.index` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    /// Whole batch size in bytes; 0 when unknown.
    pub size: u32,
    /// lastOffsetDelta: the batch holds offsets `entry offset ..= entry offset + last_delta`.
    pub last_delta: u32,
    /// The batch's maxTimestamp.
    pub max_timestamp: i64,
    /// The timestamp a timestamp search answers when this batch is the first one reaching
    /// the searched time, when that needs no look at its records: the maxTimestamp of a
    /// compressed or LogAppendTime batch, the record's own timestamp in a one-record
    /// uncompressed batch; [`BatchInfo::NO_ANSWER`] otherwise (the records must be read).
    pub answer_timestamp: i64,
    /// Number of batches without an index entry between the previous entry's batch and this
    /// one (`u32::MAX` when unknown).
    pub gap_batches: u32,
    /// Largest maxTimestamp of those batches (`i64::MIN` when there is none, `i64::MAX` when
    /// unknown): a timestamp search above it can skip them.
    pub gap_max_timestamp: i64,
    /// When the gap is one batch: the `answer_timestamp` of that batch (else
    /// [`BatchInfo::NO_ANSWER`]).
    pub gap_answer_timestamp: i64,
}

impl BatchInfo {
    /// An entry loaded from a file: nothing known beyond offset and position.
    pub const UNKNOWN: BatchInfo = BatchInfo {
        size: 0,
        last_delta: 0,
        max_timestamp: i64::MIN,
        answer_timestamp: i64::MIN,
        gap_batches: u32::MAX,
        gap_max_timestamp: i64::MAX,
        gap_answer_timestamp: i64::MIN,
    };
    /// Value of `answer_timestamp` when the records must be read.
    pub const NO_ANSWER: i64 = i64::MIN;

    /// Whether the batch is described (the entry was made in this process).
    pub fn is_known(&self) -> bool {
        self.size != 0
    }
}

/// One offset-index entry with what is known about its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset of the batch relative to the segment base (the batch's base offset).
    pub offset: RelativeOffset,
    /// Position of the batch in the `.log`.
    pub position: FilePosition,
    /// The batch, if known.
    pub info: BatchInfo,
}

/// The offset index of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    offsets: Keys<RelativeOffset>,
    positions: Vec<FilePosition>,
    /// Batch descriptions of entries `infos_from..` (entries loaded from a file come first
    /// and are not described, so they cost no memory here).
    infos: Vec<BatchInfo>,
    infos_from: usize,
    /// The batches appended after the last entry: how many, their largest maxTimestamp, and
    /// whether they are unknown (batches that were on disk when the index was loaded).
    trailing: (u32, i64),
    /// `answer_timestamp` of the first batch after the last entry.
    trailing_answer: i64,
    trailing_unknown: bool,
}

impl OffsetIndex {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.positions.len()
    }
    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
    /// Adds an entry (must be above the last one) whose batch is not described.
    pub fn append(&mut self, offset: RelativeOffset, position: FilePosition) {
        self.append_with(offset, position, BatchInfo::UNKNOWN);
    }
    /// Notes a batch appended without an index entry (its maxTimestamp, and the
    /// `answer_timestamp` of [`BatchInfo`]).
    pub fn note_unindexed(&mut self, max_timestamp: i64, answer_timestamp: i64) {
        self.trailing = match self.trailing {
            (0, _) => {
                self.trailing_answer = answer_timestamp;
                (1, max_timestamp)
            }
            (n, m) => (n.saturating_add(1), m.max(max_timestamp)),
        };
    }
    /// The batches after the last entry, `(count, largest maxTimestamp)`, if known (the
    /// timestamp is meaningless when the count is 0).
    pub fn trailing(&self) -> Option<(u32, i64)> {
        (!self.trailing_unknown).then_some(self.trailing)
    }
    /// Adds an entry (must be above the last one) with what is known of its batch (the gap
    /// fields are filled in from the batches noted since the last entry).
    pub fn append_with(
        &mut self,
        offset: RelativeOffset,
        position: FilePosition,
        mut info: BatchInfo,
    ) {
        if info.is_known() && !self.trailing_unknown {
            info.gap_batches = self.trailing.0;
            info.gap_max_timestamp = if self.trailing.0 == 0 {
                i64::MIN
            } else {
                self.trailing.1
            };
            info.gap_answer_timestamp = if self.trailing.0 == 1 {
                self.trailing_answer
            } else {
                BatchInfo::NO_ANSWER
            };
        }
        self.trailing = (0, i64::MIN);
        self.trailing_unknown = false;
        debug_assert!(self.last().is_none_or(|(o, p)| o < offset && p < position));
        if self.infos.is_empty() {
            self.infos_from = self.positions.len();
        }
        self.offsets.push(offset);
        self.positions.push(position);
        if info.is_known() || !self.infos.is_empty() {
            self.infos.push(info);
        }
    }
    /// Entry number `i`.
    pub fn entry(&self, i: usize) -> Option<IndexEntry> {
        Some(IndexEntry {
            offset: *self.offsets.keys.get(i)?,
            position: self.positions[i],
            info: i
                .checked_sub(self.infos_from)
                .and_then(|k| self.infos.get(k))
                .copied()
                .unwrap_or(BatchInfo::UNKNOWN),
        })
    }
    /// Number of the largest entry whose offset is `<= target`.
    pub fn lookup_entry(&self, target: RelativeOffset) -> Option<usize> {
        let i = self.offsets.partition_point(|&o| o <= target);
        i.checked_sub(1)
    }
    /// The last entry.
    pub fn last(&self) -> Option<(RelativeOffset, FilePosition)> {
        let i = self.len().checked_sub(1)?;
        Some((self.offsets.keys[i], self.positions[i]))
    }
    /// The largest entry whose offset is `<= target`.
    pub fn lookup(&self, target: RelativeOffset) -> Option<(RelativeOffset, FilePosition)> {
        let i = self.offsets.partition_point(|&o| o <= target);
        (i > 0).then(|| (self.offsets.keys[i - 1], self.positions[i - 1]))
    }
    /// Serialises in Kafka's `.index` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * 8);
        for (o, p) in self.offsets.keys.iter().zip(&self.positions) {
            out.extend_from_slice(&o.0.to_be_bytes());
            out.extend_from_slice(&p.0.to_be_bytes());
        }
        out
    }
    /// Parses and checks a `.index` file's bytes: entries strictly increasing, positions
    /// below `log_len`, offsets below `max_relative` (exclusive). `None` if invalid.
    pub fn from_bytes(bytes: &[u8], log_len: u64, max_relative: u64) -> Option<OffsetIndex> {
        if bytes.len() / 8 * 8 != bytes.len() {
            return None;
        }
        let mut index = OffsetIndex::default();
        for e in bytes.chunks_exact(8) {
            let o = u32::from_be_bytes(e[0..4].try_into().ok()?);
            let p = u32::from_be_bytes(e[4..8].try_into().ok()?);
            if (o as u64) >= max_relative || (p as u64) >= log_len {
                return None;
            }
            if let Some((lo, lp)) = index.last() {
                if o <= lo.0 || p <= lp.0 {
                    return None;
                }
            }
            index.append(RelativeOffset(o), FilePosition(p));
        }
        index.trailing_unknown = true;
        Some(index)
    }
}

/// The time index of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeIndex {
    timestamps: Keys<Timestamp>,
    offsets: Vec<RelativeOffset>,
}

impl TimeIndex {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }
    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
    /// The last entry (the segment's largest timestamp once the segment is closed).
    pub fn last(&self) -> Option<(Timestamp, RelativeOffset)> {
        let i = self.len().checked_sub(1)?;
        Some((self.timestamps.keys[i], self.offsets[i]))
    }
    /// Adds an entry if `ts` is above the last one.
    pub fn maybe_append(&mut self, ts: Timestamp, offset: RelativeOffset) {
        if ts.0 >= 0 && self.last().is_none_or(|(t, _)| ts > t) {
            let offset = offset.max(self.last().map_or(offset, |(_, o)| o));
            self.timestamps.push(ts);
            self.offsets.push(offset);
        }
    }
    /// The offset of the last entry whose timestamp is `< target`: every batch before it has
    /// a smaller max timestamp, so a search for `target` can start there.
    pub fn lookup_before(&self, target: Timestamp) -> Option<RelativeOffset> {
        let i = self.timestamps.partition_point(|&t| t < target);
        (i > 0).then(|| self.offsets[i - 1])
    }
    /// Serialises in Kafka's `.timeindex` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * 12);
        for (t, o) in self.timestamps.keys.iter().zip(&self.offsets) {
            out.extend_from_slice(&t.0.to_be_bytes());
            out.extend_from_slice(&o.0.to_be_bytes());
        }
        out
    }
    /// Parses and checks a `.timeindex` file's bytes. `None` if invalid.
    pub fn from_bytes(bytes: &[u8], max_relative: u64) -> Option<TimeIndex> {
        if bytes.len() / 12 * 12 != bytes.len() {
            return None;
        }
        let mut index = TimeIndex::default();
        for e in bytes.chunks_exact(12) {
            let t = i64::from_be_bytes(e[0..8].try_into().ok()?);
            let o = u32::from_be_bytes(e[8..12].try_into().ok()?);
            if (o as u64) >= max_relative || t < 0 {
                return None;
            }
            if let Some((lt, lo)) = index.last() {
                if t <= lt.0 || o < lo.0 {
                    return None;
                }
            }
            index.timestamps.push(Timestamp(t));
            index.offsets.push(RelativeOffset(o));
        }
        Some(index)
    }
}

/// Both indexes of a segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Indexes {
    /// Offset → position.
    pub offset: OffsetIndex,
    /// Timestamp → offset.
    pub time: TimeIndex,
}

/// Reads a whole small file; `Ok(None)` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_and_looks_up() {
        let mut i = OffsetIndex::default();
        i.append(RelativeOffset(10), FilePosition(4100));
        i.append(RelativeOffset(20), FilePosition(8300));
        assert_eq!(i.lookup(RelativeOffset(5)), None);
        assert_eq!(i.lookup(RelativeOffset(10)).unwrap().1, FilePosition(4100));
        assert_eq!(i.lookup(RelativeOffset(25)).unwrap().1, FilePosition(8300));
        let b = i.to_bytes();
        assert_eq!(
            OffsetIndex::from_bytes(&b, 9000, 30).map(|l| l.to_bytes()),
            Some(b.clone())
        );
        assert_eq!(OffsetIndex::from_bytes(&b, 8000, 30), None);
        assert_eq!(OffsetIndex::from_bytes(&b[..7], 9000, 30), None);
    }

    #[test]
    fn two_level_search_matches_linear_search() {
        let mut i = OffsetIndex::default();
        for k in 0..1000u32 {
            i.append(RelativeOffset(k * 3 + 1), FilePosition(k * 100 + 7));
        }
        for t in 0..3100u32 {
            let want = (0..1000u32)
                .rev()
                .find(|k| k * 3 < t)
                .map(|k| FilePosition(k * 100 + 7));
            assert_eq!(i.lookup(RelativeOffset(t)).map(|e| e.1), want, "target {t}");
        }
        let mut ti = TimeIndex::default();
        for k in 0..500i64 {
            ti.maybe_append(Timestamp(k * 2), RelativeOffset(k as u32));
        }
        for t in 0..1100i64 {
            let want = (0..500i64)
                .rev()
                .find(|k| k * 2 < t)
                .map(|k| RelativeOffset(k as u32));
            assert_eq!(ti.lookup_before(Timestamp(t)), want, "ts {t}");
        }
    }

    #[test]
    fn time_index_only_grows() {
        let mut t = TimeIndex::default();
        t.maybe_append(Timestamp(100), RelativeOffset(0));
        t.maybe_append(Timestamp(90), RelativeOffset(5));
        t.maybe_append(Timestamp(200), RelativeOffset(7));
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup_before(Timestamp(100)), None);
        assert_eq!(t.lookup_before(Timestamp(150)), Some(RelativeOffset(0)));
        assert_eq!(TimeIndex::from_bytes(&t.to_bytes(), 8), Some(t.clone()));
        assert_eq!(TimeIndex::from_bytes(&t.to_bytes(), 7), None);
    }
}

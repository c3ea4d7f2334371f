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

/// The offset index of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(RelativeOffset, FilePosition)>,
}

impl OffsetIndex {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// Adds an entry (must be above the last one).
    pub fn append(&mut self, offset: RelativeOffset, position: FilePosition) {
        debug_assert!(self
            .entries
            .last()
            .is_none_or(|&(o, p)| o < offset && p < position));
        self.entries.push((offset, position));
    }
    /// The last entry.
    pub fn last(&self) -> Option<(RelativeOffset, FilePosition)> {
        self.entries.last().copied()
    }
    /// The largest entry whose offset is `<= target`.
    pub fn lookup(&self, target: RelativeOffset) -> Option<(RelativeOffset, FilePosition)> {
        let i = self.entries.partition_point(|&(o, _)| o <= target);
        (i > 0).then(|| self.entries[i - 1])
    }
    /// Serialises in Kafka's `.index` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 8);
        for &(o, p) in &self.entries {
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
            index.entries.push((RelativeOffset(o), FilePosition(p)));
        }
        Some(index)
    }
}

/// The time index of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(Timestamp, RelativeOffset)>,
}

impl TimeIndex {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The last entry (the segment's largest timestamp once the segment is closed).
    pub fn last(&self) -> Option<(Timestamp, RelativeOffset)> {
        self.entries.last().copied()
    }
    /// Adds an entry if `ts` is above the last one.
    pub fn maybe_append(&mut self, ts: Timestamp, offset: RelativeOffset) {
        if ts.0 >= 0 && self.entries.last().is_none_or(|&(t, _)| ts > t) {
            self.entries
                .push((ts, offset.max(self.last().map_or(offset, |(_, o)| o))));
        }
    }
    /// The offset of the last entry whose timestamp is `< target`: every batch before it has
    /// a smaller max timestamp, so a search for `target` can start there.
    pub fn lookup_before(&self, target: Timestamp) -> Option<RelativeOffset> {
        let i = self.entries.partition_point(|&(t, _)| t < target);
        (i > 0).then(|| self.entries[i - 1].1)
    }
    /// Serialises in Kafka's `.timeindex` format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * 12);
        for &(t, o) in &self.entries {
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
            index.entries.push((Timestamp(t), RelativeOffset(o)));
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
        assert_eq!(OffsetIndex::from_bytes(&b, 9000, 30), Some(i.clone()));
        assert_eq!(OffsetIndex::from_bytes(&b, 8000, 30), None);
        assert_eq!(OffsetIndex::from_bytes(&b[..7], 9000, 30), None);
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

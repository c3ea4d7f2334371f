//! Which consumer offsets of the channel's topic are safe to commit.
//!
//! Every record the consumer fetched gets a sequence number, which the channel's queue
//! carries as the event's [`Pointer`]. A record is *pending* from its fetch until a take
//! transaction holding it commits; the group offset of a partition may then advance to its
//! first pending record (or past the last fetched one when none is pending). Takes may
//! commit out of order (several sinks, rollbacks), so an offset never passes an event that
//! another transaction still holds: at-least-once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::file_channel::Pointer;

/// A partition and an offset of the channel's topic.
pub(crate) type Position = (i32, i64);

#[derive(Debug, Default)]
struct PartitionTrack {
    /// Offsets fetched and not yet taken by a committed transaction.
    pending: BTreeSet<i64>,
    /// One past the last fetched offset.
    next: i64,
    /// The offset last committed to the group (or known committed).
    committed: Option<i64>,
}

impl PartitionTrack {
    fn commit_point(&self) -> i64 {
        self.pending.first().copied().unwrap_or(self.next)
    }
}

/// The pending records of the partitions this channel's consumer reads.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    next_seq: u64,
    seqs: HashMap<u64, Position>,
    parts: BTreeMap<i32, PartitionTrack>,
}

impl Tracker {
    /// Records a fetched record; returns the pointer its event carries in the queue.
    pub(crate) fn fetched(&mut self, (partition, offset): Position) -> Pointer {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seqs.insert(seq, (partition, offset));
        let t = self.parts.entry(partition).or_default();
        if t.pending.is_empty() && t.next == 0 && t.committed.is_none() {
            // First record seen: the group's position is (at most) here.
            t.committed = Some(offset);
        }
        t.pending.insert(offset);
        t.next = t.next.max(offset + 1);
        Pointer(seq)
    }

    /// The topic position of a queued event, while it is tracked.
    pub(crate) fn position(&self, p: Pointer) -> Option<Position> {
        self.seqs.get(&p.0).copied()
    }

    /// Marks the events of a take transaction as done; returns what it removed (for
    /// [`Tracker::untake`] when the offset commit fails). Events of revoked partitions
    /// are no longer tracked and are skipped.
    pub(crate) fn take(&mut self, ptrs: &[Pointer]) -> Vec<(u64, Position)> {
        let mut done = Vec::with_capacity(ptrs.len());
        for p in ptrs {
            if let Some(pos) = self.seqs.remove(&p.0) {
                if let Some(t) = self.parts.get_mut(&pos.0) {
                    t.pending.remove(&pos.1);
                }
                done.push((p.0, pos));
            }
        }
        done
    }

    /// Undoes [`Tracker::take`] (the events go back to the queue).
    pub(crate) fn untake(&mut self, done: Vec<(u64, Position)>) {
        for (seq, (partition, offset)) in done {
            if let Some(t) = self.parts.get_mut(&partition) {
                t.pending.insert(offset);
                self.seqs.insert(seq, (partition, offset));
            }
        }
    }

    /// The partitions whose commit point moved past the last committed offset, with the
    /// offset to commit.
    pub(crate) fn to_commit(&self) -> Vec<Position> {
        self.parts
            .iter()
            .filter_map(|(&p, t)| {
                let at = t.commit_point();
                (t.committed.is_none_or(|c| at > c)).then_some((p, at))
            })
            .collect()
    }

    /// Records offsets committed to the group.
    pub(crate) fn committed(&mut self, offsets: &[Position]) {
        for &(p, o) in offsets {
            if let Some(t) = self.parts.get_mut(&p) {
                t.committed = Some(t.committed.map_or(o, |c| c.max(o)));
            }
        }
    }

    /// Forgets revoked partitions (a rebalance gave them to another consumer, which reads
    /// them again from the committed offset).
    pub(crate) fn revoke(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.parts.remove(p);
        }
        self.seqs.retain(|_, (p, _)| !partitions.contains(p));
    }

    /// Records tracked (fetched, not taken and committed).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.seqs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_never_pass_an_event_held_elsewhere() {
        let mut t = Tracker::default();
        let a: Vec<Pointer> = (10..15).map(|o| t.fetched((0, o))).collect();
        let b: Vec<Pointer> = (0..3).map(|o| t.fetched((1, o))).collect();
        assert_eq!(t.position(a[2]), Some((0, 12)));
        // Nothing taken yet: nothing moves (the group is at 10 and 0 already).
        assert_eq!(t.to_commit(), vec![]);
        // A later batch of partition 0 commits first: the offset waits for 10..12.
        let later = t.take(&a[3..]);
        assert_eq!(later.len(), 2);
        assert_eq!(t.to_commit(), vec![]);
        let first = t.take(&a[..3]);
        assert_eq!(t.to_commit(), vec![(0, 15)]);
        t.committed(&[(0, 15)]);
        assert_eq!(t.to_commit(), vec![]);
        // A failed commit puts events back: the commit point returns to them.
        let done = t.take(&b[..2]);
        assert_eq!(t.to_commit(), vec![(1, 2)]);
        t.untake(done);
        assert_eq!(t.to_commit(), vec![]);
        assert_eq!(t.pending(), 3);
        drop(first);
    }

    #[test]
    fn revoked_partitions_are_forgotten() {
        let mut t = Tracker::default();
        let a = t.fetched((0, 0));
        let b = t.fetched((1, 0));
        t.revoke(&[1]);
        assert_eq!(t.position(b), None);
        assert!(t.take(&[b]).is_empty(), "a revoked event commits nothing");
        assert_eq!(t.take(&[a]).len(), 1);
        assert_eq!(t.to_commit(), vec![(0, 1)]);
        // Fetched again after a new assignment: tracked afresh.
        let b2 = t.fetched((1, 0));
        t.take(&[b2]);
        assert_eq!(t.to_commit(), vec![(0, 1), (1, 1)]);
    }
}

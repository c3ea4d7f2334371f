//! Idempotent-producer state of one partition (Kafka's `ProducerStateEntry`): per producer
//! id, the current epoch and the metadata of the last five batches appended.
//!
//! Checks, in Kafka's order, for a batch with producerId ≥ 0:
//! 1. same epoch and (firstSeq, lastSeq) of a cached batch → duplicate: answer with the
//!    original offset, do not append;
//! 2. epoch lower than known → INVALID_PRODUCER_EPOCH;
//! 3. epoch higher than known → the sequence must restart at 0;
//! 4. same epoch → firstSeq must follow the last sequence (wrapping at i32::MAX);
//! 5. unknown producer → any sequence is accepted and tracking starts.
//!
//! The state survives restarts through [`ProducerStateMap::rebuild_from`], fed with the batch
//! headers at the tail of the log.

use std::collections::{HashMap, VecDeque};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use crate::batch::BatchHeader;

/// How many batches per producer are remembered for duplicate detection (Kafka's 5).
pub const CACHED_BATCHES: usize = 5;

/// One appended batch, as remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    /// First sequence.
    pub first_seq: i32,
    /// Last sequence.
    pub last_seq: i32,
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

/// One producer's state on one partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// The last batches, oldest first.
    pub batches: VecDeque<BatchMeta>,
}

/// The outcome of checking a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or in order: append it.
    Append,
    /// Already appended: answer with this first offset.
    Duplicate {
        /// The offset of the batch's first record.
        first_offset: i64,
    },
}

/// All producers' state on one partition.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProducerStateMap {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

impl ProducerStateMap {
    /// Checks `batch` against the state without changing it.
    pub fn check(&self, batch: &BatchHeader) -> Result<SequenceCheck, ResponseError> {
        if batch.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        if batch.base_sequence < 0 {
            return Err(ResponseError::InvalidRecord);
        }
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        let last_seq = batch.last_sequence();
        if batch.producer_epoch == entry.epoch {
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == batch.base_sequence && b.last_seq == last_seq)
            {
                return Ok(SequenceCheck::Duplicate {
                    first_offset: dup.first_offset,
                });
            }
        }
        if batch.producer_epoch < entry.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if batch.producer_epoch > entry.epoch {
            return if batch.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ResponseError::OutOfOrderSequenceNumber)
            };
        }
        match entry.batches.back() {
            Some(last) if batch.base_sequence != next_seq(last.last_seq) => {
                Err(ResponseError::OutOfOrderSequenceNumber)
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Records an appended batch whose first record got `first_offset`.
    pub fn record(&mut self, batch: &BatchHeader, first_offset: i64) {
        if batch.producer_id < 0 || batch.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = batch.producer_epoch;
        }
        entry.batches.push_back(BatchMeta {
            first_seq: batch.base_sequence,
            last_seq: batch.last_sequence(),
            first_offset,
            last_offset: first_offset + batch.last_offset_delta as i64,
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Replays stored batch headers (base offsets as assigned by the log).
    pub fn rebuild_from(&mut self, headers: impl Iterator<Item = BatchHeader>) {
        for h in headers {
            if !h.is_control() {
                self.record(&h, h.base_offset);
            }
        }
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{parse_header, tests::fake_batch};

    fn h(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        parse_header(&fake_batch(pid, epoch, seq, count)).unwrap()
    }

    #[test]
    fn in_order_duplicates_gaps_and_epochs() {
        let mut s = ProducerStateMap::default();
        let b0 = h(1, 0, 0, 3);
        assert_eq!(s.check(&b0), Ok(SequenceCheck::Append));
        s.record(&b0, 100);
        let b1 = h(1, 0, 3, 2);
        assert_eq!(s.check(&b1), Ok(SequenceCheck::Append));
        s.record(&b1, 103);
        // duplicate of the first batch → its original offset
        assert_eq!(
            s.check(&b0),
            Ok(SequenceCheck::Duplicate { first_offset: 100 })
        );
        // gap
        assert_eq!(
            s.check(&h(1, 0, 9, 1)),
            Err(ResponseError::OutOfOrderSequenceNumber)
        );
        // older epoch
        s.record(&h(1, 2, 0, 1), 105);
        assert_eq!(
            s.check(&h(1, 1, 1, 1)),
            Err(ResponseError::InvalidProducerEpoch)
        );
        // newer epoch must restart at 0
        assert_eq!(
            s.check(&h(1, 3, 5, 1)),
            Err(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(s.check(&h(1, 3, 0, 1)), Ok(SequenceCheck::Append));
        // unknown producer: anything goes
        assert_eq!(s.check(&h(2, 0, 42, 1)), Ok(SequenceCheck::Append));
        // non-idempotent
        assert_eq!(s.check(&h(-1, -1, -1, 1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_five_batches_are_remembered_and_rebuild_replays() {
        let mut s = ProducerStateMap::default();
        let mut headers = Vec::new();
        for i in 0..7 {
            let mut b = h(9, 0, i, 1);
            b.base_offset = i as i64;
            headers.push(b);
        }
        s.rebuild_from(headers.clone().into_iter());
        assert_eq!(
            s.check(&headers[6]),
            Ok(SequenceCheck::Duplicate { first_offset: 6 })
        );
        assert_eq!(
            s.check(&headers[2]),
            Ok(SequenceCheck::Duplicate { first_offset: 2 })
        );
        assert_eq!(
            s.check(&headers[1]),
            Err(ResponseError::OutOfOrderSequenceNumber)
        );
        assert_eq!(s.check(&h(9, 0, 7, 1)), Ok(SequenceCheck::Append));
    }
}

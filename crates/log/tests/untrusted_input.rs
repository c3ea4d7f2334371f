//! Appends of untrusted bytes (random, or valid batches with random damage) never panic,
//! never append a partial batch, and leave the log readable.

mod common;

use common::*;
use flumen_log::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_rejected_or_appended_whole(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = scratch_dir();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        let mut b = bytes.clone();
        let r = log.append(&mut b, AppendOptions::default());
        prop_assert!(r.is_err(), "random bytes accepted");
        prop_assert_eq!(log.log_end_offset(), Offset(0));
        prop_assert_eq!(log.size_bytes(), 0);
    }

    #[test]
    fn damaged_batches_are_rejected_and_the_log_stays_intact(
        records in 1usize..5,
        value_len in 0usize..50,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let dir = scratch_dir();
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        append(&mut log, 1, 2, 10);
        let good = batch(5, records, value_len);
        let mut bad = good.clone();
        for (i, v) in &edits {
            let i = i.index(bad.len());
            bad[i] = *v;
        }
        if let Some(c) = cut {
            bad.truncate(c.index(bad.len()));
        }
        let before = log.size_bytes();
        match log.append(&mut bad, AppendOptions::default()) {
            Ok(info) => {
                // Only edits outside the CRC range (baseOffset, partitionLeaderEpoch) or
                // edits that change nothing can pass.
                prop_assert_eq!(info.first_offset, Offset(2));
                prop_assert_eq!(log.size_bytes(), before + bad.len() as u64);
            }
            Err(_) => prop_assert_eq!(log.size_bytes(), before),
        }
        let all = read_all(&log, Offset(0));
        prop_assert!(!all.is_empty());
        drop(log);
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        prop_assert_eq!(read_all(&log, Offset(0)), all);
    }
}

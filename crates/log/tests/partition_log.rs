//! Behaviour of `PartitionLog` through its public API.

mod common;

use common::*;
use flumen_log::*;

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1000,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

#[test]
fn append_assigns_offsets_and_read_returns_whole_batches() {
    let d = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(d.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), Offset(0));
    assert_eq!(append(&mut log, 100, 3, 10), (Offset(0), Offset(2)));
    assert_eq!(append(&mut log, 200, 2, 10), (Offset(3), Offset(4)));
    assert_eq!(log.high_watermark(), Offset(5));
    // Mid-batch offset: the whole batch holding it comes back.
    let f = log
        .read(ReadOptions {
            offset: Offset(1),
            max_bytes: 1 << 20,
            max_offset: None,
        })
        .unwrap();
    let hs = headers(&f.records);
    assert_eq!(hs.len(), 2);
    assert_eq!((hs[0].base_offset, hs[1].base_offset), (0, 3));
    assert_eq!(f.high_watermark, Offset(5));
    // offset == end: empty; past end or below start: out of range.
    let f = log
        .read(ReadOptions {
            offset: Offset(5),
            max_bytes: 100,
            max_offset: None,
        })
        .unwrap();
    assert!(f.records.is_empty());
    match log.read(ReadOptions {
        offset: Offset(6),
        max_bytes: 100,
        max_offset: None,
    }) {
        Err(LogError::OffsetOutOfRange {
            offset,
            log_start,
            log_end,
        }) => {
            assert_eq!(
                (offset, log_start, log_end),
                (Offset(6), Offset(0), Offset(5))
            )
        }
        other => panic!("{other:?}"),
    }
    // At least one batch even when max_bytes is tiny; max_offset bounds the read.
    let f = log
        .read(ReadOptions {
            offset: Offset(0),
            max_bytes: 1,
            max_offset: None,
        })
        .unwrap();
    assert_eq!(headers(&f.records).len(), 1);
    let f = log
        .read(ReadOptions {
            offset: Offset(0),
            max_bytes: 1 << 20,
            max_offset: Some(Offset(3)),
        })
        .unwrap();
    assert_eq!(headers(&f.records).len(), 1);
    let f = log
        .read(ReadOptions {
            offset: Offset(3),
            max_bytes: 1 << 20,
            max_offset: Some(Offset(3)),
        })
        .unwrap();
    assert!(f.records.is_empty());
}

#[test]
fn append_rejects_bad_batches_and_appends_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    let mut big = batch(0, 1, 300);
    match log.append(&mut big, AppendOptions::default()) {
        Err(LogError::RecordTooLarge { size, limit }) => {
            assert_eq!((size, limit), (big.len(), 200))
        }
        other => panic!("{other:?}"),
    }
    let mut two = batch(0, 1, 10);
    let mut bad = batch(0, 1, 10);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    two.extend_from_slice(&bad);
    assert!(matches!(
        log.append(&mut two, AppendOptions::default()),
        Err(LogError::CorruptBatch { .. })
    ));
    let mut legacy = batch(0, 1, 10);
    legacy[16] = 0;
    assert!(matches!(
        log.append(&mut legacy, AppendOptions::default()),
        Err(LogError::UnsupportedMagic { magic: 0 })
    ));
    let mut trailing = batch(0, 1, 10);
    trailing.extend_from_slice(&[0, 0, 0]);
    assert!(matches!(
        log.append(&mut trailing, AppendOptions::default()),
        Err(LogError::CorruptBatch { .. })
    ));
    assert!(matches!(
        log.append(&mut [], AppendOptions::default()),
        Err(LogError::CorruptBatch { .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(0));
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn several_batches_in_one_append() {
    let d = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(d.path(), LogConfig::default()).unwrap();
    let mut b = batch(10, 2, 5);
    b.extend_from_slice(&batch(50, 3, 5));
    let info = log
        .append(&mut b, AppendOptions { now: Timestamp(99) })
        .unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (Offset(0), Offset(4), 5)
    );
    assert_eq!(info.max_timestamp, Timestamp(52));
    assert_eq!(info.offset_of_max_timestamp, Offset(4));
    assert_eq!(info.log_append_time, None);
    assert_eq!(read_all(&log, Offset(0)), vec![(0, 1), (2, 4)]);
}

#[test]
fn log_append_time_rewrites_timestamp_and_crc() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    let mut b = batch(10, 2, 5);
    let info = log
        .append(
            &mut b,
            AppendOptions {
                now: Timestamp(5000),
            },
        )
        .unwrap();
    assert_eq!(info.log_append_time, Some(Timestamp(5000)));
    assert_eq!(info.max_timestamp, Timestamp(5000));
    let f = log
        .read(ReadOptions {
            offset: Offset(0),
            max_bytes: 1000,
            max_offset: None,
        })
        .unwrap();
    let h = flumen_log::batch::validate(&f.records, None).unwrap();
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 5000);
}

#[test]
fn rolls_segments_and_reads_across_them() {
    let d = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(d.path(), small_config()).unwrap();
    for i in 0..40 {
        append(&mut log, 1000 + i, 2, 20);
    }
    assert!(log.segment_count() > 3, "{}", log.segment_count());
    let all = read_all(&log, Offset(0));
    assert_eq!(all.len(), 40);
    for (i, &(b, l)) in all.iter().enumerate() {
        assert_eq!((b, l), (2 * i as i64, 2 * i as i64 + 1));
    }
    // Every offset reads back the batch that holds it.
    for o in 0..80 {
        let f = log
            .read(ReadOptions {
                offset: Offset(o),
                max_bytes: 1,
                max_offset: None,
            })
            .unwrap();
        let h = headers(&f.records);
        assert!(
            h[0].base_offset <= o && o <= h[0].last_offset(),
            "offset {o}"
        );
    }
    // Dropping handles and cached indexes changes nothing visible.
    log.release_handles();
    assert_eq!(read_all(&log, Offset(0)), all);
    assert_eq!(append(&mut log, 5000, 1, 1).0, Offset(80));
    // Files are named by 20-digit base offset.
    for base in log.segment_bases() {
        assert!(d.path().join(format!("{:020}.log", base.0)).exists());
    }
}

#[test]
fn timestamp_lookups() {
    let d = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(d.path(), small_config()).unwrap();
    // batch i: 3 records with timestamps 1000+10i .. 1000+10i+2
    for i in 0..30 {
        append(&mut log, 1000 + 10 * i, 3, 20);
    }
    assert_eq!(
        log.offset_for_timestamp(Timestamp(0)).unwrap(),
        Some((Offset(0), Timestamp(1000)))
    );
    assert_eq!(
        log.offset_for_timestamp(Timestamp(1001)).unwrap(),
        Some((Offset(1), Timestamp(1001)))
    );
    assert_eq!(
        log.offset_for_timestamp(Timestamp(1003)).unwrap(),
        Some((Offset(3), Timestamp(1010)))
    );
    assert_eq!(
        log.offset_for_timestamp(Timestamp(1152)).unwrap(),
        Some((Offset(47), Timestamp(1152)))
    );
    assert_eq!(
        log.offset_for_timestamp(Timestamp(1292)).unwrap(),
        Some((Offset(89), Timestamp(1292)))
    );
    assert_eq!(log.offset_for_timestamp(Timestamp(1293)).unwrap(), None);
    assert_eq!(
        log.max_timestamp_offset(),
        Some((Offset(89), Timestamp(1292)))
    );
    for t in 995..1300 {
        let got = log.offset_for_timestamp(Timestamp(t)).unwrap();
        // model: record k has timestamp 1000 + 10*(k/3) + k%3
        let want = (0..90i64)
            .map(|k| (k, 1000 + 10 * (k / 3) + k % 3))
            .find(|&(_, ts)| ts >= t)
            .map(|(k, ts)| (Offset(k), Timestamp(ts)));
        assert_eq!(got, want, "t {t}");
    }
}

#[test]
fn reopen_after_clean_close_and_after_drop() {
    let d = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(d.path(), small_config()).unwrap();
    for i in 0..25 {
        append(&mut log, 1000 + i, 2, 20);
    }
    let before = read_all(&log, Offset(0));
    log.close().unwrap();
    assert!(d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    let mut log = PartitionLog::open(d.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, Offset(0)), before);
    assert_eq!(log.log_end_offset(), Offset(50));
    assert_eq!(
        log.max_timestamp_offset(),
        Some((Offset(49), Timestamp(1025)))
    );
    append(&mut log, 2000, 1, 5);
    assert!(!d.path().join(CLEAN_SHUTDOWN_FILE).exists());
    drop(log); // unclean
    let log = PartitionLog::open(d.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), Offset(51));
    assert_eq!(read_all(&log, Offset(0)).len(), 26);
}

#[test]
fn delete_records_and_retention() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_ms: 1000,
        ..small_config()
    };
    let mut log = PartitionLog::open(d.path(), cfg.clone()).unwrap();
    for i in 0..30 {
        append(&mut log, 10_000 + 100 * i, 2, 20);
    }
    let segs = log.segment_count();
    assert_eq!(log.delete_records_before(Offset(7)).unwrap(), Offset(7));
    assert_eq!(log.log_start_offset(), Offset(7));
    assert!(matches!(
        log.read(ReadOptions {
            offset: Offset(6),
            max_bytes: 10,
            max_offset: None
        }),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.delete_records_before(Offset(61)).is_err());
    // Retention by time: segments whose newest record is older than now - 1000 go.
    let info = log.apply_retention(Timestamp(10_000 + 100 * 25)).unwrap();
    assert!(info.deleted_segments > 0 && info.deleted_segments < segs);
    assert!(log.log_start_offset() > Offset(7));
    let first = read_all(&log, log.log_start_offset());
    assert_eq!(first.last().unwrap().1, 59);
    // Everything expired: the active segment is rolled and removed too.
    let info = log.apply_retention(Timestamp(1_000_000)).unwrap();
    assert!(info.deleted_segments > 0);
    assert_eq!(log.log_start_offset(), Offset(60));
    assert_eq!(log.log_end_offset(), Offset(60));
    assert_eq!(log.size_bytes(), 0);
    drop(log);
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (Offset(60), Offset(60))
    );
    assert_eq!(append(&mut log, 5, 1, 1).0, Offset(60));
}

#[test]
fn retention_by_bytes_keeps_active_segment() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: 1500,
        retention_ms: -1,
        ..small_config()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    for i in 0..40 {
        append(&mut log, i, 2, 20);
    }
    log.apply_retention(Timestamp(0)).unwrap();
    assert!(log.size_bytes() <= 1500 + 1000, "{}", log.size_bytes());
    assert!(log.size_bytes() >= 1500 - 1000);
    assert_eq!(read_all(&log, log.log_start_offset()).last().unwrap().1, 79);
}

#[test]
fn flush_policy() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: Some(5),
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    assert!(!log.needs_flush(Timestamp::now()));
    append(&mut log, 0, 3, 1);
    assert!(!log.needs_flush(Timestamp::now()));
    append(&mut log, 0, 3, 1);
    assert!(log.needs_flush(Timestamp::now()));
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), Offset(6));
    assert!(!log.needs_flush(Timestamp::now()));
    let cfg = LogConfig {
        flush_ms: Some(1000),
        ..LogConfig::default()
    };
    log.set_config(cfg);
    append(&mut log, 0, 1, 1);
    assert!(!log.needs_flush(Timestamp(Timestamp::now().0 - 10)));
    assert!(log.needs_flush(Timestamp(Timestamp::now().0 + 2000)));
}

#[test]
fn truncate_to_drops_the_batch_holding_the_offset() {
    let d = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(d.path(), small_config()).unwrap();
    for i in 0..30 {
        append(&mut log, i, 3, 20);
    }
    assert_eq!(log.truncate_to(Offset(50)).unwrap(), Offset(48));
    assert_eq!(read_all(&log, Offset(0)).last().unwrap().1, 47);
    assert_eq!(append(&mut log, 0, 1, 1).0, Offset(48));
    assert_eq!(log.truncate_to(Offset(3)).unwrap(), Offset(3));
    assert_eq!(log.segment_count(), 1);
    drop(log);
    let log = PartitionLog::open(d.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), Offset(3));
}

#[test]
fn manager_lists_opens_and_deletes() {
    let d = tempfile::tempdir().unwrap();
    let m = LogManager::open(d.path()).unwrap();
    assert!(m.partitions().is_empty());
    let tp = TopicPartition::new("my.topic-x", 3);
    let mut log = m.open_log(&tp, LogConfig::default()).unwrap();
    append(&mut log, 0, 1, 1);
    log.close().unwrap();
    let tp2 = TopicPartition::new("other", 0);
    m.open_log(&tp2, LogConfig::default())
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(m.partitions(), vec![tp.clone(), tp2.clone()]);
    assert!(d.path().join("my.topic-x-3").is_dir());
    m.delete_log(&tp).unwrap();
    assert_eq!(m.partitions(), vec![tp2]);
    std::fs::create_dir(d.path().join("gone-1.deleted")).unwrap();
    let m = LogManager::open(d.path()).unwrap();
    assert!(!d.path().join("gone-1.deleted").exists());
    assert_eq!(m.partitions().len(), 1);
}

#[test]
fn rolls_on_segment_ms_by_broker_clock_and_on_full_index() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    // Old producer timestamps do not roll by themselves: the broker clock decides.
    for i in 0..5 {
        let mut b = batch(1, 1, 10);
        log.append(
            &mut b,
            AppendOptions {
                now: Timestamp(10_000 + i),
            },
        )
        .unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    let mut b = batch(1, 1, 10);
    log.append(
        &mut b,
        AppendOptions {
            now: Timestamp(11_001),
        },
    )
    .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(5)]);

    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_index_bytes: 16,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    for i in 0..10 {
        append(&mut log, i, 1, 10);
    }
    // 2 index entries per segment at most: a new segment every 3 batches.
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    assert_eq!(read_all(&log, Offset(0)).len(), 10);
}

#[test]
fn split_flush_lets_appends_in_while_syncing() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: Some(2),
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(d.path(), cfg).unwrap();
    append(&mut log, 1, 3, 10);
    let pending = log.begin_flush().unwrap();
    assert_eq!(pending.offset(), Offset(3));
    // Appends (and a roll) while the fsync runs elsewhere.
    let t = std::thread::spawn(move || {
        pending.sync().unwrap();
        pending
    });
    for _ in 0..4 {
        append(&mut log, 2, 1, 100);
    }
    assert!(log.segment_count() > 1);
    let pending = t.join().unwrap();
    log.complete_flush(pending).unwrap();
    assert_eq!(log.recovery_point(), Offset(3));
    assert_eq!(log.unflushed_records(), 4);
    assert!(log.needs_flush(Timestamp::now()));
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), Offset(7));
    assert!(!log.needs_flush(Timestamp::now()));
    // A flush prepared before a truncation never moves the recovery point past the end.
    append(&mut log, 3, 2, 10);
    let pending = log.begin_flush().unwrap();
    log.truncate_to(Offset(8)).unwrap();
    pending.sync().unwrap();
    log.complete_flush(pending).unwrap();
    assert!(log.recovery_point() <= log.log_end_offset());
    drop(log);
    let log = PartitionLog::open(d.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), Offset(7));
}

/// Offset and timestamp lookups answered from the in-memory batch descriptions (and the
/// read-position cache) agree with a walk over the stored bytes: for batches described in
/// memory, for batches between index entries, after a clean reopen (entries loaded from the
/// index files, not described) and after a truncation followed by different appends.
#[test]
fn memory_lookups_agree_with_the_stored_batches() {
    let d = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        index_interval_bytes: 200,
        ..LogConfig::default()
    };
    /// (base, last, position, [(offset, timestamp)]) of a stored batch.
    type Stored = (i64, i64, u64, Vec<(i64, i64)>);
    // Every stored batch, from the bytes.
    fn stored(log: &PartitionLog) -> Vec<Stored> {
        let all = log
            .read(ReadOptions {
                offset: log.log_start_offset(),
                max_bytes: u32::MAX,
                max_offset: None,
            })
            .unwrap()
            .records;
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < all.len() {
            let h = flumen_log::batch::BatchHeader::parse(&all[pos..]).unwrap();
            let recs = flumen_log::batch::Records::new(&h, &all[pos..pos + h.size])
                .map(|r| {
                    let r = r.unwrap();
                    (h.base_offset + r.offset_delta as i64, r.timestamp)
                })
                .collect();
            out.push((h.base_offset, h.last_offset(), pos as u64, recs));
            pos += h.size;
        }
        out
    }
    fn check(log: &PartitionLog) {
        let batches = stored(log);
        for &(base, last, pos, _) in &batches {
            for o in base..=last {
                assert_eq!(
                    log.lookup_offset(Offset(o)).unwrap(),
                    Some((Offset(0), pos)),
                    "offset {o}"
                );
            }
        }
        assert_eq!(log.lookup_offset(log.log_end_offset()).unwrap(), None);
        let records: Vec<(i64, i64)> = batches.iter().flat_map(|b| b.3.clone()).collect();
        let max_ts = records.iter().map(|r| r.1).max().unwrap_or(0);
        for t in 0..=max_ts + 1 {
            let want = records
                .iter()
                .find(|&&(_, ts)| ts >= t)
                .map(|&(o, ts)| (Offset(o), Timestamp(ts)));
            assert_eq!(
                log.offset_for_timestamp(Timestamp(t)).unwrap(),
                want,
                "timestamp {t}"
            );
        }
        // Sequential reads (they fill and then use the read-position cache), twice.
        let want: Vec<(i64, i64)> = batches.iter().map(|b| (b.0, b.1)).collect();
        assert_eq!(read_all(log, log.log_start_offset()), want);
        assert_eq!(read_all(log, log.log_start_offset()), want);
    }
    let mut log = PartitionLog::open(d.path(), cfg.clone()).unwrap();
    // Batch sizes around the index interval, one or several records, timestamps going back
    // and forth between batches.
    for i in 0..60i64 {
        let n = [1, 1, 3, 1, 5, 2][i as usize % 6];
        let len = [10, 250, 40, 400, 5, 120][i as usize % 7 % 6];
        let ts = 10 * i + if i % 4 == 1 { 35 } else { 0 };
        append(&mut log, ts, n, len);
    }
    check(&log);
    log.close().unwrap();
    let mut log = PartitionLog::open(d.path(), cfg.clone()).unwrap();
    check(&log);
    for i in 60..90i64 {
        append(&mut log, 10 * i, 1 + (i as usize % 3), 300);
    }
    check(&log);
    // Truncate in the middle, append batches of other sizes: nothing remembered may survive.
    let cut = stored(&log)[40].0 + 1;
    log.truncate_to(Offset(cut)).unwrap();
    for i in 0..20i64 {
        append(&mut log, 2000 + i, 2, 17 + i as usize);
    }
    check(&log);
}

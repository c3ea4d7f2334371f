//! Crash tests: damage the tail of the active segment the way a crash can (cut at every byte
//! of the last batch, flipped bytes, zero-filled tail) and check that the log reopens, keeps
//! every earlier batch byte for byte, drops the damaged one, and accepts appends again.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use flumen_log::*;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// Raw bytes of every batch, read back through the log.
fn all_bytes(log: &PartitionLog) -> Vec<u8> {
    let f = log
        .read(ReadOptions {
            offset: log.log_start_offset(),
            max_bytes: u32::MAX,
            max_offset: None,
        })
        .unwrap();
    f.records
}

struct Pristine {
    dir: tempfile::TempDir,
    /// Bytes of all batches before the last one.
    before_last: Vec<u8>,
    last_base: Offset,
    last_len: usize,
    active: std::path::PathBuf,
}

/// Builds a log with a few segments; `flushed_before_last` flushes everything but the last
/// batch (so the recovery point sits in the active segment); `clean` closes the log cleanly.
fn pristine(flushed_before_last: bool, clean: bool) -> Pristine {
    let dir = scratch_dir();
    let mut log = PartitionLog::open(dir.path(), config()).unwrap();
    for i in 0..40 {
        append(&mut log, 1000 + i, 1 + (i as usize % 4), 10 + i as usize);
    }
    assert!(log.segment_count() >= 3);
    if flushed_before_last {
        log.flush().unwrap();
    }
    let before_last = all_bytes(&log);
    let last_base = log.log_end_offset();
    append(&mut log, 5000, 3, 33);
    let active_base = *log.segment_bases().last().unwrap();
    let last_len = all_bytes(&log).len() - before_last.len();
    if clean {
        log.close().unwrap();
    } else {
        drop(log);
    }
    let active = dir.path().join(format!("{:020}.log", active_base.0));
    Pristine {
        dir,
        before_last,
        last_base,
        last_len,
        active,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Applies `damage` to the active segment of a copy of `p`, reopens, and checks the result.
fn check_damage(
    p: &Pristine,
    damage: impl FnOnce(&mut Vec<u8>),
    expect_kept_last: bool,
    what: &str,
) {
    check_damage_full(p, damage, expect_kept_last, what, true)
}

/// Like `check_damage`; `append_after` also appends and reopens once more.
fn check_damage_full(
    p: &Pristine,
    damage: impl FnOnce(&mut Vec<u8>),
    expect_kept_last: bool,
    what: &str,
    append_after: bool,
) {
    let work = scratch_dir();
    copy_dir(p.dir.path(), work.path());
    let active = work.path().join(p.active.file_name().unwrap());
    let mut bytes = fs::read(&active).unwrap();
    damage(&mut bytes);
    fs::write(&active, &bytes).unwrap();
    let mut log =
        PartitionLog::open(work.path(), config()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = all_bytes(&log);
    if expect_kept_last {
        assert_eq!(got.len(), p.before_last.len() + p.last_len, "{what}");
        assert!(log.log_end_offset() > p.last_base, "{what}");
    } else {
        assert_eq!(log.log_end_offset(), p.last_base, "{what}");
        assert_eq!(got, p.before_last, "{what}");
    }
    assert_eq!(&got[..p.before_last.len()], &p.before_last[..], "{what}");
    if !append_after {
        return;
    }
    // The log keeps working and the next reopen agrees.
    let leo = log.log_end_offset();
    assert_eq!(append(&mut log, 9000, 2, 5).0, leo, "{what}");
    drop(log);
    let log = PartitionLog::open(work.path(), config()).unwrap();
    assert_eq!(log.log_end_offset(), leo.plus(2), "{what}");
}

#[test]
fn cut_at_every_byte_of_the_last_batch() {
    for (flushed, clean) in [(false, false), (true, false), (false, true)] {
        let p = pristine(flushed, clean);
        let full = fs::read(&p.active).unwrap().len();
        let start = full - p.last_len;
        for cut in start..full {
            let what = format!("cut at {cut} (flushed {flushed}, clean {clean})");
            check_damage_full(&p, |b| b.truncate(cut), false, &what, cut & 15 == 0);
        }
        // Uncut: everything kept.
        check_damage(&p, |_| {}, true, "no damage");
    }
}

#[test]
fn flipped_bytes_in_the_last_batch() {
    for (flushed, clean) in [(false, false), (true, true)] {
        let p = pristine(flushed, clean);
        let full = fs::read(&p.active).unwrap().len();
        let start = full - p.last_len;
        for i in start..full {
            // partitionLeaderEpoch (bytes 12..16 of a batch) lies outside the CRC, like in
            // Kafka: a flip there leaves a valid batch.
            let rel = i - start;
            let kept = (12..16).contains(&rel);
            let what = format!("flip at +{rel} (flushed {flushed}, clean {clean})");
            check_damage_full(&p, |b| b[i] ^= 0x5a, kept, &what, rel & 15 == 0);
        }
    }
}

#[test]
fn zero_filled_tail_and_garbage_after_last_batch() {
    let p = pristine(false, false);
    check_damage(&p, |b| b.extend_from_slice(&[0u8; 4096]), true, "zero tail");
    check_damage(
        &p,
        |b| {
            b.extend_from_slice(
                b"garbage that is not a batch at all, long enough for a header.......",
            )
        },
        true,
        "garbage tail",
    );
    check_damage(
        &p,
        |b| {
            let n = b.len();
            b[n - p.last_len..].fill(0);
        },
        false,
        "zeroed last batch",
    );
}

#[test]
fn corrupt_or_missing_index_files_are_rebuilt() {
    let p = pristine(true, true);
    let expected = {
        let log = PartitionLog::open(p.dir.path(), config()).unwrap();
        let v = all_bytes(&log);
        log.close().unwrap();
        v
    };
    for (i, e) in fs::read_dir(p.dir.path()).unwrap().enumerate() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".index") || name.ends_with(".timeindex") {
            if i % 2 == 0 {
                fs::remove_file(&path).unwrap();
            } else {
                fs::write(&path, b"\xff\xff\xff\xff\x00\x00\x00\x01\x00\x00\x00").unwrap();
            }
        }
    }
    let log = PartitionLog::open(p.dir.path(), config()).unwrap();
    assert_eq!(all_bytes(&log), expected);
    // Lookups through rebuilt indexes.
    for o in 0..log.log_end_offset().0 {
        let f = log
            .read(ReadOptions {
                offset: Offset(o),
                max_bytes: 1,
                max_offset: None,
            })
            .unwrap();
        let h = headers(&f.records);
        assert!(h[0].base_offset <= o && o <= h[0].last_offset());
    }
    assert_eq!(
        log.offset_for_timestamp(Timestamp(5000))
            .unwrap()
            .unwrap()
            .1,
        Timestamp(5000)
    );
}

#[test]
fn leftover_files_from_interrupted_operations_are_removed() {
    let p = pristine(false, true);
    fs::write(p.dir.path().join("00000000000000000007.log.deleted"), b"x").unwrap();
    fs::write(
        p.dir.path().join("recovery-point-offset-checkpoint.tmp"),
        b"x",
    )
    .unwrap();
    fs::write(p.dir.path().join("00000000000099999999.index"), b"").unwrap();
    let log = PartitionLog::open(p.dir.path(), config()).unwrap();
    assert!(log.log_end_offset() > p.last_base);
    let names: Vec<String> = fs::read_dir(p.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".deleted")
            || n.ends_with(".tmp")
            || n.starts_with("00000000000099999999")),
        "{names:?}"
    );
}

#[test]
fn corruption_in_an_older_unflushed_segment_truncates_there_and_drops_later_segments() {
    let dir = scratch_dir();
    let mut log = PartitionLog::open(dir.path(), config()).unwrap();
    for i in 0..40 {
        append(&mut log, 1000 + i, 2, 60);
    }
    let bases = log.segment_bases();
    assert!(bases.len() >= 4, "{bases:?}");
    // Nothing was flushed (no recovery point): crash with a bad byte in the middle of the
    // third segment.
    drop(log);
    let victim = dir.path().join(format!("{:020}.log", bases[2].0));
    let mut bytes = fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&victim, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    let kept = log.segment_bases();
    assert_eq!(kept, bases[..3].to_vec(), "later segments must be deleted");
    assert!(log.log_end_offset() > bases[2] && log.log_end_offset() < bases[3]);
    for b in &bases[3..] {
        assert!(!dir.path().join(format!("{:020}.log", b.0)).exists());
    }
    // Everything up to the damaged batch reads back in order.
    let all = read_all(&log, Offset(0));
    assert_eq!(all.last().unwrap().1 + 1, log.log_end_offset().0);
}

//! Scale: many partitions must not hold many open files.

mod common;

use common::*;
use flumen_log::*;

/// The fd-counting tests run one at a time (tests of one binary share the process).
static FD_COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn partition_logs_hold_at_most_one_file_each_and_none_when_idle() {
    let _serial = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir();
    let manager = LogManager::open(dir.path()).unwrap();
    const N: i32 = 1000;
    for p in 0..N {
        let tp = TopicPartition::new("t", p);
        let mut log = manager.open_log(&tp, LogConfig::default()).unwrap();
        append(&mut log, 1, 2, 10);
        log.close().unwrap();
    }
    assert_eq!(manager.partitions().len(), N as usize);
    let before = open_fds();
    let mut logs: Vec<PartitionLog> = manager
        .partitions()
        .iter()
        .map(|tp| manager.open_log(tp, LogConfig::default()).unwrap())
        .collect();
    assert!(
        open_fds() < before + 10,
        "opening {N} logs left {} files open",
        open_fds() - before
    );
    for log in &logs {
        assert_eq!(read_all(log, Offset(0)).len(), 1);
    }
    assert!(open_fds() < before + 10, "reading left files open");
    for log in &mut logs {
        append(log, 2, 1, 10);
    }
    let busy = open_fds() - before;
    assert!(
        busy <= N as usize + 10,
        "{busy} files open for {N} active logs"
    );
    for log in &mut logs {
        log.release_handles();
    }
    assert!(open_fds() < before + 10);
    for log in logs {
        log.close().unwrap();
    }
}

#[test]
fn a_log_that_rolls_often_and_never_flushes_holds_at_most_two_files() {
    let _serial = FD_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir();
    let cfg = LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    };
    let before = open_fds();
    let mut log = PartitionLog::open(dir.path(), cfg).unwrap();
    for i in 0..200 {
        append(&mut log, i, 1, 100);
    }
    assert!(log.segment_count() > 100);
    assert!(
        open_fds() <= before + 2,
        "{} files open",
        open_fds() - before
    );
    log.flush().unwrap();
    assert!(open_fds() <= before + 1);
}

#[test]
fn partition_log_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
    assert_send_sync::<LogManager>();
    assert_send_sync::<LogError>();
}

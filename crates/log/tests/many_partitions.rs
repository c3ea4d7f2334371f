//! Scale: many partitions must not hold many open files.

mod common;

use common::*;
use flumen_log::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn partition_logs_hold_at_most_one_file_each_and_none_when_idle() {
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
fn partition_log_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
    assert_send_sync::<LogManager>();
    assert_send_sync::<LogError>();
}

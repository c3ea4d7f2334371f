//! File channel tests: reopen after a simulated crash, torn tails at every byte, corrupt
//! checkpoints, file removal, free space.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::channel::MemoryChannel;
use crate::event::Event;

fn config(root: &Path) -> FileChannelConfig {
    FileChannelConfig {
        checkpoint_dir: root.join("cp"),
        data_dirs: vec![root.join("d1"), root.join("d2")],
        use_dual_checkpoints: true,
        backup_checkpoint_dir: Some(root.join("bcp")),
        checkpoint_interval: Duration::from_secs(3600),
        minimum_required_space: config::MINIMUM_REQUIRED_SPACE_FLOOR,
        capacity: 10_000,
        transaction_capacity: 1000,
        keep_alive: Duration::from_millis(100),
        ..FileChannelConfig::default()
    }
}

/// Opens the channel and waits until replay has queued the recovered events.
async fn open_ch(c: &FileChannelConfig) -> Arc<MemoryChannel> {
    let ch = open("c1", c.clone().into_channel_config()).await.unwrap();
    let log = ch.file_log().unwrap().clone();
    tokio::task::spawn_blocking(move || log.wait_loaded())
        .await
        .unwrap();
    ch
}

async fn put(ch: &Arc<MemoryChannel>, bodies: impl IntoIterator<Item = String>) {
    let mut tx = ch.transaction();
    tx.put_all(bodies.into_iter().map(Event::new)).unwrap();
    tx.commit().await.unwrap();
}

/// Takes `n` events and commits the take.
async fn take(ch: &Arc<MemoryChannel>, n: usize) -> Vec<String> {
    let mut tx = ch.transaction();
    let got = tx.take_batch(n).await.unwrap();
    let out = tx.taken()[..got]
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();
    tx.commit().await.unwrap();
    out
}

async fn drain(ch: &Arc<MemoryChannel>) -> Vec<String> {
    let mut tx = ch.transaction();
    let n = tx.take_batch(1000).await.unwrap();
    let out = tx.taken()[..n]
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();
    tx.rollback();
    out
}

fn names(r: std::ops::Range<usize>) -> Vec<String> {
    r.map(|i| format!("e{i}")).collect()
}

#[tokio::test]
async fn committed_puts_survive_and_committed_takes_stay_taken() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let ch = open_ch(&c).await;
    put(&ch, names(0..10)).await;
    put(&ch, names(10..20)).await;
    assert_eq!(take(&ch, 5).await, names(0..5));
    // An uncommitted put and an uncommitted take.
    let mut tx = ch.transaction();
    tx.put(Event::new("never")).unwrap();
    drop(tx);
    let mut tx = ch.transaction();
    assert_eq!(tx.take_batch(3).await.unwrap(), 3);
    // "kill -9" mid-transaction: what is on disk now is all a restart sees.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    drop(tx);
    drop(ch);
    let c = config(crashed.path());
    let ch = open_ch(&c).await;
    assert_eq!(ch.len(), 15);
    assert_eq!(drain(&ch).await, names(5..20));
    // A checkpoint, then more work, then a crash: replay from the checkpoint.
    ch.file_log().unwrap().checkpoint().unwrap();
    assert_eq!(take(&ch, 5).await, names(5..10));
    put(&ch, names(20..25)).await;
    drop(ch);
    let ch = open_ch(&c).await;
    assert_eq!(drain(&ch).await, names(10..25));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn newest_log(c: &FileChannelConfig) -> PathBuf {
    let mut all: Vec<(u32, PathBuf)> = c
        .data_dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.strip_prefix("log-")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    all.sort();
    all.pop().unwrap().1
}

#[tokio::test]
async fn recovery_at_every_cut_of_the_last_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let ch = open_ch(&c).await;
    put(&ch, names(0..3)).await;
    let log_path = newest_log(&c);
    let before = std::fs::metadata(&log_path).unwrap().len();
    put(&ch, names(3..5)).await;
    let after = std::fs::metadata(&log_path).unwrap().len();
    drop(ch);
    let rel = log_path.strip_prefix(dir.path()).unwrap().to_path_buf();
    for cut in before..=after {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.path().join(&rel))
            .unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let cc = config(copy.path());
        let ch = open_ch(&cc).await;
        let expect = if cut == after {
            names(0..5)
        } else {
            names(0..3)
        };
        assert_eq!(drain(&ch).await, expect, "cut at {cut}");
        // The torn tail was cut off.
        let len = std::fs::metadata(copy.path().join(&rel)).unwrap().len();
        assert!(len >= before && len <= cut, "cut at {cut}: {len}");
        // New work after the cut survives another crash.
        put(&ch, vec!["late".to_string()]).await;
        drop(ch);
        let ch = open_ch(&cc).await;
        assert_eq!(ch.len(), expect.len() + 1, "cut at {cut}");
    }
}

#[tokio::test]
async fn corrupt_checkpoint_falls_back_to_backup_then_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let ch = open_ch(&c).await;
    put(&ch, names(0..10)).await;
    assert_eq!(take(&ch, 4).await, names(0..4));
    ch.file_log().unwrap().checkpoint().unwrap();
    put(&ch, names(10..12)).await;
    drop(ch);
    let cp = c.checkpoint_dir.join(checkpoint::FILE_NAME);
    let bcp = c
        .backup_checkpoint_dir
        .as_ref()
        .unwrap()
        .join(checkpoint::FILE_NAME);
    // Flip a byte of the primary: the backup is used.
    let mut buf = std::fs::read(&cp).unwrap();
    let mid = buf.len() / 2;
    buf[mid] ^= 0xff;
    std::fs::write(&cp, &buf).unwrap();
    let ch = open_ch(&c).await;
    assert_eq!(drain(&ch).await, names(4..12));
    drop(ch);
    // Both corrupt: full replay gives the same result.
    std::fs::write(&cp, b"garbage").unwrap();
    std::fs::write(&bcp, b"").unwrap();
    let ch = open_ch(&c).await;
    assert_eq!(drain(&ch).await, names(4..12));
    drop(ch);
    // A checkpoint listing an event the log lacks is refused too.
    let bad = checkpoint::Checkpoint {
        position: Pointer::new(1000, 8),
        next_tx: 1,
        live: vec![Pointer::new(999, 8)],
    };
    bad.write(&c.checkpoint_dir).unwrap();
    bad.write(c.backup_checkpoint_dir.as_ref().unwrap())
        .unwrap();
    let ch = open_ch(&c).await;
    assert_eq!(drain(&ch).await, names(4..12));
}

#[tokio::test]
async fn fully_taken_files_are_removed_and_dirs_share_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_file_size = 500;
    let ch = open_ch(&c).await;
    for i in 0..20 {
        put(&ch, names(i * 10..i * 10 + 10)).await;
    }
    let log = ch.file_log().unwrap().clone();
    assert!(log.file_count() > 5, "{}", log.file_count());
    for d in &c.data_dirs {
        assert!(std::fs::read_dir(d).unwrap().count() > 2, "{}", d.display());
    }
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(take(&ch, 10).await);
    }
    assert_eq!(got, names(0..200));
    log.checkpoint().unwrap();
    assert_eq!(log.file_count(), 1);
    drop(log);
    drop(ch);
    let ch = open_ch(&c).await;
    assert_eq!(ch.len(), 0);
}

#[tokio::test]
async fn low_disk_space_refuses_puts_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let ch = open_ch(&c).await;
    put(&ch, names(0..3)).await;
    let log = ch.file_log().unwrap().clone();
    log.set_minimum_required_space(u64::MAX);
    let mut tx = ch.transaction();
    tx.put(Event::new("refused")).unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(matches!(err, crate::FlowError::DiskSpace { .. }), "{err}");
    assert!(err.to_string().contains("minimumRequiredSpace"), "{err}");
    assert!(err.is_channel_full());
    // Takes still work, and the refused put reserved nothing.
    assert_eq!(take(&ch, 1).await, names(0..1));
    log.set_minimum_required_space(1);
    put(&ch, names(3..4)).await;
    drop(log);
    drop(ch);
    let ch = open_ch(&c).await;
    assert_eq!(drain(&ch).await, names(1..4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let ch = open_ch(&c).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..20 {
                put(&ch, (0..10).map(|i| format!("{t}-{b}-{i}"))).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = ch.file_log().unwrap().clone();
    let fsyncs = log.stats.fsyncs.load(std::sync::atomic::Ordering::Relaxed);
    assert!(fsyncs <= 160 + 1, "{fsyncs}");
    drop(log);
    drop(ch);
    let ch = open_ch(&c).await;
    assert_eq!(ch.len(), 1600);
}

#[tokio::test]
async fn directories_are_locked() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let _ch = open_ch(&c).await;
    let err = open("c2", c.clone().into_channel_config())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

/// A crash that loses every write no fsync covered: copies the directories and cuts the
/// newest log file back to the last synced position.
fn crash_dropping_unsynced(ch: &Arc<MemoryChannel>, from: &Path, to: &Path) {
    let log = ch.file_log().unwrap();
    let at = log.synced_position();
    copy_dir(from, to);
    let rel = newest_log(&config(from))
        .strip_prefix(from)
        .unwrap()
        .to_path_buf();
    let id: u32 = rel
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .strip_prefix("log-")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(at.file_id(), id, "the newest log file was synced");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(to.join(rel))
        .unwrap();
    f.set_len(at.offset() as u64).unwrap();
}

#[tokio::test]
async fn committed_takes_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    // Every take commit waits for its fsync, as in Flume.
    let flume = |root: &Path| FileChannelConfig {
        take_sync_delay: Duration::ZERO,
        ..config(root)
    };
    let ch = open_ch(&flume(dir.path())).await;
    put(&ch, names(0..10)).await;
    assert_eq!(take(&ch, 4).await, names(0..4));
    let crashed = tempfile::tempdir().unwrap();
    crash_dropping_unsynced(&ch, dir.path(), crashed.path());
    drop(ch);
    let ch = open_ch(&flume(crashed.path())).await;
    assert_eq!(drain(&ch).await, names(4..10));
    // Again after a checkpoint, with two takes in a row.
    ch.file_log().unwrap().checkpoint().unwrap();
    assert_eq!(take(&ch, 2).await, names(4..6));
    assert_eq!(take(&ch, 1).await, names(6..7));
    let crashed2 = tempfile::tempdir().unwrap();
    crash_dropping_unsynced(&ch, crashed.path(), crashed2.path());
    drop(ch);
    let ch = open_ch(&flume(crashed2.path())).await;
    assert_eq!(drain(&ch).await, names(7..10));
}

#[tokio::test]
async fn without_fsync_per_transaction_commits_are_synced_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    let c = FileChannelConfig {
        fsync_per_transaction: false,
        fsync_interval: Duration::from_secs(1),
        ..config(dir.path())
    };
    let ch = open_ch(&c).await;
    let log = ch.file_log().unwrap().clone();
    let synced = log.synced_position();
    put(&ch, names(0..10)).await;
    assert_eq!(
        log.synced_position(),
        synced,
        "the put commit waited for an fsync"
    );
    let killed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), killed.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.synced_position() == synced {
        assert!(std::time::Instant::now() < deadline, "never synced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let durable = tempfile::tempdir().unwrap();
    crash_dropping_unsynced(&ch, dir.path(), durable.path());
    drop(log);
    drop(ch);
    for root in [killed.path(), durable.path()] {
        let ch = open_ch(&config(root)).await;
        assert_eq!(drain(&ch).await, names(0..10), "{}", root.display());
    }
}

#[tokio::test]
async fn delayed_take_syncs_survive_a_process_crash_and_redeliver_after_power_loss() {
    let dir = tempfile::tempdir().unwrap();
    let c = FileChannelConfig {
        take_sync_delay: Duration::from_millis(200),
        ..config(dir.path())
    };
    let ch = open_ch(&c).await;
    put(&ch, names(0..10)).await;
    let log = ch.file_log().unwrap().clone();
    let synced = log.synced_position();
    assert_eq!(take(&ch, 4).await, names(0..4));
    // The take commit returned before its fsync.
    assert_eq!(log.synced_position(), synced);
    // A crash of the process keeps what was written: the take counts.
    let killed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), killed.path());
    // Power loss drops what no fsync covered: the taken events come again (at-least-once).
    let lost = tempfile::tempdir().unwrap();
    crash_dropping_unsynced(&ch, dir.path(), lost.path());
    // Within the delay, the channel syncs the take on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.synced_position() == synced {
        assert!(
            std::time::Instant::now() < deadline,
            "the take was never synced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let durable = tempfile::tempdir().unwrap();
    crash_dropping_unsynced(&ch, dir.path(), durable.path());
    drop(log);
    drop(ch);
    for (root, want) in [
        (killed.path(), names(4..10)),
        (lost.path(), names(0..10)),
        (durable.path(), names(4..10)),
    ] {
        let ch = open_ch(&config(root)).await;
        assert_eq!(drain(&ch).await, want, "{}", root.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_queue_behind_events_replay_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let ch = open_ch(&c).await;
    for b in 0..20 {
        put(&ch, names(b * 100..b * 100 + 100)).await;
    }
    drop(ch);
    // Reopen without waiting for the load: a put commits only once the recovered events
    // are queued, behind them.
    let ch = open("c1", c.clone().into_channel_config()).await.unwrap();
    put(&ch, vec!["new".to_string()]).await;
    assert!(!ch.file_log().unwrap().is_loading());
    assert_eq!(ch.len(), 2001);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(take(&ch, 1000).await);
    }
    let mut want = names(0..2000);
    want.push("new".to_string());
    assert_eq!(got, want);
}

//! The durable `file` channel (Flume's `FileChannel`): the memory channel's queue and
//! transactions, backed by a write-ahead log so that committed events survive `kill -9`
//! and power loss.
//!
//! # On disk
//!
//! - `dataDirs/*/log-<n>`: the log files ([`record`] has the record layout). File `n` is
//!   in data directory `(n - 1) % len`; a file rolls at `maxFileSize`.
//! - `checkpointDir/checkpoint` (and `backupCheckpointDir/checkpoint` with dual
//!   checkpoints): the live put pointers and the log position they are valid at
//!   ([`checkpoint`]), written every `checkpointInterval` and at start-up.
//! - `in_use.lock` in every directory, locked while the channel runs.
//!
//! # Invariants and crashes
//!
//! - A put commit returns only after its records and commit record are fsynced (shared by
//!   concurrent commits: group commit, see [`log`]). A take commit returns once its record
//!   is written: that survives a crash of the process, and the next group fsync, or the
//!   checkpoint thread within `takeSyncDelay`, makes it survive power loss (`takeSyncDelay
//!   = 0`: it waits for its fsync, as in Flume). Without `fsyncPerTransaction` no commit
//!   waits and the log is synced every `fsyncInterval`. After a crash, only events of take
//!   transactions not yet committed (batches in flight) are delivered again, and after a
//!   power loss also those of takes not yet synced (at-least-once).
//! - Replay starts from the newest valid checkpoint (primary, then backup), reading earlier
//!   records only for the events the checkpoint lists; with no usable checkpoint it replays
//!   every file. Puts count only once their commit record is read; a torn or corrupt tail
//!   of the last file is cut off.
//! - A log file is removed once every file up to it holds only taken events and those
//!   takes are synced (at checkpoint time): replay never needs it again.
//! - Events are also kept in memory (the queue); `capacity` bounds that memory. Replay
//!   reads in two passes: the first (through one reused buffer, keeping no event) finds
//!   the live puts, and the channel is ready after it; the second reads the live events
//!   into the queue on a thread of its own while sinks already take, and puts wait until
//!   it is done (so they queue behind the recovered events).
//! - Opening writes no checkpoint: the one replay started from stays valid, as the files
//!   after it are kept until a newer checkpoint is written.

pub mod checkpoint;
pub mod config;
pub mod log;
pub mod record;

use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use config::FileChannelConfig;
pub use log::FileLog;
pub use record::Pointer;

use crate::channel::{MemoryChannel, MemoryChannelConfig};
use crate::error::{FlowError, Result};

impl FileChannelConfig {
    /// The channel settings (capacity, transaction capacity, keep-alive) of this file
    /// channel, carrying the file settings along.
    pub fn into_channel_config(self) -> MemoryChannelConfig {
        MemoryChannelConfig {
            capacity: self.capacity,
            transaction_capacity: self.transaction_capacity,
            keep_alive: self.keep_alive,
            byte_capacity: 0,
            byte_capacity_buffer_percentage: 20,
            file: Some(self),
            kafka: None,
        }
    }
}

/// Opens the file channel `name` described by `config.file`: replay's first pass (finding
/// the live events) runs on a blocking thread before this returns; the events are then
/// read into the queue by a thread of their own while the channel already serves takes
/// (puts wait until they are all queued, so they queue behind them; see
/// [`FileLog::is_loading`]).
pub async fn open(name: &str, config: MemoryChannelConfig) -> Result<Arc<MemoryChannel>> {
    let Some(file) = config.file.clone() else {
        return Ok(config.build(name));
    };
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let (log, rec) = FileLog::open(&name, file)?;
        tracing::info!(
            channel = %name,
            events = rec.len(),
            bytes_read = rec.bytes_read,
            from_checkpoint = rec.from_checkpoint,
            ms = started.elapsed().as_millis() as u64,
            "Replayed the file channel's log; reading its events."
        );
        let total = rec.len();
        let ch = Arc::new(MemoryChannel::with_log(
            &name,
            config,
            log.clone(),
            Vec::new(),
            total,
        ));
        let (weak_ch, weak_log) = (Arc::downgrade(&ch), Arc::downgrade(&log));
        drop(log);
        let thread_name = name.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("replay-{name}"))
            .spawn(move || load_in_background(&thread_name, rec, weak_ch, weak_log));
        if let Err(e) = spawned {
            return Err(FlowError::Io {
                component: format!("channel {name}"),
                message: "cannot start the replay thread".into(),
                source: e,
            });
        }
        Ok(ch)
    })
    .await
    .map_err(|e| FlowError::Io {
        component: "file channel".into(),
        message: "open task failed".into(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Reads the recovered events into the channel, until done or the channel is dropped.
fn load_in_background(
    name: &str,
    rec: log::Recovered,
    ch: std::sync::Weak<MemoryChannel>,
    log: std::sync::Weak<FileLog>,
) {
    let total = rec.len();
    let started = std::time::Instant::now();
    // Only a weak reference to the channel is kept between batches, so dropping the
    // channel ends the load at the next batch.
    let mut queued = 0;
    let r = rec.load(&log, |batch| match ch.upgrade() {
        Some(ch) => {
            queued += batch.len();
            ch.append_recovered(batch);
            true
        }
        None => false,
    });
    if let Err(error) = &r {
        tracing::error!(%error, channel = name, "Cannot read the file channel's recovered events; they stay in the log and are read again at the next start.");
    } else {
        tracing::info!(
            channel = name,
            events = queued,
            ms = started.elapsed().as_millis() as u64,
            "Read the file channel's recovered events."
        );
    }
    if queued < total {
        if let Some(ch) = ch.upgrade() {
            ch.release_recovered(total - queued);
        }
    }
}

/// Writes a last checkpoint of every file channel with `checkpointOnClose` (agent
/// shutdown), so the next start replays nothing.
pub async fn close_all(channels: impl IntoIterator<Item = &Arc<MemoryChannel>>) {
    for ch in channels {
        let Some(log) = ch.file_log().cloned() else {
            continue;
        };
        if !log.config().checkpoint_on_close {
            continue;
        }
        let name = ch.name().to_string();
        match tokio::task::spawn_blocking(move || log.checkpoint()).await {
            Ok(Ok(())) => {
                tracing::info!(channel = %name, "Checkpointed the file channel on close.")
            }
            Ok(Err(error)) => {
                tracing::error!(%error, channel = %name, "Checkpoint on close failed.")
            }
            Err(error) => tracing::error!(%error, channel = %name, "Checkpoint on close failed."),
        }
    }
}

/// The file channel's extra metrics (Flume's FileChannelCounter, plus Flumen's fsync and
/// checkpoint counts).
pub fn attributes(log: &FileLog) -> Vec<(String, String)> {
    let s = &log.stats;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    vec![
        ("Open".into(), "true".into()),
        ("Unhealthy".into(), "0".into()),
        ("EventPutErrorCount".into(), n(&s.put_errors)),
        ("EventTakeErrorCount".into(), n(&s.take_errors)),
        ("CheckpointWriteErrorCount".into(), n(&s.checkpoint_errors)),
        (
            "CheckpointBackupWriteErrorCount".into(),
            n(&s.backup_checkpoint_errors),
        ),
        ("LogFsyncCount".into(), n(&s.fsyncs)),
        ("CheckpointCount".into(), n(&s.checkpoints)),
        ("LogFileCount".into(), log.file_count().to_string()),
    ]
}

#[cfg(test)]
mod tests;

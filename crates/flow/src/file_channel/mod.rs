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
//! - A commit, of puts or of takes, returns only after its records and commit record are
//!   fsynced (shared by concurrent put and take commits: group commit, see [`log`]). After
//!   a crash, only events of take transactions not yet committed (batches in flight) are
//!   delivered again (at-least-once).
//! - Replay starts from the newest valid checkpoint (primary, then backup), reading earlier
//!   records only for the events the checkpoint lists; with no usable checkpoint it replays
//!   every file. Puts count only once their commit record is read; a torn or corrupt tail
//!   of the last file is cut off.
//! - A log file is removed once every file up to it holds only taken events and those
//!   takes are synced (at checkpoint time): replay never needs it again.
//! - Events are also kept in memory (the queue), so replay reads every live event once;
//!   `capacity` bounds that memory.

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

/// Opens the file channel `name` described by `config.file` (replaying its log) on a
/// blocking thread.
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
            events = rec.events.len(),
            bytes_read = rec.bytes_read,
            from_checkpoint = rec.from_checkpoint,
            ms = started.elapsed().as_millis() as u64,
            "Replayed the file channel's log."
        );
        Ok(Arc::new(MemoryChannel::with_log(
            &name, config, log, rec.events,
        )))
    })
    .await
    .map_err(|e| FlowError::Io {
        component: "file channel".into(),
        message: "open task failed".into(),
        source: std::io::Error::other(e.to_string()),
    })?
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

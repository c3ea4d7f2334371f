//! One partition: the storage engine's [`PartitionLog`] plus the idempotent-producer state,
//! behind one mutex.
//!
//! Every method does blocking file I/O (append, read, fsync): call them from a blocking
//! thread (`spawn_blocking`), never from a runtime worker. The log end offset and log start
//! offset are mirrored in atomics so that the Fetch long-poll can check for new data without
//! taking the lock.
//!
//! Producer state is snapshotted to `<log.dirs>/flumen.producers/<topic>-<partition>.json`
//! (temp file + rename) with the log end offset it covers; on open, the batches after that
//! offset are replayed from the log, so the state survives clean and unclean restarts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use flumen_log::{
    AppendOptions, FetchInfo, LogConfig, LogError, LogManager, Offset, PartitionLog, ReadOptions,
    Timestamp, TopicPartition,
};
use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use crate::batch;
use crate::error::{log_error_code, BrokerError, Result};
use crate::producer_state::{ProducerStateMap, SequenceCheck};

/// Directory (inside the log directory) holding producer-state snapshots.
pub const PRODUCER_SNAPSHOT_DIR: &str = "flumen.producers";

/// What a successful append returns to the Produce handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Offset of the first record (the original one for a duplicate).
    pub base_offset: i64,
    /// Broker time stamped on the batch, -1 for CreateTime topics.
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// `Some(offset)`: the flush policy (flush.messages / flush.ms) asks for an fsync; the
    /// acknowledgement must wait until [`Partition::wait_flushed`]`(offset)` returns.
    pub flush_to: Option<i64>,
}

/// What the partition's flusher publishes to waiting producers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flushed {
    /// The recovery point: every offset below it is fsynced.
    offset: i64,
    /// How many flushes failed so far.
    failures: u64,
}

/// A refused append: the Kafka error and a message for `error_message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRefused {
    /// Kafka error.
    pub error: ResponseError,
    /// Human-readable reason.
    pub message: String,
}

struct Inner {
    log: Option<PartitionLog>,
    producers: ProducerStateMap,
    /// Producer state changed since the last snapshot.
    producers_dirty: bool,
    /// Highest offset a producer waits to see flushed (exclusive end).
    flush_requested: i64,
    /// A flusher loop ([`Partition::run_flusher`]) is running for this partition.
    flusher_running: bool,
}

#[derive(Serialize, Deserialize)]
struct ProducerSnapshot {
    /// Log end offset the state covers.
    end_offset: i64,
    state: ProducerStateMap,
}

/// A partition of a topic hosted by this broker.
pub struct Partition {
    tp: TopicPartition,
    inner: Mutex<Inner>,
    end_offset: AtomicI64,
    start_offset: AtomicI64,
    snapshot_path: PathBuf,
    /// The flushed offset (recovery point), watched by producers waiting for an fsync.
    flushed: tokio::sync::watch::Sender<Flushed>,
    /// Number of flushes that ran fsyncs (group commits), for tests and benchmarks.
    fsyncs: AtomicU64,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partition({})", self.tp)
    }
}

fn log_err(tp: &TopicPartition, source: LogError) -> BrokerError {
    BrokerError::Log {
        partition: tp.to_string(),
        source,
    }
}

impl Partition {
    /// Opens (creating if missing) the partition's log and rebuilds its producer state.
    pub fn open(
        manager: &LogManager,
        root: &Path,
        tp: TopicPartition,
        config: LogConfig,
    ) -> Result<Partition> {
        let log = manager.open_log(&tp, config).map_err(|e| log_err(&tp, e))?;
        let snapshot_path = root.join(PRODUCER_SNAPSHOT_DIR).join(format!("{tp}.json"));
        let mut producers = ProducerStateMap::default();
        let mut from = log.log_start_offset().0;
        if let Ok(bytes) = std::fs::read(&snapshot_path) {
            if let Ok(snap) = serde_json::from_slice::<ProducerSnapshot>(&bytes) {
                if snap.end_offset <= log.log_end_offset().0 {
                    producers = snap.state;
                    from = from.max(snap.end_offset);
                }
            }
        }
        // Replay the batches written after the snapshot.
        let end = log.log_end_offset().0;
        while from < end {
            let info = match log.read(ReadOptions {
                offset: Offset(from),
                max_bytes: 1 << 20,
                max_offset: None,
            }) {
                Ok(info) => info,
                Err(error) => {
                    tracing::warn!(%error, partition = %tp, "Cannot replay producer state; idempotence starts fresh.");
                    break;
                }
            };
            let mut next = from;
            let headers: Vec<_> = batch::headers(&info.records).collect();
            for h in &headers {
                next = next.max(h.base_offset + h.last_offset_delta as i64 + 1);
            }
            producers.rebuild_from(headers.into_iter().filter(|h| h.base_offset >= from));
            if next <= from {
                break;
            }
            from = next;
        }
        let (flushed, _) = tokio::sync::watch::channel(Flushed {
            offset: log.recovery_point().0,
            failures: 0,
        });
        let partition = Partition {
            flushed,
            fsyncs: AtomicU64::new(0),
            end_offset: AtomicI64::new(log.log_end_offset().0),
            start_offset: AtomicI64::new(log.log_start_offset().0),
            tp,
            inner: Mutex::new(Inner {
                log: Some(log),
                producers,
                producers_dirty: false,
                flush_requested: 0,
                flusher_running: false,
            }),
            snapshot_path,
        };
        Ok(partition)
    }

    /// The topic-partition.
    pub fn tp(&self) -> &TopicPartition {
        &self.tp
    }

    /// The log end offset (= high watermark on one node), without locking.
    pub fn end_offset(&self) -> i64 {
        self.end_offset.load(Ordering::Acquire)
    }

    /// The log start offset, without locking.
    pub fn start_offset(&self) -> i64 {
        self.start_offset.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> std::result::Result<T, LogError>,
    ) -> Result<T> {
        let mut inner = self.lock();
        match inner.log.as_mut() {
            Some(log) => f(log).map_err(|e| log_err(&self.tp, e)),
            None => Err(BrokerError::Task(format!(
                "partition {} is closed",
                self.tp
            ))),
        }
    }

    fn refresh_offsets(&self, log: &PartitionLog) {
        self.end_offset
            .store(log.log_end_offset().0, Ordering::Release);
        self.start_offset
            .store(log.log_start_offset().0, Ordering::Release);
    }

    /// Appends the record batches of one Produce partition entry.
    pub fn append(
        &self,
        records: &[u8],
        now_ms: i64,
    ) -> std::result::Result<AppendResult, AppendRefused> {
        let refuse = |error: ResponseError, message: String| AppendRefused { error, message };
        let first = batch::parse_header(records).ok_or_else(|| {
            refuse(
                ResponseError::CorruptMessage,
                "record batch shorter than its header".into(),
            )
        })?;
        if first.magic != 2 {
            return Err(refuse(
                ResponseError::InvalidRecord,
                format!("unsupported message format magic {}", first.magic),
            ));
        }
        if first.is_control() {
            return Err(refuse(
                ResponseError::InvalidRecord,
                "clients may not send control batches".into(),
            ));
        }
        if first.is_transactional() {
            return Err(refuse(
                ResponseError::InvalidTxnState,
                "transactions are not supported".into(),
            ));
        }
        let idempotent = first.producer_id >= 0;
        if idempotent && first.size != records.len() {
            return Err(refuse(
                ResponseError::InvalidRecord,
                "an idempotent produce must carry exactly one batch".into(),
            ));
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(log) = inner.log.as_mut() else {
            return Err(refuse(
                ResponseError::UnknownTopicOrPartition,
                format!("partition {} is closed", self.tp),
            ));
        };
        if idempotent {
            match inner.producers.check(&first) {
                Ok(SequenceCheck::Append) => {}
                Ok(SequenceCheck::Duplicate { first_offset }) => {
                    // The original append may still wait for its fsync: so does the retry.
                    let end = first_offset + first.last_offset_delta as i64 + 1;
                    let flush_to = (log.recovery_point().0 < end
                        && inner.flush_requested > first_offset)
                        .then_some(end);
                    return Ok(AppendResult {
                        base_offset: first_offset,
                        log_append_time: -1,
                        log_start_offset: log.log_start_offset().0,
                        flush_to,
                    });
                }
                Err(error) => {
                    return Err(refuse(
                        error,
                        format!(
                            "producer {} epoch {} sequence {} refused",
                            first.producer_id, first.producer_epoch, first.base_sequence
                        ),
                    ))
                }
            }
        }
        let mut buf = records.to_vec();
        let info = log
            .append(
                &mut buf,
                AppendOptions {
                    now: Timestamp(now_ms),
                },
            )
            .map_err(|e| AppendRefused {
                error: log_error_code(&e),
                message: e.to_string(),
            })?;
        if idempotent {
            inner.producers.record(&first, info.first_offset.0);
            inner.producers_dirty = true;
        }
        // Group commit: the fsync is left to the partition's flusher (see wait_flushed), so
        // concurrent producers' appends share one fsync.
        let flush_to = log
            .needs_flush(Timestamp(now_ms))
            .then(|| log.log_end_offset().0);
        self.end_offset
            .store(log.log_end_offset().0, Ordering::Release);
        self.start_offset
            .store(info.log_start_offset.0, Ordering::Release);
        Ok(AppendResult {
            base_offset: info.first_offset.0,
            log_append_time: info.log_append_time.map(|t| t.0).unwrap_or(-1),
            log_start_offset: info.log_start_offset.0,
            flush_to,
        })
    }

    /// Number of group-commit flushes that ran fsyncs on this partition.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// The recovery point: every offset below it is on disk.
    pub fn recovery_point(&self) -> i64 {
        self.lock()
            .log
            .as_ref()
            .map(|l| l.recovery_point().0)
            .unwrap_or(-1)
    }

    /// Waits (asynchronously) until every offset below `offset` is fsynced, starting the
    /// partition's flusher on a blocking thread if none runs. Appends keep going while the
    /// flusher's fsync runs; the next fsync covers all of them (group commit).
    pub async fn wait_flushed(self: &Arc<Self>, offset: i64) -> Result<()> {
        let mut rx = self.flushed.subscribe();
        let (failures, spawn) = {
            let mut inner = self.lock();
            let Some(log) = inner.log.as_ref() else {
                return Err(self.closed());
            };
            if log.recovery_point().0 >= offset {
                return Ok(());
            }
            inner.flush_requested = inner.flush_requested.max(offset);
            let spawn = !inner.flusher_running;
            inner.flusher_running = true;
            (rx.borrow().failures, spawn)
        };
        if spawn {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.run_flusher());
        }
        let seen = rx
            .wait_for(|f| f.offset >= offset || f.failures > failures)
            .await
            .map(|f| *f)
            .map_err(|_| self.closed())?;
        if seen.offset >= offset {
            Ok(())
        } else {
            Err(BrokerError::Task(format!(
                "flush of partition {} failed",
                self.tp
            )))
        }
    }

    fn closed(&self) -> BrokerError {
        BrokerError::Task(format!("partition {} is closed", self.tp))
    }

    /// The flusher loop (blocking): `begin_flush` under the lock, fsync without it,
    /// `complete_flush` under it, publish the new recovery point; again while producers
    /// wait for more. The caller has set `flusher_running`.
    fn run_flusher(&self) {
        loop {
            let pending = {
                let mut inner = self.lock();
                let target = inner.flush_requested;
                let Some(log) = inner.log.as_mut() else {
                    inner.flusher_running = false;
                    self.publish(None);
                    return;
                };
                let rp = log.recovery_point().0;
                if rp >= target {
                    inner.flusher_running = false;
                    self.publish(Some(rp));
                    return;
                }
                match log.begin_flush() {
                    Ok(p) => p,
                    Err(error) => {
                        inner.flusher_running = false;
                        tracing::error!(%error, partition = %self.tp, "Flush failed.");
                        self.publish(None);
                        return;
                    }
                }
            };
            let synced = pending.sync();
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            let mut inner = self.lock();
            let done = match (synced, inner.log.as_mut()) {
                (Ok(()), Some(log)) => log.complete_flush(pending).map(|_| log.recovery_point().0),
                (Err(e), _) => Err(e),
                (Ok(()), None) => {
                    inner.flusher_running = false;
                    self.publish(None);
                    return;
                }
            };
            match done {
                Ok(rp) => self.publish(Some(rp)),
                Err(error) => {
                    inner.flusher_running = false;
                    tracing::error!(%error, partition = %self.tp, "Flush failed.");
                    self.publish(None);
                    return;
                }
            }
        }
    }

    /// Publishes a new recovery point (`Some`) or a failure (`None`) to waiting producers;
    /// called with the partition lock held, so a waiter registering concurrently reads a
    /// failure count that includes every failure that could have preceded its request.
    fn publish(&self, flushed: Option<i64>) {
        self.flushed.send_modify(|f| match flushed {
            Some(rp) => f.offset = f.offset.max(rp),
            None => f.failures += 1,
        });
    }

    /// Reads whole batches from `offset`, at most about `max_bytes` (at least one batch).
    pub fn read(&self, offset: i64, max_bytes: u32) -> Result<FetchInfo> {
        self.with_log(|log| {
            log.read(ReadOptions {
                offset: Offset(offset),
                max_bytes,
                max_offset: None,
            })
        })
    }

    /// ListOffsets: the offset and timestamp for a target (-1 latest, -2 earliest, -3 max
    /// timestamp, ≥0 first record with timestamp ≥ target); (-1, -1) when there is none.
    pub fn list_offset(&self, target: i64) -> Result<(i64, i64)> {
        self.with_log(|log| {
            Ok(match target {
                -1 => (log.high_watermark().0, -1),
                -2 | -4 | -5 => (log.log_start_offset().0, -1),
                -3 => log
                    .max_timestamp_offset()
                    .map(|(o, t)| (o.0, t.0))
                    .unwrap_or((-1, -1)),
                ts => match log.offset_for_timestamp(Timestamp(ts))? {
                    Some((o, t)) => refine_in_compressed_batch(log, o.0, ts).unwrap_or((o.0, t.0)),
                    None => (-1, -1),
                },
            })
        })
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high watermark).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let start = self.with_log(|log| {
            let target = if offset == -1 {
                log.high_watermark().0
            } else {
                offset
            };
            log.delete_records_before(Offset(target)).map(|o| o.0)
        })?;
        self.start_offset.store(start, Ordering::Release);
        Ok(start)
    }

    /// Runs retention; returns whether anything was deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<()> {
        let mut inner = self.lock();
        if let Some(log) = inner.log.as_mut() {
            log.apply_retention(Timestamp(now_ms))
                .map_err(|e| log_err(&self.tp, e))?;
            self.refresh_offsets(log);
        }
        Ok(())
    }

    /// fsyncs if the flush policy (flush.messages / flush.ms) asks for it (blocking), through
    /// the same flusher loop as producers' group commits; does nothing if one is running.
    pub fn flush_if_needed(&self, now_ms: i64) -> Result<()> {
        let mut inner = self.lock();
        let Some(log) = inner.log.as_ref() else {
            return Ok(());
        };
        if !log.needs_flush(Timestamp(now_ms)) {
            return Ok(());
        }
        let leo = log.log_end_offset().0;
        inner.flush_requested = inner.flush_requested.max(leo);
        if inner.flusher_running {
            return Ok(());
        }
        inner.flusher_running = true;
        drop(inner);
        self.run_flusher();
        Ok(())
    }

    /// Replaces the log configuration (after AlterConfigs).
    pub fn set_config(&self, config: LogConfig) {
        let mut inner = self.lock();
        if let Some(log) = inner.log.as_mut() {
            log.set_config(config);
        }
    }

    /// Size of the partition on disk.
    pub fn size_bytes(&self) -> u64 {
        self.lock()
            .log
            .as_ref()
            .map(|l| l.size_bytes())
            .unwrap_or(0)
    }

    /// Writes the producer-state snapshot if it changed.
    pub fn snapshot_producers(&self) -> Result<()> {
        self.write_producer_snapshot(false)
    }

    /// Writes the producer-state snapshot; `always`: even if unchanged (at close, so that
    /// the next start replays nothing).
    fn write_producer_snapshot(&self, always: bool) -> Result<()> {
        let mut inner = self.lock();
        if !inner.producers_dirty && !always {
            return Ok(());
        }
        let Some(log) = inner.log.as_ref() else {
            return Ok(());
        };
        let snap = ProducerSnapshot {
            end_offset: log.log_end_offset().0,
            state: inner.producers.clone(),
        };
        write_snapshot(&self.snapshot_path, &snap)?;
        inner.producers_dirty = false;
        Ok(())
    }

    /// Flushes, snapshots producer state and closes the log (clean-shutdown marker).
    pub fn close(&self) -> Result<()> {
        self.write_producer_snapshot(true)?;
        let log = self.lock().log.take();
        match log {
            Some(log) => log.close().map_err(|e| log_err(&self.tp, e)),
            None => Ok(()),
        }
    }

    /// Closes the log without flushing and forgets the producer snapshot (topic deletion);
    /// the caller then deletes the log directory.
    pub fn retire(&self) {
        let log = self.lock().log.take();
        drop(log);
        let _ = std::fs::remove_file(&self.snapshot_path);
    }
}

/// The log answers a timestamp lookup exactly for uncompressed batches; for a compressed
/// batch it gives the batch. Decompress that batch and find the first record at or after
/// `offset` whose timestamp is ≥ `target` (Kafka does the same).
fn refine_in_compressed_batch(log: &PartitionLog, offset: i64, target: i64) -> Option<(i64, i64)> {
    let info = log
        .read(ReadOptions {
            offset: Offset(offset),
            max_bytes: 1,
            max_offset: None,
        })
        .ok()?;
    let header = batch::parse_header(&info.records)?;
    if header.compression() == 0 || info.records.len() < header.size {
        return None;
    }
    let mut buf = bytes::Bytes::copy_from_slice(&info.records[..header.size]);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records
        .iter()
        .find(|r| r.offset >= offset && r.timestamp >= target)
        .map(|r| (r.offset, r.timestamp))
}

fn write_snapshot(path: &Path, snap: &ProducerSnapshot) -> Result<()> {
    let io = |context: String| move |source| BrokerError::Io { context, source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    }
    let bytes = serde_json::to_vec(snap).map_err(|e| BrokerError::Task(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("rename {}", path.display())))?;
    Ok(())
}

//! Flumen's storage engine: partition logs made of segments in Kafka's on-disk format.
//!
//! # On-disk layout
//!
//! ```text
//! <log dir>/<topic>-<partition>/
//!     00000000000000000000.log        record batches (magic 2) exactly as produced, back to back
//!     00000000000000000000.index      sparse offset index: (relative offset u32, position u32)
//!     00000000000000000000.timeindex  time index: (timestamp i64, relative offset u32)
//!     recovery-point-offset-checkpoint  everything below this offset was fsynced
//!     log-start-offset-checkpoint       log start offset set by DeleteRecords
//!     .kafka_cleanshutdown              present only after a clean close
//! ```
//!
//! # Crashes
//!
//! An append lands in the page cache; `flush` fsyncs it (group commit: the broker calls
//! `flush` once for many appends). Opening a log without the clean-shutdown marker re-scans
//! the segments from the one holding the recovery point, verifying each batch's length and
//! CRC-32C, truncates at the first invalid batch, drops later segments and rebuilds the
//! indexes. Index files are always rebuildable from the `.log`. See `docs/storage.md`.
//!
//! The engine is synchronous; callers in async code run it on blocking threads.

pub mod batch;
mod checkpoint;
mod config;
mod error;
pub mod index;
mod manager;
mod partition_log;
pub mod segment;
pub mod storage;
mod types;

pub use checkpoint::{CLEAN_SHUTDOWN_FILE, LOG_START_FILE, RECOVERY_POINT_FILE};
pub use config::LogConfig;
pub use error::LogError;
pub use manager::LogManager;
pub use partition_log::{
    AppendInfo, AppendOptions, FetchInfo, PartitionLog, ReadOptions, RetentionInfo,
};
pub use types::{FilePosition, Offset, RelativeOffset, Timestamp, TimestampType, TopicPartition};

//! The storage engine's error type.

use crate::types::Offset;

/// Everything that can go wrong in the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A read or lookup asked for an offset outside `[log_start, log_end]`.
    #[error("offset {offset} is out of range: the log holds offsets {log_start} to {log_end} (exclusive)")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: Offset,
        /// The first offset kept.
        log_start: Offset,
        /// The next offset to be assigned.
        log_end: Offset,
    },
    /// A batch is bigger than the topic's `max.message.bytes`.
    #[error("record batch of {size} bytes is larger than max.message.bytes ({limit})")]
    RecordTooLarge {
        /// Size of the batch, including its 12-byte log overhead.
        size: usize,
        /// The configured limit.
        limit: u32,
    },
    /// A batch failed validation (bad CRC, bad length, bad record count, ...).
    #[error("corrupt record batch: {reason}")]
    CorruptBatch {
        /// What was wrong.
        reason: String,
    },
    /// A batch with a legacy message format (magic 0 or 1) or an unknown magic byte.
    #[error("unsupported message format magic {magic}: only magic 2 record batches are accepted")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// An append carried no batch at all.
    #[error("append with no record batch")]
    EmptyAppend,
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the engine was doing, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    pub(crate) fn corrupt(reason: impl Into<String>) -> LogError {
        LogError::CorruptBatch {
            reason: reason.into(),
        }
    }
}

/// Adds context to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, LogError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, LogError> {
        self.map_err(|source| LogError::Io {
            context: context(),
            source,
        })
    }
}

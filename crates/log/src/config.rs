//! Per-partition settings, named after Kafka's topic configs.

use crate::types::TimestampType;

/// Per-partition settings. Each field carries the Kafka topic-config name and Kafka's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll a new segment when the active one would grow past this size.
    /// Default 1 GiB (Kafka's default). Clamped to `i32::MAX` because positions are 32-bit.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first batch is older than this.
    /// Default 7 days (Kafka's default).
    pub segment_ms: i64,
    /// `retention.ms`: delete closed segments whose newest timestamp is older than this;
    /// -1 keeps forever. Default 7 days (Kafka's default).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest closed segments while the log is bigger than this;
    /// -1 means no limit. Default -1 (Kafka's default).
    pub retention_bytes: i64,
    /// `max.message.bytes`: largest batch accepted, including its 12-byte log overhead.
    /// Default 1048588 (Kafka's default).
    pub max_message_bytes: u32,
    /// `index.interval.bytes`: bytes of log between two sparse index entries.
    /// Default 4096 (Kafka's default).
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: maximum size of each index file; a full index rolls the segment.
    /// Default 10 MiB (Kafka's default).
    pub segment_index_bytes: u32,
    /// `flush.messages`: fsync after this many records; `None` never forces a flush
    /// (Kafka's default is Long.MAX_VALUE, i.e. rely on the page cache).
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when unflushed data is older than this; `None` never forces a flush
    /// (Kafka's default is Long.MAX_VALUE).
    pub flush_ms: Option<u64>,
    /// `message.timestamp.type`: keep producer timestamps or stamp the broker's clock.
    /// Default `CreateTime` (Kafka's default).
    pub message_timestamp_type: TimestampType,
}

impl Default for LogConfig {
    fn default() -> Self {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_messages: None,
            flush_ms: None,
            message_timestamp_type: TimestampType::CreateTime,
        }
    }
}

impl LogConfig {
    /// `segment_bytes` clamped to what 32-bit index positions can address.
    pub(crate) fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, i32::MAX as u64)
    }

    /// Maximum number of entries of the offset index (8 bytes each).
    pub(crate) fn max_index_entries(&self) -> usize {
        (self.segment_index_bytes as usize / 8).max(1)
    }

    /// Maximum number of entries of the time index (12 bytes each).
    pub(crate) fn max_time_index_entries(&self) -> usize {
        (self.segment_index_bytes as usize / 12).max(1)
    }
}

//! The crate's one error type.

use std::fmt;

/// Where a configuration value came from: a file and a 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The configuration file (as given on the command line), or `-D` / `<memory>`.
    pub file: std::sync::Arc<str>,
    /// The 1-based line where the property starts (0 when not from a file).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Errors of the agent runtime.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A configuration property of a component is missing or invalid.
    #[error("{component}: property `{key}`{}: {message}", origin.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    Config {
        /// The component, e.g. `source r1`.
        component: String,
        /// The property key inside the component, e.g. `port`.
        key: String,
        /// Where the property was written, if it was.
        origin: Option<Origin>,
        /// What is wrong.
        message: String,
    },
    /// A configuration file could not be read or parsed.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A component could not acquire a resource at start (bind a port, open a directory).
    #[error("{component}: {message}: {source}")]
    Start {
        /// The component, e.g. `source r1`.
        component: String,
        /// What was being done.
        message: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The channel has no room for the committed events (Flume's `ChannelFullException`).
    #[error("Space for commit to queue couldn't be acquired. Sinks are likely not keeping up with sources, or the buffer size is too tight (channel {channel})")]
    ChannelFull {
        /// The channel's name.
        channel: String,
    },
    /// The channel's byte capacity is exhausted.
    #[error("Put queue for MemoryTransaction of byteCapacity {byte_capacity} bytes cannot accept {bytes} more bytes; the channel {channel} is full (byteCapacity)")]
    ChannelBytesFull {
        /// The channel's name.
        channel: String,
        /// The configured byte capacity (after the buffer percentage).
        byte_capacity: u64,
        /// Bytes the transaction tried to add.
        bytes: u64,
    },
    /// A transaction held more puts or takes than the channel's transactionCapacity.
    #[error("{what} for MemoryTransaction of capacity {capacity} full, consider committing more frequently, increasing capacity or increasing thread count (channel {channel})")]
    TransactionFull {
        /// `Put queue` or `Take list`.
        what: &'static str,
        /// The channel's name.
        channel: String,
        /// transactionCapacity.
        capacity: usize,
    },
    /// A file channel refuses puts: a directory has less free space than
    /// `minimumRequiredSpace`.
    #[error("channel {channel}: only {available} bytes usable in {dir}, below minimumRequiredSpace ({required} bytes); puts are refused until space is freed")]
    DiskSpace {
        /// The channel's name.
        channel: String,
        /// The directory short of space.
        dir: String,
        /// Bytes available there.
        available: u64,
        /// minimumRequiredSpace.
        required: u64,
    },
    /// A sink failed to deliver a batch (Flume's `EventDeliveryException`).
    #[error("sink {sink}: {message}")]
    Delivery {
        /// The sink's name.
        sink: String,
        /// What failed.
        message: String,
    },
    /// The Kafka channel could not produce its puts or commit its takes' offsets.
    #[error("channel {channel} (Kafka topic {topic}): {message}")]
    KafkaChannel {
        /// The channel's name.
        channel: String,
        /// Its topic.
        topic: String,
        /// What failed.
        message: String,
    },
    /// An I/O error in a running component.
    #[error("{component}: {message}: {source}")]
    Io {
        /// The component.
        component: String,
        /// What was being done.
        message: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl FlowError {
    /// A configuration error for `component`'s `key`.
    pub fn config(
        component: impl Into<String>,
        key: impl Into<String>,
        origin: Option<Origin>,
        message: impl Into<String>,
    ) -> Self {
        FlowError::Config {
            component: component.into(),
            key: key.into(),
            origin,
            message: message.into(),
        }
    }

    /// True for the errors a source reports as "channel full" (HTTP 503).
    pub fn is_channel_full(&self) -> bool {
        matches!(
            self,
            FlowError::ChannelFull { .. }
                | FlowError::ChannelBytesFull { .. }
                | FlowError::DiskSpace { .. }
        )
    }
}

/// The crate's result type.
pub type Result<T, E = FlowError> = std::result::Result<T, E>;

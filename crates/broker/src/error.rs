//! The broker's error type, and its mapping to Kafka error codes (the one place where that
//! mapping lives).

use kafka_protocol::error::ResponseError;

/// Everything that can go wrong in the broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A configuration key has a value the broker cannot use.
    #[error("invalid value {value:?} for configuration key `{key}`: {reason}")]
    InvalidConfig {
        /// The configuration key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ConfigFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Binding or serving a listener failed.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading or writing the broker's metadata store failed.
    #[error("metadata store {path}: {reason}")]
    Metadata {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The storage engine failed.
    #[error("partition {partition}: {source}")]
    Log {
        /// The topic-partition, as `topic-N`.
        partition: String,
        /// The engine's error.
        source: flumen_log::LogError,
    },
    /// A request body could not be decoded at its version.
    #[error("cannot decode {api} v{version} request: {reason}")]
    Decode {
        /// The API name.
        api: &'static str,
        /// The request version.
        version: i16,
        /// The decoder's message.
        reason: String,
    },
    /// A response could not be encoded (a bug: a field does not fit the version).
    #[error("cannot encode {api} v{version} response: {reason}")]
    Encode {
        /// The API name.
        api: &'static str,
        /// The response version.
        version: i16,
        /// The encoder's message.
        reason: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// Any other I/O error, with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl BrokerError {
    /// The Kafka error this error is reported as to clients.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            BrokerError::Log { source, .. } => log_error_code(source),
            BrokerError::Decode { .. } => ResponseError::InvalidRequest,
            BrokerError::InvalidConfig { .. } => ResponseError::InvalidConfig,
            _ => ResponseError::UnknownServerError,
        }
    }

    /// The Kafka error code for this error.
    pub fn code(&self) -> i16 {
        self.kafka_error().code()
    }
}

/// Maps a storage-engine error to the Kafka error clients expect.
pub fn log_error_code(error: &flumen_log::LogError) -> ResponseError {
    use flumen_log::LogError;
    match error {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage,
        LogError::UnsupportedMagic { .. } => ResponseError::InvalidRecord,
        _ => ResponseError::KafkaStorageError,
    }
}

/// Result alias for the broker.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

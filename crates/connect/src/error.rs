//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the Connect worker, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration file is malformed.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A required key is absent (Kafka's wording).
    #[error("Missing required configuration \"{key}\" which has no default value.")]
    Missing {
        /// The key.
        key: String,
    },
    /// A key has a value that cannot be used (Kafka's wording).
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Several problems in one connector configuration (REST 400).
    #[error("Connector configuration is invalid and contains the following {} error(s):\n{}", .0.len(), .0.join("\n"))]
    InvalidConfig(Vec<String>),
    /// `connector.class` names no built-in connector.
    #[error("Failed to find any class that implements Connector and which name matches {0}, available connectors are: org.apache.kafka.connect.file.FileStreamSinkConnector, org.apache.kafka.connect.file.FileStreamSourceConnector")]
    UnknownConnectorClass(String),
    /// A converter class is not one Flumen ships.
    #[error("Invalid value {0} for configuration converter: Class {0} could not be found (available: org.apache.kafka.connect.storage.StringConverter, org.apache.kafka.connect.json.JsonConverter, org.apache.kafka.connect.converters.ByteArrayConverter)")]
    UnknownConverter(String),
    /// A connector with this name exists already.
    #[error("Connector {0} already exists")]
    AlreadyExists(String),
    /// No connector with this name.
    #[error("Connector {0} not found")]
    NotFound(String),
    /// No such task.
    #[error("Task {0} not found")]
    TaskNotFound(String),
    /// The connector must be stopped first (offset changes).
    #[error("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{0}/stop' endpoint")]
    NotStopped(String),
    /// A request that cannot be served as asked (REST 400, Kafka's `BadRequestException`).
    #[error("{0}")]
    BadRequest(String),
    /// A request the worker's settings forbid (REST 403).
    #[error("{0}")]
    Forbidden(String),
    /// A record cannot be converted (Kafka's `DataException` texts).
    #[error("{0}")]
    Conversion(String),
    /// The offset file could not be written.
    #[error("offset store {path}: {source}")]
    OffsetStore {
        /// The offsets file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The sink file cannot be opened (Kafka's wording).
    #[error("Couldn't find or create file '{path}' for FileStreamSinkTask: {source}")]
    SinkFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The REST listener cannot be bound.
    #[error("Unable to initialize REST server on {addr}: {source}. Another Connect worker may be using this port: give each worker its own port with `listeners=http://:PORT` in the worker properties")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Kafka client failed.
    #[error("Kafka client error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Another I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = ConnectError> = std::result::Result<T, E>;

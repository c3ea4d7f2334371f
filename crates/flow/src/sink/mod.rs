//! Sinks: take events out of a channel inside a transaction and write them; the take is
//! committed only after the write succeeded (at-least-once).

pub mod avro;
pub mod file_roll;
pub mod hdfs;
pub mod kafka;
pub mod logger;
pub mod null;
pub mod processor;
pub mod rpc;
pub mod runner;
pub mod thrift;

use std::sync::Arc;

use crate::channel::MemoryChannel;
use crate::config::types::{self, Resolved, SinkType};
use crate::config::ComponentConfig;
use crate::error::Result;
use crate::monitoring::CounterGroup;
pub use crate::source::BoxFuture;

/// What one `process()` call achieved (Flume's `Sink.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Events were delivered; call again at once.
    Ready,
    /// Nothing to do (empty channel); the runner backs off.
    Backoff,
}

/// A built sink.
pub trait Sink: Send {
    /// The sink's name.
    fn name(&self) -> &str;
    /// The channel it takes from.
    fn channel(&self) -> &Arc<MemoryChannel>;
    /// Its counters, when Flume gives this sink type a SinkCounter.
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        None
    }
    /// One transaction: take a batch, write it, commit (or roll back and fail).
    fn process(&mut self) -> BoxFuture<'_, Result<Status>>;
    /// Flushes and closes what the sink holds open.
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// The configuration of any built-in sink.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// `null`
    Null(null::NullConfig),
    /// `logger`
    Logger(logger::LoggerConfig),
    /// `file_roll`
    FileRoll(file_roll::FileRollConfig),
    /// `hdfs`
    Hdfs(Box<hdfs::HdfsConfig>),
    /// `org.apache.flume.sink.kafka.KafkaSink`
    Kafka(kafka::KafkaSinkConfig),
    /// `avro`
    Avro(avro::AvroSinkConfig),
    /// `thrift`
    Thrift(thrift::ThriftSinkConfig),
}

impl SinkConfig {
    /// Resolves the type and reads the properties.
    pub fn from_component(c: &ComponentConfig) -> Result<Self> {
        let ctx = &c.ctx;
        match types::sink(&c.type_name) {
            Resolved::Builtin(SinkType::Null) => {
                Ok(SinkConfig::Null(null::NullConfig::from_context(ctx)?))
            }
            Resolved::Builtin(SinkType::Logger) => {
                Ok(SinkConfig::Logger(logger::LoggerConfig::from_context(ctx)?))
            }
            Resolved::Builtin(SinkType::FileRoll) => Ok(SinkConfig::FileRoll(
                file_roll::FileRollConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SinkType::Hdfs) => Ok(SinkConfig::Hdfs(Box::new(
                hdfs::HdfsConfig::from_context(ctx)?,
            ))),
            Resolved::Builtin(SinkType::Kafka) => Ok(SinkConfig::Kafka(
                kafka::KafkaSinkConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SinkType::Avro) => {
                Ok(SinkConfig::Avro(avro::AvroSinkConfig::from_context(ctx)?))
            }
            Resolved::Builtin(SinkType::Thrift) => Ok(SinkConfig::Thrift(
                thrift::ThriftSinkConfig::from_context(ctx)?,
            )),
            other => Err(ctx.error("type", types::describe(&other, &c.type_name))),
        }
    }

    /// The batch size checked against the channel's transactionCapacity, with its key.
    pub fn batch_size(&self) -> Option<(usize, &'static str)> {
        match self {
            SinkConfig::Null(c) => Some((c.batch_size, "batchSize")),
            SinkConfig::FileRoll(c) => Some((c.batch_size, "sink.batchSize")),
            SinkConfig::Hdfs(c) => Some((c.batch_size, "hdfs.batchSize")),
            SinkConfig::Kafka(c) => Some((c.batch_size, "flumeBatchSize")),
            SinkConfig::Avro(c) => Some((c.rpc.batch_size, "batch-size")),
            SinkConfig::Thrift(c) => Some((c.rpc.batch_size, "batch-size")),
            SinkConfig::Logger(_) => None,
        }
    }

    /// Acquires resources and returns the runnable sink.
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> Result<Box<dyn Sink>> {
        Ok(match self {
            SinkConfig::Null(c) => Box::new(c.build(name, channel)),
            SinkConfig::Logger(c) => Box::new(c.build(name, channel)),
            SinkConfig::FileRoll(c) => Box::new(c.build(name, channel)?),
            SinkConfig::Hdfs(c) => Box::new(c.build(name, channel)?),
            SinkConfig::Kafka(c) => Box::new(c.build(name, channel)?),
            SinkConfig::Avro(c) => Box::new(c.build(name, channel)?),
            SinkConfig::Thrift(c) => Box::new(c.build(name, channel)?),
        })
    }
}

//! Flumen's agent runtime: Flume configuration files, sources, channels and sinks.
//!
//! The vocabulary is Flume's: an [`event::Event`] (headers + body) enters through a
//! [`source::Source`], passes the source's interceptors ([`interceptor`]) and
//! [`selector::ChannelSelector`] in a [`channel_processor::ChannelProcessor`], is put in a
//! [`channel::MemoryChannel`] inside a [`channel::Transaction`], and is taken out by a
//! [`sink::Sink`] driven by a [`sink::processor::SinkProcessor`] in a sink runner.
//! [`config`] reads Flume's properties files; [`agent`] turns a validated configuration
//! into running tasks; [`monitoring`] keeps Flume's counters and serves them over HTTP.
//! [`file_channel`] backs the same channel with a write-ahead log (`type = file`),
//! [`kafka_channel`] with a Kafka topic (`org.apache.flume.channel.kafka.KafkaChannel`).

pub mod agent;
pub mod avro_rpc;
pub mod channel;
pub mod channel_processor;
pub mod config;
pub mod error;
pub mod event;
pub mod file_channel;
pub mod interceptor;
pub mod kafka_channel;
pub mod monitoring;
pub mod selector;
pub mod sink;
pub mod source;
pub mod thrift_rpc;
pub mod tls;

pub use error::{FlowError, Result};
pub use event::Event;

//! Flumen's Kafka Connect standalone worker (`flumen connect-standalone`).
//!
//! A [`worker::Worker`] runs connectors from Connect's properties files unchanged: the
//! built-in `FileStreamSource` ([`source`]) tails a file into a topic through a Kafka
//! producer, the built-in `FileStreamSink` ([`sink`]) appends every record of its topics to a
//! file through a Kafka consumer. Records pass through Connect's [`converter`]s
//! (`StringConverter`, `JsonConverter` with or without its schema envelope,
//! `ByteArrayConverter`). Source positions (and sink positions) live in the
//! [`offsets::OffsetStore`] file, rewritten crash-safely (temp file + rename). The [`rest`]
//! module serves Connect's REST API on `listeners` (default `http://:8083`).
//!
//! Delivery is at-least-once by construction: a source position is stored only after the
//! broker acknowledged every record up to it; a sink position is stored (and committed to
//! the group `connect-<name>` when the cluster has a group coordinator) only after the sink
//! file was flushed.

pub mod config;
pub mod converter;
pub mod error;
pub mod lines;
pub mod offsets;
pub mod rest;
pub mod sink;
pub mod source;
pub mod task;
pub mod worker;

pub use error::{ConnectError, Result};

//! `null`: takes events and discards them (Flume's `NullSink`).

use std::sync::Arc;

use super::{BoxFuture, Sink, Status};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::Result;

/// Settings of the `null` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NullConfig {
    /// `batchSize`: events per transaction. Flume's default: 100.
    pub batch_size: usize,
    /// `logEveryNEvents`: log the running count every N events (at DEBUG, to keep
    /// benchmarks quiet; Flume logs at INFO). Flume's default: 10000.
    pub log_every_n_events: u64,
}

impl NullConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let batch_size = ctx.number::<usize>("batchSize", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("batchSize", "must be at least 1"));
        }
        Ok(NullConfig {
            batch_size,
            log_every_n_events: ctx.number::<u64>("logEveryNEvents", 10000)?.max(1),
        })
    }

    /// Creates the sink.
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> NullSink {
        NullSink {
            name: name.to_string(),
            channel,
            config: self,
            count: 0,
        }
    }
}

/// A running `null` sink.
pub struct NullSink {
    name: String,
    channel: Arc<MemoryChannel>,
    config: NullConfig,
    count: u64,
}

impl Sink for NullSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            let mut tx = self.channel.transaction();
            let n = tx.take_batch(self.config.batch_size).await?;
            tx.commit().await?;
            if n == 0 {
                return Ok(Status::Backoff);
            }
            let before = self.count / self.config.log_every_n_events;
            self.count += n as u64;
            if self.count / self.config.log_every_n_events != before {
                tracing::debug!(
                    "Null sink {} successful processed {} events.",
                    self.name,
                    self.count
                );
            }
            Ok(Status::Ready)
        })
    }
}

//! `logger`: logs each event at INFO as Flume's `LoggerSink` does:
//! `Event: { headers:{…} body: 48 65 6C … Hello }`.

use std::sync::Arc;

use super::{BoxFuture, Sink, Status};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::Result;
use crate::event::dump_event;

/// The log target of the event lines (Flume's logger name).
pub const LOG_TARGET: &str = "org.apache.flume.sink.LoggerSink";

/// Settings of the `logger` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerConfig {
    /// `maxBytesToLog`: body bytes dumped. Flume's default: 16 (an unparseable value
    /// falls back to it with a warning).
    pub max_bytes_to_log: usize,
}

impl LoggerConfig {
    /// Reads the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let max_bytes_to_log = match ctx.number::<i64>("maxBytesToLog", 16) {
            Ok(n) if n > 0 => n as usize,
            _ => {
                tracing::warn!(
                    "{}",
                    ctx.error(
                        "maxBytesToLog",
                        "not a positive integer; using the default 16"
                    )
                );
                16
            }
        };
        Ok(LoggerConfig { max_bytes_to_log })
    }

    /// Creates the sink.
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> LoggerSink {
        LoggerSink {
            name: name.to_string(),
            channel,
            config: self,
        }
    }
}

/// A running `logger` sink.
pub struct LoggerSink {
    name: String,
    channel: Arc<MemoryChannel>,
    config: LoggerConfig,
}

impl Sink for LoggerSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            let mut tx = self.channel.transaction();
            if tx.take_batch(100).await? == 0 {
                tx.commit().await?;
                return Ok(Status::Backoff);
            }
            for e in tx.taken() {
                tracing::info!(target: "org.apache.flume.sink.LoggerSink", "Event: {}", dump_event(e, self.config.max_bytes_to_log));
            }
            tx.commit().await?;
            Ok(Status::Ready)
        })
    }
}

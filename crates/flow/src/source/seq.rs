//! `seq`: generates events whose bodies are 0, 1, 2, … (Flume's `SequenceGeneratorSource`).
//! The counter advances only after the batch is committed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_shutdown, BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;
use crate::monitoring::{CounterGroup, SOURCE_COUNTERS};

/// Settings of the `seq` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqConfig {
    /// `batchSize`: events per put transaction. Flume's default: 1.
    pub batch_size: usize,
    /// `totalEvents`: how many events to generate. Flume's default: Long.MAX_VALUE.
    pub total_events: u64,
    /// `bodySize` (a Flumen extension for benchmarks): the counter is left-padded with
    /// zeros to this many bytes. Default: 0 (the plain counter, as in Flume).
    pub body_size: usize,
}

impl SeqConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let batch_size = ctx.number::<usize>("batchSize", 1)?;
        if batch_size == 0 {
            return Err(ctx.error("batchSize", "must be at least 1"));
        }
        Ok(SeqConfig {
            batch_size,
            total_events: ctx.number::<u64>("totalEvents", i64::MAX as u64)?,
            body_size: ctx.number::<usize>("bodySize", 0)?,
        })
    }

    /// Creates the source.
    pub fn build(self, name: &str) -> SeqSource {
        SeqSource {
            config: self,
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        }
    }
}

/// A running `seq` source.
pub struct SeqSource {
    config: SeqConfig,
    counter: Arc<CounterGroup>,
}

impl Source for SeqSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut next: u64 = 0;
            let mut backoffs = 0u64;
            let mut text = String::new();
            // bodySize padding, copied (the formatter pads one char at a time).
            let zeros = vec![b'0'; self.config.body_size];
            while !shutdown.is_cancelled() {
                let n = (self.config.total_events - next).min(self.config.batch_size as u64);
                if n == 0 {
                    shutdown.cancelled().await;
                    break;
                }
                let width = self.config.body_size;
                let mut buf = BytesMut::with_capacity(n as usize * width.max(8));
                let mut events = Vec::with_capacity(n as usize);
                for i in next..next + n {
                    text.clear();
                    let _ = write!(text, "{i}");
                    buf.extend_from_slice(&zeros[..width.saturating_sub(text.len())]);
                    buf.extend_from_slice(text.as_bytes());
                    events.push(Event::new(buf.split().freeze()));
                }
                self.counter.add("EventReceivedCount", n as i64);
                self.counter.add("AppendBatchReceivedCount", 1);
                match processor.process_batch(events).await {
                    Ok(()) => {
                        next += n;
                        backoffs = 0;
                        self.counter.add("EventAcceptedCount", n as i64);
                        self.counter.add("AppendBatchAcceptedCount", 1);
                    }
                    Err(error) => {
                        self.counter.add("ChannelWriteFail", 1);
                        backoffs += 1;
                        tracing::debug!(%error, "seq source: channel refused the batch; backing off.");
                        let d = Duration::from_millis((backoffs * 1000).min(5000));
                        if !sleep_or_shutdown(d, &shutdown).await {
                            break;
                        }
                    }
                }
            }
            self.counter.stop();
        })
    }
}

//! `seq`: generates events whose bodies are 0, 1, 2, … (Flume's `SequenceGeneratorSource`).
//! A batch counts as generated only once its commit succeeded; a failed batch is
//! generated again (same counter values) after a back-off.
//!
//! The next batch is generated while earlier ones are being committed (a durable
//! channel's commit waits for an fsync). With `inFlightBatches = 1` (the default) one
//! commit is in flight at a time, so batches reach the channel in order, as in Flume.
//! More in flight let a durable channel's group commit share one fsync between batches;
//! batches may then reach the channel out of order (each batch stays in order).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_shutdown, BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
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
    /// `inFlightBatches` (a Flumen extension): how many batches may be committing at
    /// once. Default: 1 (in order, as in Flume).
    pub in_flight_batches: usize,
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
            in_flight_batches: match ctx.number::<usize>("inFlightBatches", 1)? {
                0 => return Err(ctx.error("inFlightBatches", "must be at least 1")),
                n => n,
            },
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
            let counter = self.counter.clone();
            let total = self.config.total_events;
            let batch = self.config.batch_size as u64;
            // The next counter value never handed out, and ranges to hand out again
            // (their commit failed).
            let mut next: u64 = 0;
            let mut redo: VecDeque<(u64, u64)> = VecDeque::new();
            let mut in_flight: VecDeque<InFlight> = VecDeque::new();
            let mut backoffs = 0u64;
            let mut gen = Generator::new(self.config.body_size);
            while !shutdown.is_cancelled() {
                let range = redo.pop_front().or_else(|| {
                    let n = (total - next).min(batch);
                    (n > 0).then(|| {
                        next += n;
                        (next - n, n)
                    })
                });
                let events = range.map(|(from, n)| gen.batch(from, n));
                if in_flight.len() >= self.config.in_flight_batches
                    || (range.is_none() && !in_flight.is_empty())
                {
                    let Some(done) = in_flight.pop_front() else {
                        break;
                    };
                    if done.settle(&counter, &mut redo).await {
                        backoffs = 0;
                    } else {
                        // The batch just generated goes back too, behind the failed one;
                        // the others in flight were likely refused as well: settle them
                        // all, then back off once.
                        if let Some(r) = range {
                            redo.push_back(r);
                        }
                        while let Some(other) = in_flight.pop_front() {
                            other.settle(&counter, &mut redo).await;
                        }
                        redo.make_contiguous().sort_unstable();
                        backoffs += 1;
                        let d = Duration::from_millis((backoffs * 1000).min(5000));
                        if !sleep_or_shutdown(d, &shutdown).await {
                            break;
                        }
                        continue;
                    }
                }
                let (Some((from, n)), Some(events)) = (range, events) else {
                    if in_flight.is_empty() && redo.is_empty() {
                        // All generated and committed.
                        shutdown.cancelled().await;
                        break;
                    }
                    continue;
                };
                counter.add("EventReceivedCount", n as i64);
                counter.add("AppendBatchReceivedCount", 1);
                let processor = processor.clone();
                in_flight.push_back(InFlight {
                    range: (from, n),
                    task: tokio::spawn(async move { processor.process_batch(events).await }),
                });
                // Let the commit start (it goes on to a blocking thread) before the next
                // batch is generated: a task spawned here would otherwise wait for this one.
                tokio::task::yield_now().await;
            }
            while let Some(done) = in_flight.pop_front() {
                done.settle(&counter, &mut redo).await;
            }
            self.counter.stop();
        })
    }
}

/// A batch being committed.
struct InFlight {
    /// Its counter values: first, count.
    range: (u64, u64),
    task: tokio::task::JoinHandle<Result<()>>,
}

impl InFlight {
    /// Waits for the commit and counts it; a failed batch goes to `redo`. Returns whether
    /// it succeeded.
    async fn settle(self, counter: &CounterGroup, redo: &mut VecDeque<(u64, u64)>) -> bool {
        let r = self.task.await.unwrap_or_else(|e| {
            Err(FlowError::Io {
                component: "seq source".into(),
                message: "commit task failed".into(),
                source: std::io::Error::other(e.to_string()),
            })
        });
        let n = self.range.1;
        match r {
            Ok(()) => {
                counter.add("EventAcceptedCount", n as i64);
                counter.add("AppendBatchAcceptedCount", 1);
                true
            }
            Err(error) => {
                counter.add("ChannelWriteFail", 1);
                redo.push_back(self.range);
                tracing::debug!(%error, "seq source: channel refused the batch; backing off.");
                false
            }
        }
    }
}

/// Builds batches of counter bodies (zero-padded to `width` when set).
struct Generator {
    text: String,
    zeros: Vec<u8>,
}

impl Generator {
    fn new(width: usize) -> Self {
        Generator {
            text: String::new(),
            zeros: vec![b'0'; width],
        }
    }

    /// Events `from .. from + n`.
    fn batch(&mut self, from: u64, n: u64) -> Vec<Event> {
        let width = self.zeros.len();
        let mut buf = BytesMut::with_capacity(n as usize * width.max(8));
        let mut events = Vec::with_capacity(n as usize);
        for i in from..from + n {
            self.text.clear();
            let _ = write!(self.text, "{i}");
            buf.extend_from_slice(&self.zeros[..width.saturating_sub(self.text.len())]);
            buf.extend_from_slice(self.text.as_bytes());
            events.push(Event::new(buf.split().freeze()));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::channel::{MemoryChannel, MemoryChannelConfig};
    use crate::selector::ChannelSelector;

    fn processor(ch: &Arc<MemoryChannel>) -> Arc<ChannelProcessor> {
        Arc::new(ChannelProcessor::new(
            vec![ch.clone()],
            ChannelSelector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![],
        ))
    }

    fn source(pairs: &[(&str, &str)]) -> Box<SeqSource> {
        let ctx = Context::from_pairs("source r1", pairs);
        Box::new(SeqConfig::from_context(&ctx).unwrap().build("r1"))
    }

    /// Takes events until `n` have come (bounded in time); returns their bodies.
    async fn take_n(ch: &Arc<MemoryChannel>, n: usize) -> Vec<u64> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n}",
                got.len()
            );
            let mut tx = ch.transaction();
            tx.take_batch(1000).await.unwrap();
            got.extend(tx.taken().iter().map(|e| {
                std::str::from_utf8(&e.body)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            }));
            tx.commit().await.unwrap();
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_batch_in_flight_keeps_the_order() {
        let ch = MemoryChannelConfig {
            capacity: 10_000,
            transaction_capacity: 100,
            ..MemoryChannelConfig::default()
        }
        .build("c1");
        let src = source(&[("batchSize", "100"), ("totalEvents", "2500")]);
        assert_eq!(src.config.in_flight_batches, 1);
        let stop = CancellationToken::new();
        let task = tokio::spawn(src.run(processor(&ch), stop.clone()));
        assert_eq!(take_n(&ch, 2500).await, (0..2500).collect::<Vec<_>>());
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ch.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_batches_come_again_and_none_twice() {
        // A small channel with a short keep-alive: commits fail while it is full, and the
        // source generates those batches again after its back-off.
        let ch = MemoryChannelConfig {
            capacity: 300,
            transaction_capacity: 100,
            keep_alive: Duration::from_millis(10),
            ..MemoryChannelConfig::default()
        }
        .build("c1");
        let src = source(&[
            ("batchSize", "100"),
            ("totalEvents", "1000"),
            ("inFlightBatches", "3"),
        ]);
        let counter = src.counter().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(src.run(processor(&ch), stop.clone()));
        // Let it fill the channel and fail a few commits before anything is taken.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while counter.get("ChannelWriteFail") == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no commit was refused"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = take_n(&ch, 1000).await;
        let unique: HashSet<u64> = got.iter().copied().collect();
        assert_eq!(unique, (0..1000).collect::<HashSet<_>>());
        assert_eq!(got.len(), 1000, "no value twice");
        stop.cancel();
        task.await.unwrap();
        assert_eq!(counter.get("EventAcceptedCount"), 1000);
    }

    #[test]
    fn in_flight_batches_must_be_positive() {
        let ctx = Context::from_pairs("source r1", &[("inFlightBatches", "0")]);
        let err = SeqConfig::from_context(&ctx).unwrap_err().to_string();
        assert!(err.contains("inFlightBatches"), "{err}");
    }
}

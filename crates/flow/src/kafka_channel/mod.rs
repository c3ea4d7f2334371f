//! The Kafka channel (Flume's `org.apache.flume.channel.kafka.KafkaChannel`): the
//! channel's events live in a Kafka topic, so they survive the agent, and the topic can be
//! written or read by anyone else.
//!
//! It is the memory channel's queue and transactions with a Kafka backend:
//!
//! - **Put commit**: the transaction's events are produced to `kafka.topic` (an Avro
//!   `AvroFlumeEvent` with `parseAsFlumeEvent`, else the body alone; record key = the
//!   `key` header; partition = `partitionIdHeader`'s value, else `defaultPartitionId`) and
//!   the commit returns once the broker acknowledged every record (`acks=all` by default).
//!   Any failure fails the commit, and the source retries. Puts never enter the local queue.
//! - **Takes**: the first take starts a consumer thread that joins group
//!   `kafka.consumer.group.id`, subscribes to the topic and reads ahead into the channel's
//!   queue, at most `capacity` events (the partitions are paused when it stays full). Takes
//!   and rollbacks then work on that queue like the memory channel's; a take on an empty
//!   channel waits up to `kafka.pollTimeout`.
//! - **Take commit**: commits the group's offsets (synchronously) up to the first event of
//!   each partition that no committed take holds yet (the `tracker` module), so an offset never
//!   passes an event still held by another transaction. A failed offset commit rolls the
//!   take back.
//!
//! Flume's three uses follow: with a source and a sink it is a durable channel; without a
//! sink no consumer runs (Flume's channel also consumes only in takes) and puts just land in
//! the topic; without a source the sinks take what any producer wrote (`parseAsFlumeEvent =
//! false` for plain records).
//!
//! **Delivery** is at-least-once: after a crash, events taken but not yet committed are
//! read again. A rebalance (another agent joins the group) drops the queued events of the
//! revoked partitions, which the new owner reads from the committed offset; events in
//! flight at that moment may be delivered twice (Flume's user guide notes the same).

pub mod config;
pub(crate) mod tracker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

pub use config::KafkaChannelConfig;

use crate::channel::{MemoryChannel, MemoryChannelConfig};
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::file_channel::Pointer;
use crate::sink::kafka::{decode_flume_event, encode_flume_event};
use tracker::Tracker;

/// Most records moved from the consumer to the queue under one lock.
const FETCH_BATCH: usize = 1000;
/// How long the read-ahead may stay full before the consumer pauses its partitions.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

impl KafkaChannelConfig {
    /// The channel settings of this Kafka channel: `capacity` bounds the read-ahead, a take
    /// waits `kafka.pollTimeout` on an empty channel, and transactions are unbounded (Flume's
    /// Kafka channel has no transactionCapacity).
    pub fn into_channel_config(self) -> MemoryChannelConfig {
        MemoryChannelConfig {
            capacity: self.capacity,
            transaction_capacity: usize::MAX,
            keep_alive: self.poll_timeout,
            byte_capacity: 0,
            byte_capacity_buffer_percentage: 20,
            kafka: Some(self),
            ..MemoryChannelConfig::default()
        }
    }
}

/// Counters of Flume's KafkaChannelCounter (beyond the channel's own), in milliseconds
/// for the timers.
#[derive(Debug, Default)]
pub struct KafkaStats {
    /// `KafkaEventGetTimer`: time spent polling the topic.
    pub get_ms: AtomicU64,
    /// `KafkaEventSendTimer`: time spent producing puts until acknowledged.
    pub send_ms: AtomicU64,
    /// `KafkaCommitTimer`: time spent committing offsets.
    pub commit_ms: AtomicU64,
    /// `RollbackCount`: transactions rolled back.
    pub rollbacks: AtomicU64,
}

/// Rebalance events seen by the consumer, handled by its thread after each poll.
#[derive(Default)]
struct ChannelContext {
    revoked: Mutex<Vec<i32>>,
    assigned: AtomicBool,
}

impl ClientContext for ChannelContext {}

impl ConsumerContext for ChannelContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
                r.extend(tpl.elements().iter().map(|e| e.partition()));
            }
            Rebalance::Assign(_) => self.assigned.store(true, Ordering::SeqCst),
            Rebalance::Error(_) => {}
        }
    }
}

type ChannelConsumer = BaseConsumer<ChannelContext>;

/// The Kafka side of a Kafka channel: its producer, its consumer and the offsets it may
/// commit.
pub struct KafkaLog {
    name: String,
    config: KafkaChannelConfig,
    producer: FutureProducer,
    consumer: Option<Arc<ChannelConsumer>>,
    tracker: Mutex<Tracker>,
    /// Serialises offset commits, so committed offsets only grow.
    commit_lock: Mutex<()>,
    started: AtomicBool,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Flume's KafkaChannelCounter timers and rollbacks.
    pub stats: KafkaStats,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("name", &self.name)
            .field("topic", &self.config.topic)
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        // Closing a group consumer waits for the broker: never on a runtime thread.
        if let Some(c) = self.consumer.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(c));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn millis(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

impl KafkaLog {
    /// Creates the producer and the consumer (not yet subscribed): a bad
    /// `kafka.producer.*` or `kafka.consumer.*` key fails here, at start.
    pub fn new(name: &str, config: KafkaChannelConfig) -> Result<Self> {
        let bad = |key: &str, e: rdkafka::error::KafkaError| {
            FlowError::config(format!("channel {name}"), key, None, e.to_string())
        };
        let producer: FutureProducer = config
            .producer
            .create()
            .map_err(|e| bad("kafka.producer.*", e))?;
        let consumer: ChannelConsumer = config
            .consumer
            .create_with_context(ChannelContext::default())
            .map_err(|e| bad("kafka.consumer.*", e))?;
        Ok(KafkaLog {
            name: name.to_string(),
            config,
            producer,
            consumer: Some(Arc::new(consumer)),
            tracker: Mutex::new(Tracker::default()),
            commit_lock: Mutex::new(()),
            started: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
            stats: KafkaStats::default(),
        })
    }

    /// Its settings.
    pub fn config(&self) -> &KafkaChannelConfig {
        &self.config
    }

    fn consumer(&self) -> &Arc<ChannelConsumer> {
        self.consumer
            .as_ref()
            .expect("consumer is taken only on drop")
    }

    fn error(&self, message: String) -> FlowError {
        FlowError::KafkaChannel {
            channel: self.name.clone(),
            topic: self.config.topic.clone(),
            message,
        }
    }

    fn partition_of(&self, e: &Event) -> Result<Option<i32>> {
        if let Some(h) = &self.config.partition_header {
            if let Some(v) = e.headers.get(h) {
                return v.trim().parse().map(Some).map_err(|_| {
                    self.error(format!(
                        "partitionIdHeader {h} value {v:?} is not a partition number"
                    ))
                });
            }
        }
        Ok(self.config.default_partition)
    }

    /// Produces the events of a put commit and waits until the broker acknowledged every
    /// one.
    pub(crate) async fn produce(&self, events: &[Event]) -> Result<()> {
        let started = Instant::now();
        let topic = self.config.topic.as_str();
        let mut pending = Vec::with_capacity(events.len());
        let mut failure = None;
        for e in events {
            let partition = match self.partition_of(e) {
                Ok(p) => p,
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            };
            let encoded;
            let value: &[u8] = if self.config.parse_as_flume_event {
                encoded = encode_flume_event(&e.headers, &e.body);
                &encoded
            } else {
                &e.body
            };
            let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(value);
            if let Some(k) = e.headers.get("key") {
                record = record.key(k.as_str());
            }
            if let Some(p) = partition {
                record = record.partition(p);
            }
            match crate::sink::kafka::enqueue(&self.producer, record).await {
                Ok(f) => pending.push(f),
                Err(err) => failure = Some(self.error(format!("cannot send: {err}"))),
            }
            if failure.is_some() {
                break;
            }
        }
        // Wait for every record sent, even after a failure: none is left in flight.
        for f in pending {
            let r = match f.await {
                Ok(Ok(_)) => continue,
                Ok(Err((err, _))) => err.to_string(),
                Err(_) => "the producer was closed".to_string(),
            };
            failure.get_or_insert_with(|| self.error(format!("not acknowledged: {r}")));
        }
        self.stats
            .send_ms
            .fetch_add(millis(started), Ordering::Relaxed);
        failure.map_or(Ok(()), Err)
    }

    /// Commits the group offsets that the events of a take commit release. Blocking.
    pub(crate) fn commit_takes(&self, ptrs: &[Pointer]) -> Result<()> {
        let started = Instant::now();
        let _serial = lock(&self.commit_lock);
        let (done, offsets) = {
            let mut t = lock(&self.tracker);
            let done = t.take(ptrs);
            (done, t.to_commit())
        };
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in &offsets {
            tpl.add_partition_offset(&self.config.topic, p, Offset::Offset(o))
                .map_err(|e| self.error(e.to_string()))?;
        }
        let r = self.consumer().commit(&tpl, CommitMode::Sync);
        self.stats
            .commit_ms
            .fetch_add(millis(started), Ordering::Relaxed);
        match r {
            Ok(()) => {
                lock(&self.tracker).committed(&offsets);
                Ok(())
            }
            Err(e) => {
                lock(&self.tracker).untake(done);
                Err(self.error(format!("offset commit failed: {e}")))
            }
        }
    }

    /// Starts the consumer thread (the first take does; idempotent).
    pub(crate) fn start_consumer(self: &Arc<Self>, channel: &Arc<MemoryChannel>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (log, ch) = (self.clone(), Arc::downgrade(channel));
        let spawned = std::thread::Builder::new()
            .name(format!("kafka-channel-{}", self.name))
            .spawn(move || log.consume(ch));
        match spawned {
            Ok(h) => *lock(&self.thread) = Some(h),
            Err(error) => {
                tracing::error!(%error, channel = %self.name, "Cannot start the Kafka channel's consumer thread.");
                self.started.store(false, Ordering::SeqCst);
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits until the topic exists (a put creates it), checking `stop`.
    fn wait_for_topic(&self) -> bool {
        let mut warned = false;
        let mut told = false;
        while !self.stopped() {
            match self
                .consumer()
                .fetch_metadata(Some(&self.config.topic), Duration::from_secs(5))
            {
                Ok(md)
                    if md.topics().iter().any(|t| {
                        t.name() == self.config.topic
                            && t.error().is_none()
                            && !t.partitions().is_empty()
                    }) =>
                {
                    return true
                }
                Ok(_) if !told => {
                    told = true;
                    tracing::info!(channel = %self.name, topic = %self.config.topic, "Waiting for the Kafka channel's topic to exist (a put creates it where the broker creates topics on demand).");
                }
                Ok(_) => {}
                Err(error) if !warned => {
                    warned = true;
                    tracing::warn!(%error, channel = %self.name, "Cannot read the Kafka channel's topic metadata; retrying.");
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// The consumer thread: subscribes, then fills the channel's queue while there is
    /// room; ends when the channel is closed or dropped.
    fn consume(self: Arc<Self>, channel: Weak<MemoryChannel>) {
        if !self.wait_for_topic() {
            return;
        }
        let consumer = self.consumer().clone();
        if let Err(error) = consumer.subscribe(&[&self.config.topic]) {
            tracing::error!(%error, channel = %self.name, topic = %self.config.topic, "Cannot subscribe to the Kafka channel's topic.");
            return;
        }
        tracing::info!(channel = %self.name, topic = %self.config.topic, group = self.config.group(), "Kafka channel consumer subscribed.");
        let mut paused = false;
        let mut full_since: Option<Instant> = None;
        let mut fetched: Vec<(tracker::Position, Event)> = Vec::new();
        while !self.stopped() {
            let Some(ch) = channel.upgrade() else { break };
            self.handle_revocations(&consumer, &ch, &mut fetched);
            if consumer.context().assigned.swap(false, Ordering::SeqCst) {
                paused = false; // A new assignment starts unpaused.
            }
            let room = ch.read_ahead_room();
            if room == 0 {
                // Full: wait for takes without polling (librdkafka keeps its own bounded
                // prefetch). Pausing purges that prefetch and costs a fetch round trip and
                // backoff on resume, so only a channel full for long is paused — and then
                // polled, which serves rebalances and the poll interval.
                let since = *full_since.get_or_insert_with(Instant::now);
                if since.elapsed() < PAUSE_AFTER {
                    drop(ch);
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                if !paused {
                    if let Ok(a) = consumer.assignment() {
                        let _ = consumer.pause(&a);
                    }
                    paused = true;
                }
            } else if paused {
                if let Ok(a) = consumer.assignment() {
                    let _ = consumer.resume(&a);
                }
                paused = false;
            }
            if room > 0 {
                full_since = None;
            }
            let wait = if paused {
                Duration::from_millis(20)
            } else {
                self.config.poll_timeout.min(Duration::from_millis(500))
            };
            drop(ch);
            let started = Instant::now();
            let max = room.clamp(1, FETCH_BATCH);
            let mut timeout = wait;
            while fetched.len() < max {
                let polled = consumer.poll(timeout);
                // A rebalance runs inside poll: what was fetched before it is handled
                // first, the record this poll returned comes from the new assignment.
                if !lock(&consumer.context().revoked).is_empty() {
                    let Some(ch) = channel.upgrade() else { break };
                    self.handle_revocations(&consumer, &ch, &mut fetched);
                }
                match polled {
                    Some(Ok(m)) => {
                        let event = self.to_event(m.payload().unwrap_or_default(), m.offset());
                        fetched.push(((m.partition(), m.offset()), event));
                        timeout = Duration::ZERO;
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, channel = %self.name, "Kafka channel consumer error.");
                        break;
                    }
                    None => break,
                }
            }
            self.stats
                .get_ms
                .fetch_add(millis(started), Ordering::Relaxed);
            if !fetched.is_empty() {
                let Some(ch) = channel.upgrade() else { break };
                // Tracked before they become visible: a take commit finds every event.
                let batch: Vec<(Pointer, Event)> = {
                    let mut t = lock(&self.tracker);
                    fetched
                        .drain(..)
                        .map(|(pos, e)| (t.fetched(pos), e))
                        .collect()
                };
                ch.push_fetched(batch);
            }
        }
        tracing::debug!(channel = %self.name, "Kafka channel consumer stopped.");
    }

    /// Forgets the partitions a rebalance revoked: their records fetched but not yet
    /// queued, their queued events and their offsets (the new owner reads them again from
    /// the committed offset; nothing of them may be committed by us any more).
    fn handle_revocations(
        &self,
        consumer: &ChannelConsumer,
        ch: &MemoryChannel,
        fetched: &mut Vec<(tracker::Position, Event)>,
    ) {
        let revoked = std::mem::take(&mut *lock(&consumer.context().revoked));
        if revoked.is_empty() {
            return;
        }
        fetched.retain(|((p, _), _)| !revoked.contains(p));
        // Lock order: tracker, then the channel's state.
        let mut t = lock(&self.tracker);
        t.revoke(&revoked);
        let dropped = ch.drop_queued(|p| t.position(p).is_none());
        drop(t);
        tracing::info!(channel = %self.name, partitions = ?revoked, dropped, "Kafka channel partitions revoked; their queued events are left to the new owner.");
    }

    fn to_event(&self, payload: &[u8], offset: i64) -> Event {
        if self.config.parse_as_flume_event {
            if let Some((headers, body)) = decode_flume_event(payload) {
                return Event {
                    headers,
                    body: Bytes::from(body),
                };
            }
            tracing::warn!(channel = %self.name, offset, "Record is not an AvroFlumeEvent; passing its bytes as the body (set parseAsFlumeEvent = false for plain records).");
        }
        Event::new(Bytes::copy_from_slice(payload))
    }

    /// Stops the consumer thread, leaves the group and flushes the producer. Blocking.
    pub fn close(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
        if self.started.load(Ordering::SeqCst) {
            // Leave the group now (bounded), so the next member needs no session timeout.
            let c = self.consumer();
            if c.close_queue().is_ok() {
                let deadline = Instant::now() + Duration::from_secs(5);
                while !c.closed() && Instant::now() < deadline {
                    let _ = c.poll(Duration::from_millis(100));
                }
            }
        }
        use rdkafka::producer::Producer;
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

/// Opens the Kafka channel `name` described by `config.kafka` (creates its Kafka clients).
pub async fn open(name: &str, config: MemoryChannelConfig) -> Result<Arc<MemoryChannel>> {
    let Some(kafka) = config.kafka.clone() else {
        return Ok(config.build(name));
    };
    let n = name.to_string();
    let log = crate::source::blocking(move || KafkaLog::new(&n, kafka)).await?;
    tracing::info!(channel = %name, topic = %log.config.topic, group = log.config.group(), "Kafka channel ready.");
    Ok(Arc::new(MemoryChannel::with_kafka(
        name,
        config,
        Arc::new(log),
    )))
}

/// Closes every Kafka channel of `channels` (agent shutdown): stops the consumers, leaves
/// the groups.
pub async fn close_all(channels: impl IntoIterator<Item = &Arc<MemoryChannel>>) {
    for ch in channels {
        if let Some(log) = ch.kafka_log().cloned() {
            let _ = tokio::task::spawn_blocking(move || log.close()).await;
        }
    }
}

/// The Kafka channel's extra metrics (Flume's KafkaChannelCounter).
pub fn attributes(log: &KafkaLog) -> Vec<(String, String)> {
    let s = &log.stats;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
    vec![
        ("KafkaEventGetTimer".into(), n(&s.get_ms)),
        ("KafkaEventSendTimer".into(), n(&s.send_ms)),
        ("KafkaCommitTimer".into(), n(&s.commit_ms)),
        ("RollbackCount".into(), n(&s.rollbacks)),
    ]
}

#[cfg(test)]
mod tests;

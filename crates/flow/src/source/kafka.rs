//! `org.apache.flume.source.kafka.KafkaSource`: reads Kafka topics with librdkafka.
//!
//! Records are gathered into batches of at most `batchSize` events or `batchDurationMillis`;
//! a batch is put into the channels in one transaction, and only after that commit are the
//! offsets committed to the group `kafka.consumer.group.id` (at-least-once: a failed put is
//! retried with backoff, nothing is skipped). Headers set when absent: `timestamp` (agent
//! clock, Flume 1.9/1.10), the topic header, `partition`, `offset`, and `key` when the record
//! has one. With `useFlumeEventFormat` the value is decoded as an `AvroFlumeEvent`.
//!
//! Against a cluster without a group coordinator (Flumen's broker before it has one), the
//! source assigns every partition of its topics directly and cannot store its position:
//! it starts at `kafka.consumer.auto.offset.reset` each time (a warning says so).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::{sleep_or_shutdown, BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::monitoring::{now_ms, CounterGroup, SOURCE_COUNTERS};
use crate::sink::kafka::{client_config, decode_flume_event, CONSUMER_FETCH_QUEUE_BACKOFF};

/// Which topics to read.
#[derive(Debug, Clone)]
pub enum Topics {
    /// `kafka.topics`: a comma list.
    List(Vec<String>),
    /// `kafka.topics.regex`: a pattern (wins over the list, as in Flume).
    Regex(regex::Regex),
}

impl Topics {
    fn matches(&self, topic: &str) -> bool {
        match self {
            Topics::List(l) => l.iter().any(|t| t == topic),
            Topics::Regex(r) => r.is_match(topic) && !topic.starts_with("__"),
        }
    }
}

/// Settings of the Kafka source.
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    /// `kafka.topics` or `kafka.topics.regex` (deprecated `topic`). Required.
    pub topics: Topics,
    /// `batchSize`: most events per channel transaction. Flume's default: 1000.
    pub batch_size: usize,
    /// `batchDurationMillis`: most time to fill a batch. Flume's default: 1000.
    pub batch_duration: Duration,
    /// `maxBackoffSleep`: longest wait after a refused batch. Flume's default: 5000 ms.
    pub max_backoff: Duration,
    /// `useFlumeEventFormat`. Flume's default: false.
    pub use_flume_event_format: bool,
    /// `setTopicHeader`. Flume's default: true.
    pub set_topic_header: bool,
    /// `topicHeader`. Flume's default: `topic`.
    pub topic_header: String,
    /// The consumer's settings (`kafka.bootstrap.servers`, `kafka.consumer.*`; group
    /// `kafka.consumer.group.id`, Flume's default `flume`; `fetch.queue.backoff.ms` default
    /// 10, see `CONSUMER_FETCH_QUEUE_BACKOFF` in the Kafka sink; auto commit forced off).
    pub client: ClientConfig,
}

impl KafkaSourceConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let mut client = client_config(
            ctx,
            "kafka.consumer.",
            &[("group.id", "flume"), CONSUMER_FETCH_QUEUE_BACKOFF],
        )?;
        if let Some(g) = ctx.get("groupId") {
            client.set("group.id", g.trim());
        }
        client.set("enable.auto.commit", "false");
        client.set("enable.auto.offset.store", "false");
        let topics = if let Some(r) = ctx
            .get("kafka.topics.regex")
            .filter(|r| !r.trim().is_empty())
        {
            Topics::Regex(
                regex::Regex::new(&format!("^(?:{})$", r.trim()))
                    .map_err(|e| ctx.error("kafka.topics.regex", e.to_string()))?,
            )
        } else {
            let list: Vec<String> = ctx
                .get("kafka.topics")
                .or_else(|| ctx.get("topic"))
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                return Err(ctx.error("kafka.topics", "is required (or kafka.topics.regex)"));
            }
            Topics::List(list)
        };
        let batch_size = ctx.number::<usize>("batchSize", 1000)?;
        if batch_size == 0 {
            return Err(ctx.error("batchSize", "must be at least 1"));
        }
        Ok(Self {
            topics,
            batch_size,
            batch_duration: Duration::from_millis(
                ctx.number::<u64>("batchDurationMillis", 1000)?.max(1),
            ),
            max_backoff: Duration::from_millis(ctx.number::<u64>("maxBackoffSleep", 5000)?),
            use_flume_event_format: ctx.boolean("useFlumeEventFormat", false),
            set_topic_header: ctx.boolean("setTopicHeader", true),
            topic_header: ctx.string("topicHeader", "topic"),
            client,
        })
    }

    /// Creates the consumer (a bad `kafka.consumer.*` key fails here, at start).
    pub fn build(self, name: &str) -> Result<KafkaSource> {
        let consumer: BaseConsumer = self.client.create().map_err(|e| {
            FlowError::config(
                format!("source {name}"),
                "kafka.consumer.*",
                None,
                e.to_string(),
            )
        })?;
        Ok(KafkaSource {
            name: name.to_string(),
            config: self,
            consumer: Arc::new(consumer),
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        })
    }
}

/// A running Kafka source.
pub struct KafkaSource {
    name: String,
    config: KafkaSourceConfig,
    consumer: Arc<BaseConsumer>,
    counter: Arc<CounterGroup>,
}

/// Subscribes (with a group coordinator) or assigns the topics' partitions directly; the
/// assignment is refreshed on every call. `positions` holds the next offset of every
/// directly assigned partition (`None`: not read yet). Blocking: run off the runtime.
fn join_topics(
    consumer: &BaseConsumer,
    topics: &Topics,
    groups: bool,
    positions: &mut BTreeMap<(String, i32), Option<i64>>,
    start: Offset,
) -> Result<(), rdkafka::error::KafkaError> {
    if groups {
        if positions.is_empty() {
            match topics {
                Topics::List(l) => {
                    let names: Vec<&str> = l.iter().map(String::as_str).collect();
                    consumer.subscribe(&names)?;
                }
                Topics::Regex(r) => consumer.subscribe(&[r.as_str()])?,
            }
            positions.insert((String::new(), -1), None);
        }
        return Ok(());
    }
    let md = consumer.fetch_metadata(None, Duration::from_secs(5))?;
    let mut changed = false;
    for t in md.topics() {
        if t.error().is_none() && topics.matches(t.name()) {
            for p in t.partitions() {
                let key = (t.name().to_string(), p.id());
                if let std::collections::btree_map::Entry::Vacant(e) = positions.entry(key) {
                    e.insert(None);
                    changed = true;
                }
            }
        }
    }
    if changed {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), next) in positions.iter() {
            tpl.add_partition_offset(t, *p, next.map_or(start, Offset::Offset))?;
        }
        consumer.assign(&tpl)?;
    }
    Ok(())
}

/// One batch read from Kafka: (payload, key, topic, partition, offset) per record.
type Polled = Vec<(Vec<u8>, Option<Vec<u8>>, String, i32, i64)>;

/// Polls up to `max` records within `within`. Blocking: run off the runtime.
fn poll_batch(consumer: &BaseConsumer, max: usize, within: Duration) -> Polled {
    let deadline = std::time::Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < max {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(100))) {
            Some(Ok(m)) => out.push((
                m.payload().unwrap_or_default().to_vec(),
                m.key().map(<[u8]>::to_vec),
                m.topic().to_string(),
                m.partition(),
                m.offset(),
            )),
            Some(Err(error)) => tracing::debug!(%error, "Kafka consumer error."),
            None => {
                if !out.is_empty() {
                    break;
                }
            }
        }
    }
    out
}

fn groups_supported(consumer: &BaseConsumer) -> bool {
    match consumer.fetch_group_list(None, Duration::from_secs(5)) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::UnsupportedFeature)
        ),
    }
}

impl Source for KafkaSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let c = self.consumer.clone();
            let groups = tokio::task::spawn_blocking(move || groups_supported(&c))
                .await
                .unwrap_or(true);
            if !groups {
                tracing::warn!(source = %self.name, "The Kafka cluster has no group coordinator: reading every partition directly; positions are not stored.");
            }
            let mut assigned: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
            let mut next_join = tokio::time::Instant::now();
            let mut backoffs = 0u32;
            'outer: while !shutdown.is_cancelled() {
                if tokio::time::Instant::now() >= next_join {
                    let (c, t, mut a) = (
                        self.consumer.clone(),
                        self.config.topics.clone(),
                        std::mem::take(&mut assigned),
                    );
                    // Without a coordinator the start comes from auto.offset.reset: asking
                    // for stored offsets makes librdkafka 2.12 crash on the refused
                    // OffsetFetch (rdkafka_assignment.c:319).
                    let start = match self.config.client.get("auto.offset.reset") {
                        Some("earliest" | "smallest" | "beginning") => Offset::Beginning,
                        _ => Offset::End,
                    };
                    let joined = tokio::task::spawn_blocking(move || {
                        let r = join_topics(&c, &t, groups, &mut a, start);
                        (r, a)
                    })
                    .await;
                    if let Ok((r, a)) = joined {
                        assigned = a;
                        if let Err(error) = r {
                            tracing::warn!(source = %self.name, %error, "Cannot join the topics; retrying.");
                        }
                    }
                    next_join = tokio::time::Instant::now()
                        + if assigned.is_empty() {
                            Duration::from_millis(500)
                        } else {
                            Duration::from_secs(5)
                        };
                }
                if assigned.is_empty() {
                    if !sleep_or_shutdown(Duration::from_millis(200), &shutdown).await {
                        break;
                    }
                    continue;
                }
                let (c, max, within) = (
                    self.consumer.clone(),
                    self.config.batch_size,
                    self.config.batch_duration.min(Duration::from_millis(500)),
                );
                let polled = tokio::select! {
                    _ = shutdown.cancelled() => break 'outer,
                    r = tokio::task::spawn_blocking(move || poll_batch(&c, max, within)) => r.unwrap_or_default(),
                };
                let mut events = Vec::with_capacity(polled.len());
                let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
                for (payload, key, topic, partition, offset) in polled {
                    let mut event = match self.config.use_flume_event_format {
                        true => match decode_flume_event(&payload) {
                            Some((headers, body)) => Event {
                                headers,
                                body: Bytes::from(body),
                            },
                            None => {
                                self.counter.add("EventReadFail", 1);
                                tracing::warn!(%topic, offset, "Record is not an AvroFlumeEvent; passing its bytes as the body.");
                                Event::new(Bytes::from(payload))
                            }
                        },
                        false => Event::new(Bytes::from(payload)),
                    };
                    let h = &mut event.headers;
                    h.entry("timestamp".into())
                        .or_insert_with(|| now_ms().to_string());
                    if self.config.set_topic_header {
                        h.entry(self.config.topic_header.clone())
                            .or_insert_with(|| topic.clone());
                    }
                    h.entry("partition".into())
                        .or_insert_with(|| partition.to_string());
                    h.entry("offset".into())
                        .or_insert_with(|| offset.to_string());
                    if let Some(k) = key {
                        h.entry("key".into())
                            .or_insert_with(|| String::from_utf8_lossy(&k).into_owned());
                    }
                    if !groups {
                        assigned.insert((topic.clone(), partition), Some(offset + 1));
                    }
                    offsets.insert((topic, partition), offset + 1);
                    events.push(event);
                }
                if events.is_empty() {
                    continue;
                }
                let n = events.len() as i64;
                self.counter.add("EventReceivedCount", n);
                self.counter.add("AppendBatchReceivedCount", 1);
                // Retry the same batch until the channels take it: skipping it would lose it.
                loop {
                    match processor.process_batch(events.clone()).await {
                        Ok(()) => {
                            backoffs = 0;
                            break;
                        }
                        Err(error) => {
                            self.counter.add("ChannelWriteFail", 1);
                            backoffs += 1;
                            tracing::debug!(%error, "Kafka source: channel refused the batch; backing off.");
                            let d = (Duration::from_millis(1000) * backoffs)
                                .min(self.config.max_backoff);
                            if !sleep_or_shutdown(d, &shutdown).await {
                                break 'outer;
                            }
                        }
                    }
                }
                self.counter.add("EventAcceptedCount", n);
                self.counter.add("AppendBatchAcceptedCount", 1);
                if groups {
                    let mut tpl = TopicPartitionList::new();
                    for ((t, p), o) in &offsets {
                        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
                    }
                    if let Err(error) = self.consumer.commit(&tpl, CommitMode::Async) {
                        tracing::warn!(%error, "Kafka source: offset commit failed.");
                    }
                }
            }
            self.counter.stop();
            // Close the consumer off the runtime (librdkafka's close blocks).
            let consumer = self.consumer;
            let _ = tokio::task::spawn_blocking(move || {
                let _ = consumer.unassign();
                drop(consumer);
            })
            .await;
        })
    }
}

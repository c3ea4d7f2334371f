//! `org.apache.flume.sink.kafka.KafkaSink`: sends events to a Kafka topic with librdkafka.
//!
//! Per transaction: take up to `flumeBatchSize` events, send them all, wait until the broker
//! acknowledged every one, then commit the take; any failure rolls the take back (Flume's
//! semantics, at-least-once). Record key = the event's `key` header; topic = the `topic`
//! header when `allowTopicOverride` (else `kafka.topic`, with `%{header}` escapes);
//! partition = `partitionIdHeader`'s value, else `defaultPartitionId`, else librdkafka's
//! partitioner. With `useFlumeEventFormat` the value is an Avro-encoded `AvroFlumeEvent`
//! (headers kept), otherwise the body.
//!
//! `kafka.producer.*` keys go to librdkafka, which shares most of its names with the Java
//! client; Java-only keys (serializers, `max.block.ms`, …) are ignored with a warning.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::{BoxFuture, Sink, Status};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::{Event, Headers};
use crate::monitoring::{CounterGroup, SINK_COUNTERS};

/// Keys of the Java clients that librdkafka does not know (ignored with a warning).
const JAVA_ONLY: &[&str] = &[
    "key.serializer",
    "value.serializer",
    "key.deserializer",
    "value.deserializer",
    "max.block.ms",
    "buffer.memory",
    "interceptor.classes",
    "partitioner.class",
    "retry.backoff.max.ms",
    "max.poll.records",
    "max.poll.interval.ms.ignored",
    "exclude.internal.topics",
    "default.api.timeout.ms",
    "metric.reporters",
    "request.timeout.ms.ignored",
];

/// librdkafka consumer default overridden by Flumen's Kafka consumers (the Kafka channel and
/// the Kafka source): `fetch.queue.backoff.ms` = 10 instead of librdkafka's 1000. Once a
/// fetch leaves more than `queued.min.messages` (100000) records in librdkafka's local
/// queue, the next fetch is postponed by this backoff; with 1000 ms a consumer draining
/// faster than that stalls for the rest of each second (the Kafka channel drained at about
/// 130,000 events/s in steps of one fetch per second). The Java consumer has no such pause.
/// `kafka.consumer.fetch.queue.backoff.ms` still overrides it.
pub(crate) const CONSUMER_FETCH_QUEUE_BACKOFF: (&str, &str) = ("fetch.queue.backoff.ms", "10");

/// Queues `record` in the producer, waiting while librdkafka's queue is full; the future
/// resolves when the broker acknowledged it.
pub(crate) async fn enqueue(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, str, [u8]>,
) -> std::result::Result<DeliveryFuture, rdkafka::error::KafkaError> {
    loop {
        match producer.send_result(record) {
            Ok(f) => return Ok(f),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((err, _)) => return Err(err),
        }
    }
}

/// A librdkafka config from `kafka.bootstrap.servers` and the `<prefix>*` pass-through keys
/// of `ctx` (`kafka.producer.` or `kafka.consumer.`), over `defaults`.
pub(crate) fn client_config(
    ctx: &Context,
    prefix: &str,
    defaults: &[(&str, &str)],
) -> Result<ClientConfig> {
    let servers = ctx
        .get("kafka.bootstrap.servers")
        .or_else(|| ctx.get("brokerList"))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ctx.error(
                "kafka.bootstrap.servers",
                "is required (the Kafka brokers, host:port,…)",
            )
        })?;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", servers.trim());
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    let sub = ctx.sub(prefix, ctx.component());
    let keys: Vec<String> = sub.keys().map(str::to_string).collect();
    for k in keys {
        if JAVA_ONLY.contains(&k.as_str()) {
            tracing::warn!(component = ctx.component(), key = %format!("{prefix}{k}"), "Java client setting ignored (librdkafka has no such property).");
            continue;
        }
        if let Some(v) = sub.get(&k) {
            c.set(k, v.trim());
        }
    }
    Ok(c)
}

/// Encodes an `AvroFlumeEvent { headers: map<string>, body: bytes }` (Avro binary, no
/// container), as Flume's `useFlumeEventFormat` writes it.
pub fn encode_flume_event(headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    if !headers.is_empty() {
        put_long(&mut out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
    }
    put_long(&mut out, 0);
    put_bytes(&mut out, body);
    out
}

/// Decodes an `AvroFlumeEvent`; `None` when the bytes are not one.
pub fn decode_flume_event(mut data: &[u8]) -> Option<(Headers, Vec<u8>)> {
    let mut headers = Headers::new();
    loop {
        let mut count = get_long(&mut data)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            count = count.checked_neg()?;
            get_long(&mut data)?; // block size in bytes
        }
        for _ in 0..count {
            let k = String::from_utf8(get_bytes(&mut data)?.to_vec()).ok()?;
            let v = String::from_utf8(get_bytes(&mut data)?.to_vec()).ok()?;
            headers.insert(k, v);
        }
    }
    let body = get_bytes(&mut data)?.to_vec();
    data.is_empty().then_some((headers, body))
}

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

fn get_long(data: &mut &[u8]) -> Option<i64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        n |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(((n >> 1) as i64) ^ -((n & 1) as i64));
        }
    }
    None
}

fn get_bytes<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(get_long(data)?).ok()?;
    if data.len() < len {
        return None;
    }
    let (b, rest) = data.split_at(len);
    *data = rest;
    Some(b)
}

/// Replaces `%{header}` escapes with the event's header values (empty when absent).
fn escape_headers(pattern: &str, headers: &Headers) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find("%{") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                let name = &rest[i + 2..i + 2 + j];
                out.push_str(headers.get(name).map(String::as_str).unwrap_or(""));
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Settings of the Kafka sink.
#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    /// `kafka.topic` (deprecated `topic`). Flume's default: `default-flume-topic`.
    pub topic: String,
    /// `flumeBatchSize` (deprecated `batchSize`). Flume's default: 100.
    pub batch_size: usize,
    /// `useFlumeEventFormat`. Flume's default: false.
    pub use_flume_event_format: bool,
    /// `allowTopicOverride`. Flume's default: true.
    pub allow_topic_override: bool,
    /// `topicHeader`. Flume's default: `topic`.
    pub topic_header: String,
    /// `defaultPartitionId`. Flume's default: none.
    pub default_partition: Option<i32>,
    /// `partitionIdHeader`. Flume's default: none.
    pub partition_header: Option<String>,
    /// The librdkafka producer settings (`kafka.bootstrap.servers`, `kafka.producer.*`;
    /// `acks` defaults to 1 as in Flume).
    pub client: ClientConfig,
}

impl KafkaSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let mut client =
            client_config(ctx, "kafka.producer.", &[("acks", "1"), ("linger.ms", "5")])?;
        if let Some(acks) = ctx.get("requiredAcks") {
            client.set("acks", acks.trim());
        }
        let batch_size = match ctx.get("flumeBatchSize") {
            Some(_) => ctx.number::<usize>("flumeBatchSize", 100)?,
            None => ctx.number::<usize>("batchSize", 100)?,
        };
        if batch_size == 0 {
            return Err(ctx.error("flumeBatchSize", "must be at least 1"));
        }
        let default_partition = match ctx.get("defaultPartitionId") {
            Some(_) => Some(ctx.require_number::<i32>("defaultPartitionId")?),
            None => None,
        };
        let topic = ctx
            .get("kafka.topic")
            .or_else(|| ctx.get("topic"))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "default-flume-topic".into());
        Ok(Self {
            topic,
            batch_size,
            use_flume_event_format: ctx.boolean("useFlumeEventFormat", false),
            allow_topic_override: ctx.boolean("allowTopicOverride", true),
            topic_header: ctx.string("topicHeader", "topic"),
            default_partition,
            partition_header: ctx.get("partitionIdHeader").map(|s| s.trim().to_string()),
            client,
        })
    }

    /// Creates the producer (a bad `kafka.producer.*` key fails here, at start).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> Result<KafkaSink> {
        let producer: FutureProducer = self.client.create().map_err(|e| {
            FlowError::config(
                format!("sink {name}"),
                "kafka.producer.*",
                None,
                e.to_string(),
            )
        })?;
        Ok(KafkaSink {
            name: name.to_string(),
            channel,
            config: self,
            producer,
            counter: Arc::new(CounterGroup::new("SINK", name, SINK_COUNTERS)),
        })
    }
}

/// A running Kafka sink.
pub struct KafkaSink {
    name: String,
    channel: Arc<MemoryChannel>,
    config: KafkaSinkConfig,
    producer: FutureProducer,
    counter: Arc<CounterGroup>,
}

impl KafkaSink {
    fn topic_of(&self, e: &Event) -> String {
        if self.config.allow_topic_override {
            if let Some(t) = e.headers.get(&self.config.topic_header) {
                return t.clone();
            }
        }
        escape_headers(&self.config.topic, &e.headers)
    }

    fn partition_of(&self, e: &Event) -> Result<Option<i32>> {
        if let Some(h) = &self.config.partition_header {
            if let Some(v) = e.headers.get(h) {
                return v.trim().parse().map(Some).map_err(|_| FlowError::Delivery {
                    sink: self.name.clone(),
                    message: format!("partitionIdHeader {h} value {v:?} is not a partition number"),
                });
            }
        }
        Ok(self.config.default_partition)
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            let mut tx = self.channel.transaction();
            let n = match tx.take_batch(self.config.batch_size).await {
                Ok(n) => n,
                Err(e) => {
                    self.counter.add("ChannelReadFail", 1);
                    tx.rollback();
                    return Err(e);
                }
            };
            if n == 0 {
                tx.commit().await?;
                self.counter.add("BatchEmptyCount", 1);
                return Ok(Status::Backoff);
            }
            self.counter.add("EventDrainAttemptCount", n as i64);
            let mut pending = Vec::with_capacity(n);
            let mut failure = None;
            for e in tx.taken() {
                let topic = self.topic_of(e);
                let partition = match self.partition_of(e) {
                    Ok(p) => p,
                    Err(err) => {
                        failure = Some(err.to_string());
                        break;
                    }
                };
                let value: std::borrow::Cow<'_, [u8]> = if self.config.use_flume_event_format {
                    encode_flume_event(&e.headers, &e.body).into()
                } else {
                    e.body.as_ref().into()
                };
                let mut record: FutureRecord<'_, str, [u8]> =
                    FutureRecord::to(&topic).payload(value.as_ref());
                if let Some(k) = e.headers.get("key") {
                    record = record.key(k.as_str());
                }
                if let Some(p) = partition {
                    record = record.partition(p);
                }
                match enqueue(&self.producer, record).await {
                    Ok(f) => pending.push(f),
                    Err(err) => failure = Some(err.to_string()),
                }
                if failure.is_some() {
                    break;
                }
            }
            for f in pending {
                match f.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((err, _))) => {
                        failure.get_or_insert(err.to_string());
                    }
                    Err(_) => {
                        failure.get_or_insert("the producer was closed".to_string());
                    }
                }
            }
            if let Some(message) = failure {
                self.counter.add("EventWriteFail", 1);
                tx.rollback();
                return Err(FlowError::Delivery {
                    sink: self.name.clone(),
                    message: format!("Failed to publish events: {message}"),
                });
            }
            tx.commit().await?;
            if n < self.config.batch_size {
                self.counter.add("BatchUnderflowCount", 1);
            } else {
                self.counter.add("BatchCompleteCount", 1);
            }
            self.counter.add("EventDrainSuccessCount", n as i64);
            Ok(Status::Ready)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flume_event_round_trip() {
        let mut h = Headers::new();
        h.insert("topic".into(), "t".into());
        h.insert("k".into(), "vé".into());
        let enc = encode_flume_event(&h, b"body");
        assert_eq!(decode_flume_event(&enc), Some((h, b"body".to_vec())));
        // No headers: an empty map then the bytes.
        let enc = encode_flume_event(&Headers::new(), b"x");
        assert_eq!(enc, vec![0, 2, b'x']);
        assert_eq!(decode_flume_event(b"garbage\xff"), None);
    }

    #[test]
    fn config_defaults_and_required_servers() {
        let ctx = Context::from_pairs("sink k1", &[]);
        assert!(KafkaSinkConfig::from_context(&ctx)
            .unwrap_err()
            .to_string()
            .contains("kafka.bootstrap.servers"));
        let ctx = Context::from_pairs(
            "sink k1",
            &[
                ("kafka.bootstrap.servers", "h:1"),
                ("kafka.producer.linger.ms", "7"),
                ("kafka.producer.key.serializer", "x"),
            ],
        );
        let c = KafkaSinkConfig::from_context(&ctx).unwrap();
        assert_eq!(c.topic, "default-flume-topic");
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.client.get("acks"), Some("1"));
        assert_eq!(c.client.get("linger.ms"), Some("7"));
        assert_eq!(c.client.get("key.serializer"), None);
    }

    #[test]
    fn topic_escapes() {
        let mut h = Headers::new();
        h.insert("app".into(), "web".into());
        assert_eq!(escape_headers("logs-%{app}-%{none}", &h), "logs-web-");
        assert_eq!(escape_headers("plain", &h), "plain");
    }
}

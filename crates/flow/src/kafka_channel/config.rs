//! Settings of the Kafka channel (Flume's `KafkaChannelConfiguration`).

use std::time::Duration;

use rdkafka::ClientConfig;

use crate::config::Context;
use crate::error::Result;
use crate::sink::kafka::{client_config, CONSUMER_FETCH_QUEUE_BACKOFF};

/// Flume's default `kafka.topic`.
pub const DEFAULT_TOPIC: &str = "flume-channel";
/// Flume's default `kafka.consumer.group.id`.
pub const DEFAULT_GROUP: &str = "flume";
/// Flumen's default read-ahead (`capacity`), in events.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Keys the Kafka channel reads besides the `kafka.producer.*` / `kafka.consumer.*`
/// pass-through (an other key is ignored with a warning).
const KNOWN: &[&str] = &[
    "type",
    "kafka.bootstrap.servers",
    "kafka.topic",
    "kafka.consumer.group.id",
    "parseAsFlumeEvent",
    "kafka.pollTimeout",
    "pollTimeout",
    "defaultPartitionId",
    "partitionIdHeader",
    "capacity",
    "keep-alive",
    // Deprecated Flume keys.
    "brokerList",
    "topic",
    "groupId",
    "readSmallestOffset",
    "migrateZookeeperOffsets",
    "zookeeperConnect",
];

/// Settings of the Kafka channel.
#[derive(Debug, Clone)]
pub struct KafkaChannelConfig {
    /// `kafka.topic` (deprecated `topic`): the topic that holds the channel's events.
    /// Flume's default: `flume-channel`.
    pub topic: String,
    /// `parseAsFlumeEvent`: records are Avro `AvroFlumeEvent`s (headers kept); false =
    /// the record value is the body (for topics written by other producers). Flume's
    /// default: true.
    pub parse_as_flume_event: bool,
    /// `kafka.pollTimeout` (the user guide's `pollTimeout` is accepted too): how long a take
    /// waits for an event on an empty channel, and the consumer's poll timeout. Flume's
    /// default: 500 ms.
    pub poll_timeout: Duration,
    /// `defaultPartitionId`: the partition every put goes to (else the key's hash, or
    /// librdkafka's partitioner). Flume's default: none.
    pub default_partition: Option<i32>,
    /// `partitionIdHeader`: a header whose value is the partition of the put (wins over
    /// `defaultPartitionId`). Flume's default: none.
    pub partition_header: Option<String>,
    /// `capacity` (Flumen's, Flume's channel has none): the most events read ahead from
    /// the topic into memory, waiting to be taken. Default: 10000.
    pub capacity: usize,
    /// The librdkafka producer settings: `kafka.bootstrap.servers`, then
    /// `kafka.producer.*`; `acks` defaults to `all` (Flume's channel default), `linger.ms`
    /// to 0 (the Java producer's default; librdkafka's 5 ms would delay every put commit).
    pub producer: ClientConfig,
    /// The librdkafka consumer settings: `kafka.bootstrap.servers`, then
    /// `kafka.consumer.*`; `group.id` defaults to `flume`, `auto.offset.reset` to
    /// `earliest` (Flume's code; its user guide says `latest`), `fetch.queue.backoff.ms` to
    /// 10 (librdkafka's 1000 stalls a fast consumer, see
    /// `CONSUMER_FETCH_QUEUE_BACKOFF` in the Kafka sink); automatic commits are off.
    pub consumer: ClientConfig,
}

impl PartialEq for KafkaChannelConfig {
    fn eq(&self, o: &Self) -> bool {
        self.topic == o.topic
            && self.parse_as_flume_event == o.parse_as_flume_event
            && self.poll_timeout == o.poll_timeout
            && self.default_partition == o.default_partition
            && self.partition_header == o.partition_header
            && self.capacity == o.capacity
            && self.producer.config_map() == o.producer.config_map()
            && self.consumer.config_map() == o.consumer.config_map()
    }
}

impl Eq for KafkaChannelConfig {}

impl KafkaChannelConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        for key in ctx.keys() {
            if !KNOWN.contains(&key)
                && !key.starts_with("kafka.producer.")
                && !key.starts_with("kafka.consumer.")
            {
                tracing::warn!(
                    component = ctx.component(),
                    key,
                    "Property `{key}` of the Kafka channel is not supported by Flumen and is ignored."
                );
            }
        }
        for key in ["migrateZookeeperOffsets", "zookeeperConnect"] {
            if ctx.get(key).is_some() {
                tracing::warn!(
                    component = ctx.component(),
                    key,
                    "Property `{key}` is obsolete (there is no ZooKeeper): ignored; offsets live in the consumer group."
                );
            }
        }
        // linger.ms 0 (the Java producer's default in Flume's Kafka client; librdkafka's is 5):
        // a put commit enqueues its whole batch at once and then waits for the acks, so
        // lingering only delays every commit (puts of 1,000,000 events: 5.4 s → 1.2 s).
        let producer = client_config(
            ctx,
            "kafka.producer.",
            &[("acks", "all"), ("linger.ms", "0")],
        )?;
        let mut consumer = client_config(
            ctx,
            "kafka.consumer.",
            &[
                ("group.id", DEFAULT_GROUP),
                ("auto.offset.reset", "earliest"),
                CONSUMER_FETCH_QUEUE_BACKOFF,
            ],
        )?;
        if ctx.get("kafka.consumer.group.id").is_none() {
            if let Some(g) = ctx.get("groupId").filter(|g| !g.trim().is_empty()) {
                consumer.set("group.id", g.trim());
            }
        }
        if ctx.get("kafka.consumer.auto.offset.reset").is_none() {
            if let Some(v) = ctx.get("readSmallestOffset") {
                let earliest = ctx.boolean("readSmallestOffset", true);
                tracing::warn!(component = ctx.component(), value = v.trim(), "Property `readSmallestOffset` is deprecated; use kafka.consumer.auto.offset.reset.");
                consumer.set(
                    "auto.offset.reset",
                    if earliest { "earliest" } else { "latest" },
                );
            }
        }
        consumer.set("enable.auto.commit", "false");
        consumer.set("enable.auto.offset.store", "false");
        let topic = ctx
            .get("kafka.topic")
            .or_else(|| ctx.get("topic"))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_TOPIC.into());
        let poll_ms = match ctx.get("kafka.pollTimeout") {
            Some(_) => ctx.number::<u64>("kafka.pollTimeout", 500)?,
            None => ctx.number::<u64>("pollTimeout", 500)?,
        };
        let default_partition = match ctx.get("defaultPartitionId") {
            Some(_) => Some(ctx.require_number::<i32>("defaultPartitionId")?),
            None => None,
        };
        if default_partition.is_some_and(|p| p < 0) {
            return Err(ctx.error("defaultPartitionId", "must not be negative"));
        }
        let capacity = ctx.number::<usize>("capacity", DEFAULT_CAPACITY)?;
        if capacity == 0 {
            return Err(ctx.error("capacity", "must be at least 1"));
        }
        Ok(Self {
            topic,
            parse_as_flume_event: ctx.boolean("parseAsFlumeEvent", true),
            poll_timeout: Duration::from_millis(poll_ms.max(1)),
            default_partition,
            partition_header: ctx
                .get("partitionIdHeader")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            capacity,
            producer,
            consumer,
        })
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        self.consumer.get("group.id").unwrap_or(DEFAULT_GROUP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_flumes() {
        let ctx = Context::from_pairs("channel c1", &[("kafka.bootstrap.servers", "h:9092")]);
        let c = KafkaChannelConfig::from_context(&ctx).unwrap();
        assert_eq!(c.topic, "flume-channel");
        assert_eq!(c.group(), "flume");
        assert!(c.parse_as_flume_event);
        assert_eq!(c.poll_timeout, Duration::from_millis(500));
        assert_eq!(c.producer.get("acks"), Some("all"));
        assert_eq!(c.producer.get("bootstrap.servers"), Some("h:9092"));
        assert_eq!(c.consumer.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.consumer.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(c.producer.get("linger.ms"), Some("0"));
        assert_eq!(c.consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!((c.default_partition, c.partition_header), (None, None));
    }

    #[test]
    fn properties_and_pass_through() {
        let ctx = Context::from_pairs(
            "channel c1",
            &[
                ("kafka.bootstrap.servers", "h:1,h:2"),
                ("kafka.topic", "chan"),
                ("kafka.consumer.group.id", "g1"),
                ("kafka.consumer.auto.offset.reset", "latest"),
                ("kafka.producer.linger.ms", "2"),
                ("kafka.producer.acks", "1"),
                ("parseAsFlumeEvent", "false"),
                ("pollTimeout", "50"),
                ("defaultPartitionId", "3"),
                ("partitionIdHeader", "p"),
                ("migrateZookeeperOffsets", "true"),
            ],
        );
        let c = KafkaChannelConfig::from_context(&ctx).unwrap();
        assert_eq!(c.topic, "chan");
        assert_eq!(c.group(), "g1");
        assert_eq!(c.consumer.get("auto.offset.reset"), Some("latest"));
        assert_eq!(c.producer.get("linger.ms"), Some("2"));
        assert_eq!(c.producer.get("acks"), Some("1"));
        assert!(!c.parse_as_flume_event);
        assert_eq!(c.poll_timeout, Duration::from_millis(50));
        assert_eq!(c.default_partition, Some(3));
        assert_eq!(c.partition_header.as_deref(), Some("p"));
        // kafka.pollTimeout (what Flume's code reads) wins over pollTimeout.
        let ctx = Context::from_pairs(
            "channel c1",
            &[
                ("kafka.bootstrap.servers", "h:1"),
                ("kafka.pollTimeout", "70"),
                ("pollTimeout", "50"),
                ("groupId", "old"),
                ("readSmallestOffset", "false"),
            ],
        );
        let c = KafkaChannelConfig::from_context(&ctx).unwrap();
        assert_eq!(c.poll_timeout, Duration::from_millis(70));
        assert_eq!(c.group(), "old");
        assert_eq!(c.consumer.get("auto.offset.reset"), Some("latest"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let ctx = Context::from_pairs("channel c1", &[]);
        let e = KafkaChannelConfig::from_context(&ctx).unwrap_err();
        assert!(e.to_string().contains("kafka.bootstrap.servers"), "{e}");
        let ctx = Context::from_pairs(
            "channel c1",
            &[
                ("kafka.bootstrap.servers", "h:1"),
                ("defaultPartitionId", "x"),
            ],
        );
        let e = KafkaChannelConfig::from_context(&ctx).unwrap_err();
        assert!(e.to_string().contains("defaultPartitionId"), "{e}");
    }
}

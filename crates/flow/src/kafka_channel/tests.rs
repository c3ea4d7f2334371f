//! Kafka channel tests that need no broker: the queue filled by the consumer, takes,
//! rollbacks, revocations and a put that cannot be acknowledged. Through a real broker:
//! `interop/test_flume_kafka_channel.py`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::Context;

/// A Kafka channel whose broker does not exist; its consumer thread is never started.
fn channel() -> (Arc<MemoryChannel>, Arc<KafkaLog>) {
    let ctx = Context::from_pairs(
        "channel c1",
        &[
            ("kafka.bootstrap.servers", "127.0.0.1:1"),
            ("kafka.producer.message.timeout.ms", "200"),
            ("pollTimeout", "20"),
            ("capacity", "10"),
        ],
    );
    let config = KafkaChannelConfig::from_context(&ctx)
        .unwrap()
        .into_channel_config();
    let log = Arc::new(KafkaLog::new("c1", config.kafka.clone().unwrap()).unwrap());
    log.started.store(true, Ordering::SeqCst);
    let ch = Arc::new(MemoryChannel::with_kafka("c1", config, log.clone()));
    (ch, log)
}

fn fetch(ch: &MemoryChannel, log: &KafkaLog, partition: i32, offsets: std::ops::Range<i64>) {
    let batch = offsets
        .map(|o| {
            let p = lock(&log.tracker).fetched((partition, o));
            (p, Event::new(format!("{partition}-{o}")))
        })
        .collect();
    ch.push_fetched(batch);
}

fn bodies(tx: &crate::channel::Transaction) -> Vec<String> {
    tx.taken()
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect()
}

#[tokio::test]
async fn takes_and_rollbacks_keep_order_and_pointers() {
    let (ch, log) = channel();
    fetch(&ch, &log, 0, 0..5);
    assert_eq!(ch.read_ahead_room(), 5);
    let mut a = ch.transaction();
    assert_eq!(a.take_batch(3).await.unwrap(), 3);
    let mut b = ch.transaction();
    assert_eq!(b.take_batch(10).await.unwrap(), 2);
    assert_eq!(bodies(&b), ["0-3", "0-4"]);
    // B commits first: the offset may not pass A's events, so nothing is sent to Kafka
    // (which does not exist here) and the commit succeeds.
    b.commit().await.unwrap();
    assert_eq!(lock(&log.tracker).to_commit(), vec![]);
    assert_eq!(ch.read_ahead_room(), 7, "A's takes still hold room");
    a.rollback();
    assert_eq!(log.stats.rollbacks.load(Ordering::Relaxed), 1);
    let mut a = ch.transaction();
    assert_eq!(a.take_batch(10).await.unwrap(), 3);
    assert_eq!(bodies(&a), ["0-0", "0-1", "0-2"]);
    // Taken again but not committed: still nothing to commit.
    assert_eq!(lock(&log.tracker).to_commit(), vec![]);
    drop(a);
    assert_eq!(ch.len(), 3);
    // An empty take waits pollTimeout and returns nothing.
    let mut c = ch.transaction();
    assert_eq!(c.take_batch(10).await.unwrap(), 3);
    let mut d = ch.transaction();
    assert_eq!(d.take_batch(10).await.unwrap(), 0);
}

#[tokio::test]
async fn revoked_partitions_leave_the_queue() {
    let (ch, log) = channel();
    fetch(&ch, &log, 0, 0..3);
    fetch(&ch, &log, 1, 0..3);
    lock(&log.tracker).revoke(&[1]);
    {
        let t = lock(&log.tracker);
        assert_eq!(ch.drop_queued(|p| t.position(p).is_none()), 3);
    }
    let mut tx = ch.transaction();
    assert_eq!(tx.take_batch(10).await.unwrap(), 3);
    assert_eq!(bodies(&tx), ["0-0", "0-1", "0-2"]);
}

#[tokio::test]
async fn full_read_ahead_and_draining_leave_no_room() {
    let (ch, log) = channel();
    fetch(&ch, &log, 0, 0..10);
    assert_eq!(ch.read_ahead_room(), 0);
    let mut tx = ch.transaction();
    tx.take_batch(4).await.unwrap();
    assert_eq!(
        ch.read_ahead_room(),
        0,
        "taken events hold room until committed"
    );
    drop(tx);
    ch.set_draining(true);
    let (ch2, _log2) = channel();
    ch2.set_draining(true);
    assert_eq!(ch2.read_ahead_room(), 0);
}

#[tokio::test]
async fn an_unacknowledged_put_fails_the_commit() {
    let (ch, log) = channel();
    let mut tx = ch.transaction();
    tx.put_all((0..3).map(|i| Event::new(format!("{i}"))))
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), tx.commit())
        .await
        .expect("the put fails within message.timeout.ms")
        .unwrap_err();
    assert!(matches!(err, FlowError::KafkaChannel { .. }), "{err}");
    assert!(err.to_string().contains("flume-channel"), "{err}");
    assert_eq!(ch.len(), 0, "puts never enter the local queue");
    assert_eq!(log.stats.rollbacks.load(Ordering::Relaxed), 1);
    // A bad partition header fails the put too.
    let mut e = Event::new("x");
    e.headers.insert("p".into(), "nope".into());
    let mut cfg = log.config().clone();
    cfg.partition_header = Some("p".into());
    let log2 = KafkaLog::new("c2", cfg).unwrap();
    assert!(log2.partition_of(&e).is_err());
}

#[test]
fn agent_plans_kafka_channels_with_and_without_sources_and_sinks() {
    let text = "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1\n\
        a1.sources.r1.type = seq\na1.sources.r1.batchSize = 50000\na1.sources.r1.channels = c1\n\
        a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel\n\
        a1.channels.c1.kafka.bootstrap.servers = h:9092\n\
        a1.channels.c2.type = org.apache.flume.channel.kafka.KafkaChannel\n\
        a1.channels.c2.kafka.bootstrap.servers = h:9092\na1.channels.c2.kafka.topic = t2\n\
        a1.sinks.k1.type = null\na1.sinks.k1.channel = c2\n";
    let props = crate::config::Properties::parse_str(text, &std::collections::HashMap::new());
    let plan = crate::agent::plan(&props, "a1");
    assert!(!plan.has_errors(), "{:?}", plan.config.problems);
    assert_eq!(plan.channels.len(), 2);
    let (name, c1) = &plan.channels[0];
    assert_eq!(name, "c1");
    assert_eq!(c1.kafka.as_ref().unwrap().topic, "flume-channel");
    // No transactionCapacity: any source batch fits.
    assert_eq!(plan.sources.len(), 1);
    assert_eq!(plan.sinks.len(), 1);
    // The short name is not Flume's: only the class name selects the Kafka channel.
    let props = crate::config::Properties::parse_str(
        &text.replace("org.apache.flume.channel.kafka.KafkaChannel", "kafka"),
        &std::collections::HashMap::new(),
    );
    assert!(crate::agent::plan(&props, "a1").has_errors());
}

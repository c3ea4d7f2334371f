//! Metadata (key 3), v0–12. v0 (kafka-python/aiokafka probes): an empty topic list means all
//! topics; v1+: null means all, empty means none; v10+ topic ids; v12 topics by id.
//! Unknown topics are auto-created when `auto.create.topics.enable` is on and the request
//! allows it (always before v4).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::{blocking, s};
use crate::broker::{validate_topic_name, Broker, Topic};
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// KIP-430 authorized-operations bitfield for a topic when asked for: every operation is
/// allowed (no ACLs yet): READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS.
pub const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// The same for the cluster: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::Metadata, 0, 12, 0, handle);

/// The metadata of one topic.
pub fn topic_metadata(broker: &Broker, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..topic.partitions.len() as i32)
        .map(|p| {
            let mut m = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node]);
            if version >= 7 {
                m = m.with_leader_epoch(0);
            }
            m
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(TopicName(s(topic.name.clone()))))
        .with_partitions(partitions);
    if version >= 10 {
        t = t.with_topic_id(topic.id);
    }
    t
}

fn error_topic(
    name: Option<String>,
    id: uuid::Uuid,
    error: ResponseError,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(s(n))))
        .with_topic_id(id)
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: MetadataRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let auto_create = version < 4 || req.allow_auto_topic_creation;
    let topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let cluster_ops = (8..=10).contains(&version) && req.include_cluster_authorized_operations;
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match req.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(
            list.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let b = broker.clone();
    let topics = blocking(move || -> Vec<MetadataResponseTopic> {
        match wanted {
            None => b
                .topics()
                .iter()
                .map(|t| topic_metadata(&b, t, version))
                .collect(),
            Some(list) => list
                .into_iter()
                .map(|(name, id)| match name {
                    Some(name) => {
                        if validate_topic_name(&name).is_err() {
                            return error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ResponseError::InvalidTopicException,
                            );
                        }
                        let found: Option<Arc<Topic>> = if auto_create {
                            b.auto_create(&name)
                        } else {
                            b.topic(&name)
                        };
                        match found {
                            Some(t) => topic_metadata(&b, &t, version),
                            None => error_topic(
                                Some(name),
                                uuid::Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition,
                            ),
                        }
                    }
                    None => match b.topic_by_id(id) {
                        Some(t) => topic_metadata(&b, &t, version),
                        None => error_topic(None, id, ResponseError::UnknownTopicId),
                    },
                })
                .collect(),
        }
    })
    .await?;
    let adv = &broker.advertised;
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.node_id))
            .with_host(s(adv.host.clone()))
            .with_port(adv.port as i32)])
        .with_topics(topics);
    if topic_ops {
        for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
            t.topic_authorized_operations = TOPIC_OPERATIONS;
        }
    }
    if cluster_ops {
        resp.cluster_authorized_operations = CLUSTER_OPERATIONS;
    }
    if version >= 1 {
        resp = resp.with_controller_id(BrokerId(broker.config.node_id));
    }
    if version >= 2 {
        resp = resp.with_cluster_id(Some(s(broker.cluster_id.clone())));
    }
    encode(&ctx, &resp)
}

//! CreateTopics (key 19), v2–7. `num_partitions`/`replication_factor` -1 use the broker
//! defaults (v4+); the replication factor must be 1 on a single node; manual replica
//! assignments may only name this node. Kafka's name rules, `validate_only`, topic configs.
//! v5+ returns the partition count, replication factor and configs; v7 the topic id.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};

use super::{blocking, s};
use crate::broker::Refused;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::topic_config;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::CreateTopics, 2, 7, 2, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: CreateTopicsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let validate_only = req.validate_only;
    let results = blocking(move || {
        let mut seen = std::collections::HashSet::new();
        req.topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let mut result = CreatableTopicResult::default().with_name(t.name.clone());
                let outcome = (|| -> std::result::Result<_, Refused> {
                    if !seen.insert(name.clone()) {
                        return Err(Refused::new(ResponseError::InvalidRequest, format!("topic {name:?} is listed twice")));
                    }
                    let mut partitions = t.num_partitions;
                    if !t.assignments.is_empty() {
                        if partitions != -1 || t.replication_factor != -1 {
                            return Err(Refused::new(
                                ResponseError::InvalidRequest,
                                "give either replica assignments or partitions and replication factor",
                            ));
                        }
                        let node = broker.config.node_id;
                        if t.assignments.iter().any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.len() != 1) {
                            return Err(Refused::new(
                                ResponseError::InvalidReplicaAssignment,
                                format!("this single-node cluster only has broker {node}"),
                            ));
                        }
                        partitions = t.assignments.len() as i32;
                    }
                    if partitions == -1 {
                        partitions = broker.config.num_partitions;
                    }
                    if t.replication_factor != -1 && t.replication_factor != 1 {
                        return Err(Refused::new(
                            ResponseError::InvalidReplicationFactor,
                            format!("replication factor {} is larger than the 1 broker of this cluster", t.replication_factor),
                        ));
                    }
                    let mut configs = BTreeMap::new();
                    for c in &t.configs {
                        if let Some(v) = &c.value {
                            configs.insert(c.name.to_string(), v.to_string());
                        }
                    }
                    broker.create_topic(&name, partitions, configs, validate_only)
                })();
                match outcome {
                    Ok(topic) => {
                        if version >= 5 {
                            let configs = topic_config::TOPIC_CONFIGS
                                .iter()
                                .map(|d| {
                                    let (value, source) = match topic.configs.get(d.name) {
                                        Some(v) => (v.clone(), topic_config::source::DYNAMIC_TOPIC),
                                        None => topic_config::broker_default(d, &broker.config),
                                    };
                                    CreatableTopicConfigs::default()
                                        .with_name(s(d.name))
                                        .with_value(Some(s(value)))
                                        .with_config_source(source)
                                })
                                .collect();
                            let count = if topic.partitions.is_empty() { -1 } else { topic.partitions.len() as i32 };
                            let count = if validate_only { t.num_partitions.max(-1) } else { count };
                            result = result
                                .with_num_partitions(if count == -1 { broker.config.num_partitions } else { count })
                                .with_replication_factor(1)
                                .with_configs(Some(configs));
                        }
                        if version >= 7 {
                            result = result.with_topic_id(topic.id);
                        }
                    }
                    Err(r) => {
                        result = result.with_error_code(r.error.code()).with_error_message(Some(s(r.message)));
                        if version >= 5 {
                            result = result.with_num_partitions(-1).with_replication_factor(-1);
                        }
                    }
                }
                result
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(&ctx, &CreateTopicsResponse::default().with_topics(results))
}

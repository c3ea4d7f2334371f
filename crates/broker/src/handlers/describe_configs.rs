//! DescribeConfigs (key 32), v1–4: every topic config Kafka lists, with its value, source
//! (dynamic topic override, static broker key, or default), synonyms (the broker key),
//! type and documentation (v3+); and the broker's own keys (resource type BROKER, name ""
//! or this node's id). BROKER_LOGGER has nothing to list.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};

use super::s;
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::topic_config::{self, source, ConfigType};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::DescribeConfigs, 1, 4, 1, handle);

/// Resource type TOPIC.
pub const RESOURCE_TOPIC: i8 = 2;
/// Resource type BROKER.
pub const RESOURCE_BROKER: i8 = 4;
/// Resource type BROKER_LOGGER.
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

/// The broker keys shown for resource type BROKER: (name, value, type).
pub fn broker_configs(
    c: &BrokerConfig,
    advertised: &crate::config::Listener,
) -> Vec<(&'static str, String, ConfigType)> {
    let opt = |v: Option<u64>| {
        v.map(|v| v.to_string())
            .unwrap_or_else(|| i64::MAX.to_string())
    };
    vec![
        (
            "advertised.listeners",
            format!("PLAINTEXT://{advertised}"),
            ConfigType::List,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            ConfigType::Boolean,
        ),
        ("broker.id", c.node_id.to_string(), ConfigType::Int),
        ("default.replication.factor", "1".into(), ConfigType::Int),
        (
            "delete.topic.enable",
            c.delete_topic_enable.to_string(),
            ConfigType::Boolean,
        ),
        (
            "fetch.max.bytes",
            c.fetch_max_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "listeners",
            format!("PLAINTEXT://{}", c.listener),
            ConfigType::List,
        ),
        (
            "log.dirs",
            c.log_dir.display().to_string(),
            ConfigType::List,
        ),
        (
            "log.flush.interval.messages",
            opt(c.log_flush_interval_messages),
            ConfigType::Long,
        ),
        (
            "log.flush.interval.ms",
            opt(c.log_flush_interval_ms),
            ConfigType::Long,
        ),
        (
            "log.message.timestamp.type",
            topic_config::broker_default(
                topic_config::def("message.timestamp.type").expect("listed"),
                c,
            )
            .0,
            ConfigType::String,
        ),
        (
            "log.retention.bytes",
            c.log_retention_bytes.to_string(),
            ConfigType::Long,
        ),
        (
            "log.retention.check.interval.ms",
            c.log_retention_check_interval_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "log.retention.ms",
            c.log_retention_ms.to_string(),
            ConfigType::Long,
        ),
        ("log.roll.ms", c.log_roll_ms.to_string(), ConfigType::Long),
        (
            "log.segment.bytes",
            c.log_segment_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "message.max.bytes",
            c.message_max_bytes.to_string(),
            ConfigType::Int,
        ),
        ("min.insync.replicas", "1".into(), ConfigType::Int),
        ("node.id", c.node_id.to_string(), ConfigType::Int),
        (
            "num.partitions",
            c.num_partitions.to_string(),
            ConfigType::Int,
        ),
        (
            "offsets.topic.replication.factor",
            "1".into(),
            ConfigType::Short,
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            ConfigType::Int,
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn entry(
    name: &str,
    value: String,
    src: i8,
    kind: ConfigType,
    doc: Option<&str>,
    synonyms: Vec<DescribeConfigsSynonym>,
    read_only: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(s(name))
        .with_value(Some(s(value)))
        .with_read_only(read_only)
        .with_config_source(src)
        .with_synonyms(synonyms);
    if version >= 3 {
        r = r
            .with_config_type(kind as i8)
            .with_documentation(doc.map(s));
    }
    r
}

fn describe_topic(
    broker: &Broker,
    name: &str,
    keys: &Option<Vec<String>>,
    synonyms: bool,
    docs: bool,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(s(name));
    let Some(topic) = broker.topic(name) else {
        return result
            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
            .with_error_message(Some(s(format!("unknown topic {name:?}"))));
    };
    let configs = topic_config::TOPIC_CONFIGS
        .iter()
        .filter(|d| keys.as_ref().is_none_or(|k| k.iter().any(|k| k == d.name)))
        .map(|d| {
            let (broker_value, broker_source) = topic_config::broker_default(d, &broker.config);
            let (value, src) = match topic.configs.get(d.name) {
                Some(v) => (v.clone(), source::DYNAMIC_TOPIC),
                None => (broker_value.clone(), broker_source),
            };
            let mut syn = Vec::new();
            if synonyms {
                if let Some(v) = topic.configs.get(d.name) {
                    syn.push(
                        DescribeConfigsSynonym::default()
                            .with_name(s(d.name))
                            .with_value(Some(s(v.clone())))
                            .with_source(source::DYNAMIC_TOPIC),
                    );
                }
                if let (Some(k), source::STATIC_BROKER) = (d.broker_key, broker_source) {
                    syn.push(
                        DescribeConfigsSynonym::default()
                            .with_name(s(k))
                            .with_value(Some(s(broker_value.clone())))
                            .with_source(source::STATIC_BROKER),
                    );
                }
                syn.push(
                    DescribeConfigsSynonym::default()
                        .with_name(s(d.broker_key.unwrap_or(d.name)))
                        .with_value(Some(s(d.default)))
                        .with_source(source::DEFAULT),
                );
            }
            entry(
                d.name,
                value,
                src,
                d.kind,
                docs.then_some(d.doc),
                syn,
                false,
                version,
            )
        })
        .collect();
    result.with_configs(configs)
}

fn describe_broker(
    broker: &Broker,
    name: &str,
    keys: &Option<Vec<String>>,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(RESOURCE_BROKER)
        .with_resource_name(s(name));
    if !name.is_empty() && name != broker.config.node_id.to_string() {
        return result
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(s(format!(
                "this is broker {}, not {name}",
                broker.config.node_id
            ))));
    }
    let configs = broker_configs(&broker.config, &broker.advertised)
        .into_iter()
        .filter(|(n, _, _)| keys.as_ref().is_none_or(|k| k.iter().any(|k| k == n)))
        .map(|(n, v, kind)| {
            entry(
                n,
                v,
                source::STATIC_BROKER,
                kind,
                None,
                Vec::new(),
                true,
                version,
            )
        })
        .collect();
    result.with_configs(configs)
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: DescribeConfigsRequest = decode(&ctx, body)?;
    let b = &ctx.broker;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            // Null or empty means every config (as in Kafka).
            let keys = r
                .configuration_keys
                .filter(|k| !k.is_empty())
                .map(|k| k.into_iter().map(|k| k.to_string()).collect::<Vec<_>>());
            match r.resource_type {
                RESOURCE_TOPIC => describe_topic(
                    b,
                    &r.resource_name,
                    &keys,
                    req.include_synonyms,
                    req.include_documentation,
                    ctx.version,
                ),
                RESOURCE_BROKER => describe_broker(b, &r.resource_name, &keys, ctx.version),
                RESOURCE_BROKER_LOGGER => DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name),
                other => DescribeConfigsResult::default()
                    .with_resource_type(other)
                    .with_resource_name(r.resource_name)
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(s(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    encode(
        &ctx,
        &DescribeConfigsResponse::default().with_results(results),
    )
}

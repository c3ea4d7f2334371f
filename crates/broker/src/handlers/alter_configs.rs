//! AlterConfigs (key 33), v0–2: replaces a topic's whole set of config overrides (what
//! kafkajs, Sarama and kafka-python use). Broker configs are static (server.properties).

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{blocking, s};
use crate::broker::{Broker, Refused};
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::topic_config;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::AlterConfigs, 0, 2, 0, handle);

/// Validates `configs` and (unless `validate_only`) makes them the topic's overrides.
pub fn apply_topic_configs(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> std::result::Result<(), Refused> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err(Refused::new(
                ResponseError::InvalidRequest,
                "broker configs are static: edit server.properties and restart",
            ))
        }
        other => {
            return Err(Refused::new(
                ResponseError::InvalidRequest,
                format!("resource type {other} is not supported"),
            ))
        }
    }
    if broker.topic(name).is_none() {
        return Err(Refused::new(
            ResponseError::UnknownTopicOrPartition,
            format!("unknown topic {name:?}"),
        ));
    }
    for (k, v) in &configs {
        topic_config::validate(k, v).map_err(|m| Refused::new(ResponseError::InvalidConfig, m))?;
    }
    if validate_only {
        return Ok(());
    }
    broker.set_topic_configs(name, configs)
}

/// The response entry for one resource.
pub fn resource_response(
    resource_type: i8,
    name: StrBytesLike,
    outcome: std::result::Result<(), Refused>,
) -> AlterConfigsResourceResponse {
    let r = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(name);
    match outcome {
        Ok(()) => r.with_error_message(None),
        Err(e) => r
            .with_error_code(e.error.code())
            .with_error_message(Some(s(e.message))),
    }
}

/// The resource-name type of the response.
pub type StrBytesLike = kafka_protocol::protocol::StrBytes;

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: AlterConfigsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let validate_only = req.validate_only;
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let configs: BTreeMap<String, String> = r
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                let outcome = apply_topic_configs(
                    &broker,
                    r.resource_type,
                    &r.resource_name,
                    configs,
                    validate_only,
                );
                resource_response(r.resource_type, r.resource_name, outcome)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(
        &ctx,
        &AlterConfigsResponse::default().with_responses(responses),
    )
}

//! IncrementalAlterConfigs (key 44), v0–1: per-key SET (0), DELETE (1), APPEND (2) and
//! SUBTRACT (3, list configs) on a topic's config overrides (kafka-configs.sh, Java Admin).

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::alter_configs::apply_topic_configs;
use super::{blocking, s};
use crate::broker::Refused;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::topic_config;

/// Dispatch row.
pub const HANDLER: ApiHandler =
    crate::handler_row!(ApiKey::IncrementalAlterConfigs, 0, 1, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: IncrementalAlterConfigsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let validate_only = req.validate_only;
    let responses = blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let outcome = (|| -> std::result::Result<(), Refused> {
                    let mut configs = broker.topic(&r.resource_name).map(|t| t.configs.clone()).unwrap_or_default();
                    for c in &r.configs {
                        let name = c.name.to_string();
                        let value = c.value.as_ref().map(|v| v.to_string());
                        match c.config_operation {
                            0 => {
                                configs.insert(name, value.unwrap_or_default());
                            }
                            1 => {
                                configs.remove(&name);
                            }
                            2 | 3 => {
                                let is_list = topic_config::def(&name)
                                    .is_some_and(|d| d.kind == topic_config::ConfigType::List);
                                if !is_list {
                                    return Err(Refused::new(
                                        ResponseError::InvalidConfig,
                                        format!("APPEND/SUBTRACT need a list config; `{name}` is not one"),
                                    ));
                                }
                                let current = topic_config::effective(&name, &configs, &broker.config).unwrap_or_default();
                                let mut items: Vec<String> =
                                    current.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect();
                                for v in value.unwrap_or_default().split(',').map(str::trim).filter(|x| !x.is_empty()) {
                                    if c.config_operation == 2 {
                                        if !items.iter().any(|i| i == v) {
                                            items.push(v.to_string());
                                        }
                                    } else {
                                        items.retain(|i| i != v);
                                    }
                                }
                                configs.insert(name, items.join(","));
                            }
                            op => {
                                return Err(Refused::new(ResponseError::InvalidRequest, format!("unknown config operation {op}")))
                            }
                        }
                    }
                    apply_topic_configs(&broker, r.resource_type, &r.resource_name, configs, validate_only)
                })();
                let resp = AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name);
                match outcome {
                    Ok(()) => resp.with_error_message(None),
                    Err(e) => resp.with_error_code(e.error.code()).with_error_message(Some(s(e.message))),
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(
        &ctx,
        &IncrementalAlterConfigsResponse::default().with_responses(responses),
    )
}

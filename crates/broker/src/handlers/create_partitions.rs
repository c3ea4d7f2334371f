//! CreatePartitions (key 37), v0–3: raises a topic's partition count (never lowers it);
//! manual assignments may only name this node. Every topic gets a result entry.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};

use super::{blocking, s};
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::CreatePartitions, 0, 3, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: CreatePartitionsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let validate_only = req.validate_only;
    let results = blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let node = broker.config.node_id;
                let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.broker_ids.len() != 1 || x.broker_ids[0].0 != node)
                });
                let outcome = if bad_assignment {
                    Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("this single-node cluster only has broker {node}"),
                    ))
                } else {
                    broker
                        .create_partitions(&t.name, t.count, validate_only)
                        .map_err(|r| (r.error, r.message))
                };
                let r = CreatePartitionsTopicResult::default().with_name(t.name);
                match outcome {
                    Ok(()) => r.with_error_message(None),
                    Err((e, m)) => r.with_error_code(e.code()).with_error_message(Some(s(m))),
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(
        &ctx,
        &CreatePartitionsResponse::default().with_results(results),
    )
}

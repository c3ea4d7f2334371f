//! OffsetDelete (key 47), v0: deletes a group's committed offsets for some partitions;
//! GROUP_SUBSCRIBED_TO_TOPIC for topics the group's active members subscribe to,
//! GROUP_ID_NOT_FOUND for an unknown group.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};

use super::blocking;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::OffsetDelete, 0, 0, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: OffsetDeleteRequest = decode(&ctx, body)?;
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let b = ctx.broker.clone();
    let group = req.group_id.0.to_string();
    let (group_error, codes) =
        blocking(move || b.groups.delete_offsets(&group, &partitions)).await??;
    let mut resp = OffsetDeleteResponse::default().with_error_code(group_error);
    if group_error == 0 {
        let mut codes = codes.into_iter();
        resp.topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(codes.next().unwrap_or(0))
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
    }
    encode(&ctx, &resp)
}

//! ListOffsets (key 2), v1–7: -1 latest (the high watermark; the same for read_committed
//! without transactions), -2 earliest, -3 max timestamp (v7+), ≥0 the first record with a
//! timestamp at or after the target (offset and timestamp -1 if there is none).

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use super::blocking;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::ListOffsets, 1, 7, 1, handle);

fn partition_error(index: i32, error: ResponseError) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(error.code())
        .with_timestamp(-1)
        .with_offset(-1)
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: ListOffsetsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let topics = blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let topic = broker.topic(&t.name);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let Some(part) = topic
                            .as_ref()
                            .and_then(|tp| tp.partition(p.partition_index))
                        else {
                            return partition_error(
                                p.partition_index,
                                ResponseError::UnknownTopicOrPartition,
                            );
                        };
                        if version >= 4 && p.current_leader_epoch > 0 {
                            return partition_error(
                                p.partition_index,
                                ResponseError::UnknownLeaderEpoch,
                            );
                        }
                        match part.list_offset(p.timestamp) {
                            Ok((offset, timestamp)) => {
                                let mut r = ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_offset(offset)
                                    .with_timestamp(timestamp);
                                if version >= 4 && offset >= 0 {
                                    r = r.with_leader_epoch(0);
                                }
                                r
                            }
                            Err(e) => partition_error(p.partition_index, e.kafka_error()),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(&ctx, &ListOffsetsResponse::default().with_topics(topics))
}

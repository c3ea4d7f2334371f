//! OffsetForLeaderEpoch (key 23), v2–4: one leader epoch (0) forever. Asked for epoch 0 (or
//! less), the answer is (0, log end offset); for a later epoch, (-1, -1). librdkafka ≥2.1 and
//! Java use it to validate positions after a leader change.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::OffsetForLeaderEpoch, 2, 4, 2, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: OffsetForLeaderEpochRequest = decode(&ctx, body)?;
    let b = &ctx.broker;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = b.topic(&t.topic);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = EpochEndOffset::default().with_partition(p.partition);
                    let Some(part) = topic.as_ref().and_then(|x| x.partition(p.partition)) else {
                        return r
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                    };
                    if p.current_leader_epoch > 0 {
                        return r
                            .with_error_code(ResponseError::UnknownLeaderEpoch.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                    }
                    if p.leader_epoch > 0 {
                        return r.with_leader_epoch(-1).with_end_offset(-1);
                    }
                    r.with_leader_epoch(0).with_end_offset(part.end_offset())
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    encode(
        &ctx,
        &OffsetForLeaderEpochResponse::default().with_topics(topics),
    )
}

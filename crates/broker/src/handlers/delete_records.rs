//! DeleteRecords (key 21), v0–2: moves a partition's log start offset forward (-1: up to
//! the high watermark) and returns the new low watermark. Offsets past the high watermark
//! get OFFSET_OUT_OF_RANGE.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};

use super::blocking;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::DeleteRecords, 0, 2, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: DeleteRecordsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let topics = blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let topic = broker.topic(&t.name);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let r = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index);
                        let Some(part) =
                            topic.as_ref().and_then(|x| x.partition(p.partition_index))
                        else {
                            return r
                                .with_low_watermark(-1)
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                        };
                        if p.offset > part.end_offset() || p.offset < -1 {
                            return r
                                .with_low_watermark(-1)
                                .with_error_code(ResponseError::OffsetOutOfRange.code());
                        }
                        match part.delete_records_before(p.offset) {
                            Ok(low) => r.with_low_watermark(low),
                            Err(e) => r.with_low_watermark(-1).with_error_code(e.code()),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(&ctx, &DeleteRecordsResponse::default().with_topics(topics))
}

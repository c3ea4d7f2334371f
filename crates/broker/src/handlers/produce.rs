//! Produce (key 0): decodes v3–12, advertises v0–12 (Kafka 4's KAFKA-18659 quirk: old
//! librdkafka enables compression only if the range starts at 0; v0–2 requests close the
//! connection as in Kafka). v12 equals v11 for non-transactional producers; v13 (topic ids)
//! is not offered.
//!
//! The record batches are never decoded: the raw bytes go to the partition log, which
//! validates them and rewrites only the base offset. acks 0, 1 and -1 are accepted (on one
//! node 1 and -1 are the same: the record is in the log when answered); acks=0 gets no
//! response at all. When the flush policy (flush.messages / flush.ms) asks for an fsync,
//! the answer waits for the partition's flusher (group commit: one fsync for every append
//! made meanwhile, run on a blocking thread).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};

use super::{blocking, s};
use crate::batch;
use crate::broker::Broker;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::partition::{AppendRefused, AppendResult, Partition};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::Produce, 3, 12, 0, handle);

fn partition_error(
    index: i32,
    error: ResponseError,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    if version >= 8 {
        p = p.with_error_message(message.map(s));
    }
    p
}

enum Work {
    Append(Arc<Partition>, Bytes),
    Done(PartitionProduceResponse),
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: ProduceRequest = decode(&ctx, body)?;
    let version = ctx.version;
    let acks = req.acks;
    let broker: Arc<Broker> = ctx.broker.clone();
    let request_error = if !matches!(acks, -1..=1) {
        Some((
            ResponseError::InvalidRequiredAcks,
            format!("acks={acks} is not one of -1, 0, 1"),
        ))
    } else if req.transactional_id.is_some() {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported".to_string(),
        ))
    } else {
        None
    };
    let mut plan: Vec<(kafka_protocol::messages::TopicName, Vec<Work>)> =
        Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let found = broker.topic(&topic.name);
        let mut works = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let index = pd.index;
            let err = |e: ResponseError, m: String| {
                Work::Done(partition_error(index, e, Some(m), version))
            };
            let work = if let Some((e, m)) = &request_error {
                err(*e, m.clone())
            } else {
                match (&found, pd.records) {
                    (None, _) => err(
                        ResponseError::UnknownTopicOrPartition,
                        format!("unknown topic {:?}", topic.name.0.as_str()),
                    ),
                    (Some(t), records) => match (t.partition(index), records) {
                        (None, _) => err(
                            ResponseError::UnknownTopicOrPartition,
                            format!("unknown partition {index}"),
                        ),
                        (Some(_), None) => {
                            err(ResponseError::CorruptMessage, "null records".into())
                        }
                        (Some(p), Some(records)) => match batch::parse_header(&records) {
                            Some(h) if h.compression() == 4 && version < 7 => err(
                                ResponseError::UnsupportedCompressionType,
                                "zstd needs Produce v7 or later".into(),
                            ),
                            _ => Work::Append(p.clone(), records),
                        },
                    },
                }
            };
            works.push(work);
        }
        plan.push((topic.name, works));
    }
    let now = Broker::now_ms();
    let any_append = plan
        .iter()
        .any(|(_, w)| w.iter().any(|w| matches!(w, Work::Append(..))));
    let (mut responses, waits) = blocking(move || {
        let mut waits: Vec<(Arc<Partition>, i64, (usize, usize))> = Vec::new();
        let responses = plan.into_iter()
            .enumerate()
            .map(|(ti, (name, works))| {
                let partitions = works
                    .into_iter()
                    .enumerate()
                    .map(|(pi, w)| match w {
                        Work::Done(r) => r,
                        Work::Append(p, records) => {
                            let index = p.tp().partition;
                            match p.append(&records, now) {
                                Ok(AppendResult { base_offset, log_append_time, log_start_offset, flush_to }) => {
                                    if let Some(offset) = flush_to {
                                        waits.push((p.clone(), offset, (ti, pi)));
                                    }
                                    let mut r = PartitionProduceResponse::default()
                                        .with_index(index)
                                        .with_base_offset(base_offset)
                                        .with_log_append_time_ms(log_append_time);
                                    if version >= 5 {
                                        r = r.with_log_start_offset(log_start_offset);
                                    }
                                    r
                                }
                                Err(AppendRefused { error, message }) => {
                                    tracing::debug!(partition = %p.tp(), error = ?error, message, "Produce refused.");
                                    partition_error(index, error, Some(message), version)
                                }
                            }
                        }
                    })
                    .collect();
                TopicProduceResponse::default().with_name(name).with_partition_responses(partitions)
            })
            .collect::<Vec<_>>();
        (responses, waits)
    })
    .await?;
    // Group commit: answer only once a flush covering the appended records completed.
    for (p, offset, (ti, pi)) in waits {
        if let Err(error) = p.wait_flushed(offset).await {
            tracing::error!(%error, partition = %p.tp(), "Produce not flushed.");
            let r = &mut responses[ti].partition_responses[pi];
            *r = partition_error(
                r.index,
                ResponseError::KafkaStorageError,
                Some(error.to_string()),
                version,
            );
        }
    }
    if any_append {
        broker.notify_append();
    }
    if acks == 0 {
        return Ok(None);
    }
    encode(&ctx, &ProduceResponse::default().with_responses(responses))
}

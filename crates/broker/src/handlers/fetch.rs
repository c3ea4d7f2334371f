//! Fetch (key 1), v4–12 (v13+ names topics by id and is not offered, so clients that see
//! zero topic ids in Metadata stay at 12 anyway).
//!
//! Long poll: if fewer than `min_bytes` are available the request waits, woken by every
//! append, until enough data arrived or `max_wait_ms` passed. Sizes: `max_bytes` (v3+, capped
//! by `fetch.max.bytes`) for the whole response and `partition_max_bytes` per partition, in
//! request order; the log returns whole batches starting with the one containing the fetch
//! offset, and at least one batch (KIP-74). Batches are sent exactly as stored.
//!
//! Fetch sessions (KIP-227) are declined: every response carries session id 0, so clients
//! send full fetches, and every requested partition is listed in every response.
//! Both isolation levels are accepted; without transactions the last stable offset is the
//! high watermark.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};

use super::blocking;
use crate::broker::{Broker, Topic};
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::{log_error_code, BrokerError, Result};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::Fetch, 4, 12, 4, handle);

struct Wanted {
    name: TopicName,
    topic: Option<Arc<Topic>>,
    partitions: Vec<(i32, i64, i32)>,
}

fn partition_data(index: i32, error: ResponseError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()))
}

/// Reads every requested partition once; returns the topics and the bytes gathered, and
/// whether a partition reported an error.
fn read_all(
    wanted: &[Wanted],
    max_bytes: i32,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total: usize = 0;
    let mut any_error = false;
    let mut topics = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut parts = Vec::with_capacity(w.partitions.len());
        for &(index, offset, partition_max) in &w.partitions {
            let Some(p) = w.topic.as_ref().and_then(|t| t.partition(index)) else {
                any_error = true;
                parts.push(partition_data(
                    index,
                    ResponseError::UnknownTopicOrPartition,
                ));
                continue;
            };
            let remaining = (max_bytes as i64 - total as i64).max(0);
            let limit = (partition_max.max(0) as i64).min(remaining);
            let hw = p.end_offset();
            let start = p.start_offset();
            let mut data = PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(hw)
                .with_last_stable_offset(hw)
                .with_records(Some(Bytes::new()));
            if version >= 5 {
                data = data.with_log_start_offset(start);
            }
            if offset == hw || (limit == 0 && total > 0) {
                parts.push(data);
                continue;
            }
            match p.read(offset, limit.max(1) as u32) {
                Ok(info) => {
                    total += info.records.len();
                    data = data
                        .with_high_watermark(info.high_watermark.0)
                        .with_last_stable_offset(info.high_watermark.0)
                        .with_records(Some(Bytes::from(info.records)));
                    if version >= 5 {
                        data = data.with_log_start_offset(info.log_start_offset.0);
                    }
                }
                Err(BrokerError::Log { source, .. }) => {
                    any_error = true;
                    data = data.with_error_code(log_error_code(&source).code());
                }
                Err(e) => {
                    any_error = true;
                    data = data.with_error_code(e.code());
                }
            }
            parts.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(w.name.clone())
                .with_partitions(parts),
        );
    }
    (topics, total, any_error)
}

/// Whether any requested partition has data past its fetch offset (or is out of range).
fn has_news(wanted: &[Wanted]) -> bool {
    wanted.iter().any(|w| {
        w.partitions.iter().any(|&(index, offset, _)| {
            match w.topic.as_ref().and_then(|t| t.partition(index)) {
                Some(p) => p.end_offset() != offset || offset < p.start_offset(),
                None => true,
            }
        })
    })
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: FetchRequest = decode(&ctx, body)?;
    let broker: Arc<Broker> = ctx.broker.clone();
    let version = ctx.version;
    let max_bytes = if req.max_bytes <= 0 {
        i32::MAX
    } else {
        req.max_bytes
    }
    .min(broker.config.fetch_max_bytes as i32);
    let min_bytes = req.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, 300_000) as u64);
    let wanted: Arc<Vec<Wanted>> = Arc::new(
        req.topics
            .into_iter()
            .map(|t| Wanted {
                topic: broker.topic(&t.topic),
                name: t.topic,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
                    .collect(),
            })
            .collect(),
    );
    let mut appends = broker.subscribe_appends();
    let topics = loop {
        appends.borrow_and_update();
        let read = if has_news(&wanted) {
            let w = wanted.clone();
            Some(blocking(move || read_all(&w, max_bytes, version)).await?)
        } else {
            None
        };
        let now = Instant::now();
        match read {
            Some((topics, total, any_error))
                if total >= min_bytes.max(1) || any_error || now >= deadline =>
            {
                break topics
            }
            None if now >= deadline || min_bytes == 0 => {
                break read_all(&wanted, max_bytes, version).0
            }
            Some((topics, _, _)) if min_bytes == 0 => break topics,
            _ => {}
        }
        // Wait for an append (anywhere) or the deadline, then look again.
        if tokio::time::timeout_at(deadline.into(), appends.changed())
            .await
            .is_err()
        {
            // Deadline: one last read below returns whatever is there.
            let w = wanted.clone();
            break blocking(move || read_all(&w, max_bytes, version)).await?.0;
        }
    };
    let mut resp = FetchResponse::default().with_responses(topics);
    if version >= 7 {
        resp = resp.with_session_id(0);
    }
    encode(&ctx, &resp)
}

//! OffsetFetch (key 9), v1–9. v1–7: one group (`topics`; null from v2 means every committed
//! partition); v8+: a batch of `groups`. A partition without a commit (or an unknown group)
//! answers offset -1, leader epoch -1 and empty (never null) metadata.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::group::{CommittedOffset, GroupCoordinator};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::OffsetFetch, 1, 9, 1, handle);

/// Committed offsets of one group: (topic, [(partition, offset)]).
type Fetched = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// The offsets of `wanted` partitions, or of every committed partition when `None`.
fn fetch(
    groups: &GroupCoordinator,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Fetched {
    groups.inspect(group_id, |g| match wanted {
        Some(wanted) => wanted
            .into_iter()
            .map(|(topic, parts)| {
                // One range walk per topic, then a binary search per partition: no key
                // allocation and no string comparison per partition (1,000-partition fetches).
                let committed: Vec<(i32, &CommittedOffset)> = g.map_or_else(Vec::new, |g| {
                    let range = (topic.clone(), i32::MIN)..=(topic.clone(), i32::MAX);
                    g.offsets.range(range).map(|((_, p), c)| (*p, c)).collect()
                });
                let found = parts
                    .into_iter()
                    .map(|p| {
                        let c = committed
                            .binary_search_by_key(&p, |e| e.0)
                            .ok()
                            .map(|i| committed[i].1.clone());
                        (p, c)
                    })
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut out: Fetched = Vec::new();
            if let Some(g) = g {
                for ((topic, p), c) in &g.offsets {
                    match out.last_mut() {
                        Some((t, v)) if t == topic => v.push((*p, Some(c.clone()))),
                        _ => out.push((topic.clone(), vec![(*p, Some(c.clone()))])),
                    }
                }
            }
            out
        }
    })
}

fn fields(c: Option<CommittedOffset>) -> (i64, i32, String) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata),
        None => (-1, -1, String::new()),
    }
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: OffsetFetchRequest = decode(&ctx, body)?;
    let groups = &ctx.broker.groups;
    let resp = if ctx.version >= 8 {
        let out = req
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect::<Vec<_>>()
                });
                let topics = fetch(groups, &g.group_id.0, wanted)
                    .into_iter()
                    .map(|(topic, parts)| {
                        let partitions = parts
                            .into_iter()
                            .map(|(p, c)| {
                                let (offset, epoch, metadata) = fields(c);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(s(metadata)))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(s(topic)))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        OffsetFetchResponse::default().with_groups(out)
    } else {
        let wanted = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let topics = fetch(groups, &req.group_id.0, wanted)
            .into_iter()
            .map(|(topic, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|(p, c)| {
                        let (offset, epoch, metadata) = fields(c);
                        let mut r = OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_metadata(Some(s(metadata)));
                        if ctx.version >= 5 {
                            r = r.with_committed_leader_epoch(epoch);
                        }
                        r
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(partitions)
            })
            .collect();
        OffsetFetchResponse::default().with_topics(topics)
    };
    encode(&ctx, &resp)
}

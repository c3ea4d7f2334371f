//! OffsetCommit (key 8), v2–9. Request → per topic → per partition. The member and
//! generation are checked first (generation -1 with an empty member id is a simple commit,
//! allowed while the group has no members); then each partition (the topic must exist,
//! metadata at most `offset.metadata.max.bytes`). The accepted offsets are written to the
//! offsets log as one record before the answer (see [`crate::group::offsets`]).

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};

use super::blocking;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::group::state::wall_ms;
use crate::group::{CommittedOffset, OffsetCommit};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::OffsetCommit, 2, 9, 2, handle);

fn partition_result(index: i32, error: i16) -> OffsetCommitResponsePartition {
    OffsetCommitResponsePartition::default()
        .with_partition_index(index)
        .with_error_code(error)
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: OffsetCommitRequest = decode(&ctx, body)?;
    let b = ctx.broker.clone();
    let group_id = req.group_id.0.to_string();
    let group_error = if group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else {
        b.groups.check_commit(
            &group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
        )
    };
    let now = wall_ms();
    let max_metadata = b.groups.config.offset_metadata_max_bytes;
    let mut commits = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = b.topic(&t.name.0);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            let error = if group_error != 0 {
                group_error
            } else if topic
                .as_ref()
                .and_then(|t| t.partition(p.partition_index))
                .is_none()
            {
                ResponseError::UnknownTopicOrPartition.code()
            } else if metadata.len() > max_metadata {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                commits.push(OffsetCommit {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    committed: CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if ctx.version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: metadata.to_string(),
                        commit_ms: now,
                    },
                });
                0
            };
            partitions.push(partition_result(p.partition_index, error));
        }
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    if !commits.is_empty() {
        // The write (one `write` into the page cache, no fsync) runs in `block_in_place`: the
        // runtime moves this worker's other tasks to another thread, so nothing is starved,
        // and the commit does not wait for a blocking-pool thread to be scheduled (on a busy
        // machine that wake-up dominated the commit's tail latency).
        let multi_thread = matches!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
        let written = if multi_thread {
            tokio::task::block_in_place(|| b.groups.commit(&group_id, commits))
        } else {
            let groups = b.clone();
            blocking(move || groups.groups.commit(&group_id, commits))
                .await
                .and_then(|r| r)
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "Writing committed offsets failed.");
            let code = e.code();
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = code;
                    }
                }
            }
        }
    }
    encode(&ctx, &OffsetCommitResponse::default().with_topics(topics))
}

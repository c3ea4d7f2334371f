//! SyncGroup (key 14), v0–5. The leader sends every member's assignment; followers wait for
//! it. The assignment in the answer is never null (empty bytes when there is none). v5 checks
//! the protocol type and name.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::group::{resolve, Pending, SyncResult};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::SyncGroup, 0, 5, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: SyncGroupRequest = decode(&ctx, body)?;
    let group_id = req.group_id.0.to_string();
    let pending = if group_id.is_empty() {
        Pending::Ready(SyncResult {
            error: ResponseError::InvalidGroupId.code(),
            ..Default::default()
        })
    } else {
        let assignments = req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect();
        ctx.broker.groups.sync(
            &group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            (req.protocol_type.as_deref(), req.protocol_name.as_deref()),
            assignments,
        )
    };
    let gone = SyncResult {
        error: ResponseError::UnknownMemberId.code(),
        ..Default::default()
    };
    let r = resolve(pending, gone).await;
    let mut resp = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if ctx.version >= 5 {
        resp = resp
            .with_protocol_type(r.protocol_type.map(s))
            .with_protocol_name(r.protocol_name.map(s));
    }
    encode(&ctx, &resp)
}

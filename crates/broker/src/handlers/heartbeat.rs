//! Heartbeat (key 12), v0–4: resets the member's session timer; REBALANCE_IN_PROGRESS tells
//! it to rejoin.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::Heartbeat, 0, 4, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: HeartbeatRequest = decode(&ctx, body)?;
    let error = ctx.broker.groups.heartbeat(
        &req.group_id.0,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    encode(&ctx, &HeartbeatResponse::default().with_error_code(error))
}

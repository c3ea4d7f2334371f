//! LeaveGroup (key 13), v0–5: v0–2 one `member_id`; v3+ a batch of members identified by
//! member id and/or `group.instance.id` (KIP-345, used by admin member removal).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::LeaveGroup, 0, 5, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: LeaveGroupRequest = decode(&ctx, body)?;
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let codes = ctx.broker.groups.leave(&req.group_id.0, &members);
    let resp = if ctx.version >= 3 {
        let members = members
            .into_iter()
            .zip(codes)
            .map(|((m, i), code)| {
                MemberResponse::default()
                    .with_member_id(s(m))
                    .with_group_instance_id(i.map(s))
                    .with_error_code(code)
            })
            .collect();
        LeaveGroupResponse::default().with_members(members)
    } else {
        LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0))
    };
    encode(&ctx, &resp)
}

//! JoinGroup (key 11), v0–9. The answer is delayed until the group's join phase completes
//! (see [`crate::group::state`]). v4+ dynamic members first get MEMBER_ID_REQUIRED with their
//! id (KIP-394); v5+ carries `group.instance.id` (KIP-345); v7+ returns the protocol type;
//! v0 has no rebalance timeout (the session timeout is used).

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::group::{resolve, JoinParams, JoinResult};

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::JoinGroup, 0, 9, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: JoinGroupRequest = decode(&ctx, body)?;
    let group_id = req.group_id.0.to_string();
    let result = if group_id.is_empty() {
        JoinResult {
            error: ResponseError::InvalidGroupId.code(),
            generation_id: -1,
            ..Default::default()
        }
    } else {
        let params = JoinParams {
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.map(|i| i.to_string()),
            client_id: ctx
                .header
                .client_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            // Kafka's form: InetAddress.toString() of the peer, "/127.0.0.1".
            client_host: ctx.peer.map(|a| format!("/{}", a.ip())).unwrap_or_default(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: if ctx.version >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            },
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member_id: ctx.version >= 4,
        };
        let member_id = params.member_id.clone();
        let gone = JoinResult {
            error: ResponseError::UnknownMemberId.code(),
            generation_id: -1,
            member_id,
            ..Default::default()
        };
        resolve(ctx.broker.groups.join(&group_id, params), gone).await
    };
    encode(&ctx, &response(ctx.version, result))
}

fn response(version: i16, r: JoinResult) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(s(m.member_id))
                .with_group_instance_id(if version >= 5 {
                    m.group_instance_id.map(s)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_name = match (r.protocol_name, version >= 7) {
        (Some(n), _) => Some(s(n)),
        (None, true) => None,
        (None, false) => Some(s("")),
    };
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation_id)
        .with_protocol_name(protocol_name)
        .with_leader(s(r.leader))
        .with_member_id(s(r.member_id))
        .with_members(members);
    if version >= 7 {
        resp = resp.with_protocol_type(r.protocol_type.map(s));
    }
    if version >= 9 {
        resp = resp.with_skip_assignment(r.skip_assignment);
    }
    resp
}

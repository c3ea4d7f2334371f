//! DescribeGroups (key 15), v0–5: state, protocol type, selected protocol and members. Member
//! metadata and assignments are included only when the group is Stable (as Kafka does). An
//! unknown group is reported as "Dead" with no error (v0–5).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;
use crate::group::GroupState;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::DescribeGroups, 0, 5, 0, handle);

/// Kafka's "operations not requested" marker.
const NO_OPERATIONS: i32 = i32::MIN;
/// Without ACLs every group operation is allowed: READ (3), DELETE (6), DESCRIBE (8).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: DescribeGroupsRequest = decode(&ctx, body)?;
    let version = ctx.version;
    let operations = if req.include_authorized_operations {
        GROUP_OPERATIONS
    } else {
        NO_OPERATIONS
    };
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            ctx.broker.groups.inspect(&id.0, |g| {
                let base = DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_authorized_operations(operations);
                let Some(g) = g else {
                    return base
                        .with_group_state(s(GroupState::Dead.name()))
                        .with_protocol_type(s(""))
                        .with_protocol_data(s(""));
                };
                let stable = g.state == GroupState::Stable;
                let protocol = g.protocol.clone().unwrap_or_default();
                let members = g
                    .members_in_order()
                    .into_iter()
                    .map(|m| {
                        let mut d = DescribedGroupMember::default()
                            .with_member_id(s(m.id.clone()))
                            .with_client_id(s(m.client_id.clone()))
                            .with_client_host(s(m.client_host.clone()));
                        if version >= 4 {
                            d = d.with_group_instance_id(m.instance_id.clone().map(s));
                        }
                        if stable {
                            let meta = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, b)| b.clone());
                            d = d
                                .with_member_metadata(meta.unwrap_or_default())
                                .with_member_assignment(m.assignment.clone());
                        }
                        d
                    })
                    .collect();
                base.with_group_state(s(g.state.name()))
                    .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
                    .with_protocol_data(s(protocol))
                    .with_members(members)
            })
        })
        .collect();
    encode(&ctx, &DescribeGroupsResponse::default().with_groups(groups))
}

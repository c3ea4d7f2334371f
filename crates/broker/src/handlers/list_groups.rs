//! ListGroups (key 16), v0–5: every group with its protocol type; v4+ its state and a
//! `states_filter`; v5+ its type ("classic") and a `types_filter`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::ListGroups, 0, 5, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: ListGroupsRequest = decode(&ctx, body)?;
    let states: Vec<String> = req
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let version = ctx.version;
    let mut groups: Vec<ListedGroup> = ctx.broker.groups.inspect_all(|all| {
        all.filter(|g| states.is_empty() || states.contains(&g.state.name().to_ascii_lowercase()))
            .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
            .map(|g| {
                let mut l = ListedGroup::default()
                    .with_group_id(GroupId(s(g.id.clone())))
                    .with_protocol_type(s(g
                        .protocol_type
                        .clone()
                        .unwrap_or_else(|| committed_type(g))));
                if version >= 4 {
                    l = l.with_group_state(s(g.state.name()));
                }
                if version >= 5 {
                    l = l.with_group_type(s("classic"));
                }
                l
            })
            .collect()
    });
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    encode(&ctx, &ListGroupsResponse::default().with_groups(groups))
}

/// The protocol type reported for a group without members: "consumer" when it has committed
/// offsets (Kafka keeps the type of the last generation; tools list such groups as consumer
/// groups), else "".
fn committed_type(g: &crate::group::Group) -> String {
    if g.offsets.is_empty() {
        String::new()
    } else {
        "consumer".to_string()
    }
}

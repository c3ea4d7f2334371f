//! DeleteGroups (key 42), v0–2: deletes Empty groups with their committed offsets;
//! NON_EMPTY_GROUP while there are members, GROUP_ID_NOT_FOUND for an unknown group.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

use super::blocking;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::DeleteGroups, 0, 2, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: DeleteGroupsRequest = decode(&ctx, body)?;
    let b = ctx.broker.clone();
    let results = blocking(move || {
        req.groups_names
            .into_iter()
            .map(|id| {
                let code = b.groups.delete_group(&id.0).unwrap_or_else(|e| {
                    tracing::error!(error = %e, group = %id.0.as_str(), "Deleting a group failed.");
                    e.code()
                });
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(code)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(&ctx, &DeleteGroupsResponse::default().with_results(results))
}

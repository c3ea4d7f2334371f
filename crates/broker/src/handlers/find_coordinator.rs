//! FindCoordinator (key 10), v0–5: this node coordinates every group. v0–3 answer a single
//! `key`; v4+ (KIP-699) a `coordinator_keys` batch. Transaction coordinators (key type 1)
//! are refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which Java treats as fatal
//! instead of retrying forever; share groups (type 2, v6) are not offered.
//! (Old librdkafka also needs FindCoordinator v0 advertised to enable LZ4.)

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::FindCoordinator, 0, 5, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: FindCoordinatorRequest = decode(&ctx, body)?;
    let b = &ctx.broker;
    let node = BrokerId(b.config.node_id);
    let host = s(b.advertised.host.clone());
    let port = b.advertised.port as i32;
    let error = match req.key_type {
        0 => None,
        1 => Some(ResponseError::TransactionalIdAuthorizationFailed),
        _ => Some(ResponseError::InvalidRequest),
    };
    let resp = if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| match error {
                None => Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(port),
                Some(e) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_host(s(""))
                    .with_port(-1)
                    .with_error_code(e.code())
                    .with_error_message(Some(s("transactions are not supported"))),
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        match error {
            None => FindCoordinatorResponse::default()
                .with_node_id(node)
                .with_host(host)
                .with_port(port),
            Some(e) => {
                let mut r = FindCoordinatorResponse::default()
                    .with_error_code(e.code())
                    .with_node_id(BrokerId(-1))
                    .with_host(s(""))
                    .with_port(-1);
                if ctx.version >= 1 {
                    r = r.with_error_message(Some(s("transactions are not supported")));
                }
                r
            }
        }
    };
    encode(&ctx, &resp)
}

//! DescribeCluster (key 60), v0–2: this node, as broker and controller, and the stable
//! cluster id (Connect and Java Admin read it at start-up).

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::s;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::DescribeCluster, 0, 2, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: DescribeClusterRequest = decode(&ctx, body)?;
    let b = &ctx.broker;
    let node = BrokerId(b.config.node_id);
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(s(b.cluster_id.clone()))
        .with_controller_id(node)
        .with_error_message(None)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node)
            .with_host(s(b.advertised.host.clone()))
            .with_port(b.advertised.port as i32)]);
    if req.include_cluster_authorized_operations {
        resp = resp.with_cluster_authorized_operations(super::metadata::CLUSTER_OPERATIONS);
    }
    if ctx.version >= 1 {
        resp = resp.with_endpoint_type(req.endpoint_type);
        if req.endpoint_type != 1 {
            resp = resp
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(s("only broker endpoints (type 1) exist")))
                .with_brokers(Vec::new());
        }
    }
    encode(&ctx, &resp)
}

//! The dispatch table: one row per implemented API, keyed by API key, with the versions the
//! broker decodes and advertises. The ApiVersions response is generated from this table, so
//! what is advertised cannot drift from what is implemented. Adding an API is adding a file
//! under `handlers/` and a row to [`HANDLERS`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::handlers;

/// What a handler gets besides the body.
#[derive(Clone)]
pub struct RequestContext {
    /// The broker.
    pub broker: Arc<Broker>,
    /// The decoded request header.
    pub header: RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// The request version.
    pub version: i16,
    /// The client's address (`None` when unknown, e.g. frames handled without a socket).
    pub peer: Option<std::net::SocketAddr>,
}

/// A handler's future: the encoded response body, or `None` for no response (acks=0).
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<BytesMut>>> + Send>>;

/// One row of the dispatch table.
pub struct ApiHandler {
    /// The API.
    pub key: ApiKey,
    /// Lowest version decoded.
    pub min_version: i16,
    /// Highest version decoded and advertised.
    pub max_version: i16,
    /// Lowest version advertised (below `min_version` only for Kafka's Produce quirk,
    /// KAFKA-18659: old librdkafka only enables compression if Produce's range starts at 0).
    pub advertised_min: i16,
    /// The handler.
    pub handle: fn(RequestContext, Bytes) -> HandlerFuture,
}

/// Every implemented API.
pub static HANDLERS: &[ApiHandler] = &[
    handlers::produce::HANDLER,
    handlers::fetch::HANDLER,
    handlers::list_offsets::HANDLER,
    handlers::metadata::HANDLER,
    handlers::find_coordinator::HANDLER,
    handlers::api_versions::HANDLER,
    handlers::create_topics::HANDLER,
    handlers::delete_topics::HANDLER,
    handlers::delete_records::HANDLER,
    handlers::init_producer_id::HANDLER,
    handlers::offset_for_leader_epoch::HANDLER,
    handlers::describe_configs::HANDLER,
    handlers::alter_configs::HANDLER,
    handlers::create_partitions::HANDLER,
    handlers::incremental_alter_configs::HANDLER,
    handlers::describe_cluster::HANDLER,
    // Consumer groups (crate::group).
    handlers::offset_commit::HANDLER,
    handlers::offset_fetch::HANDLER,
    handlers::join_group::HANDLER,
    handlers::heartbeat::HANDLER,
    handlers::leave_group::HANDLER,
    handlers::sync_group::HANDLER,
    handlers::describe_groups::HANDLER,
    handlers::list_groups::HANDLER,
    handlers::delete_groups::HANDLER,
    handlers::offset_delete::HANDLER,
];

/// The row for an API key.
pub fn find(api_key: i16) -> Option<&'static ApiHandler> {
    HANDLERS.iter().find(|h| h.key as i16 == api_key)
}

/// Decodes a request body at the context's version.
pub fn decode<T: Decodable>(ctx: &RequestContext, mut body: Bytes) -> Result<T> {
    T::decode(&mut body, ctx.version).map_err(|e| BrokerError::Decode {
        api: api_name(ctx.api_key),
        version: ctx.version,
        reason: e.to_string(),
    })
}

/// Encodes a response body at the context's version, into a buffer sized up front (a large
/// Fetch answer is then copied once, not again at every doubling of a growing buffer).
pub fn encode<T: Encodable>(ctx: &RequestContext, response: &T) -> Result<Option<BytesMut>> {
    let mut buf = BytesMut::with_capacity(response.compute_size(ctx.version).unwrap_or(0));
    response
        .encode(&mut buf, ctx.version)
        .map_err(|e| BrokerError::Encode {
            api: api_name(ctx.api_key),
            version: ctx.version,
            reason: e.to_string(),
        })?;
    Ok(Some(buf))
}

/// A readable API name.
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        _ => "request",
    }
}

/// Macro-free helper for handler rows: wraps an async fn into the table's fn pointer type.
#[macro_export]
macro_rules! handler_row {
    ($key:expr, $min:expr, $max:expr, $adv_min:expr, $f:path) => {
        $crate::dispatch::ApiHandler {
            key: $key,
            min_version: $min,
            max_version: $max,
            advertised_min: $adv_min,
            handle: |ctx, body| Box::pin($f(ctx, body)),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_versions_are_within_the_codec_and_keys_unique() {
        for (i, h) in HANDLERS.iter().enumerate() {
            let codec = h.key.valid_versions();
            assert!(
                h.min_version >= codec.min && h.max_version <= codec.max,
                "{:?}",
                h.key
            );
            assert!(h.advertised_min <= h.min_version);
            assert!(
                HANDLERS[i + 1..].iter().all(|o| o.key != h.key),
                "duplicate {:?}",
                h.key
            );
        }
        // Never advertise what clients take as opt-in features we do not implement.
        for key in [68i16, 69, 71, 72, 75] {
            assert!(find(key).is_none());
        }
    }
}

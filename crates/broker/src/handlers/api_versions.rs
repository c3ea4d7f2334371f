//! ApiVersions (key 18), v0–4 (v3+ flexible body; the response header is always v0).
//! The list of APIs is the dispatch table. A too-new request version is answered in
//! `connection` (KIP-511 v0 fallback) before reaching this handler.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::dispatch::{decode, encode, ApiHandler, RequestContext, HANDLERS};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::ApiVersions, 0, 4, 0, handle);

/// Kafka's rule for v3+ client software name and version.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

/// The advertised API list, derived from the dispatch table.
pub fn advertised() -> Vec<ApiVersion> {
    HANDLERS
        .iter()
        .map(|h| {
            ApiVersion::default()
                .with_api_key(h.key as i16)
                .with_min_version(h.advertised_min)
                .with_max_version(h.max_version)
        })
        .collect()
}

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<bytes::BytesMut>> {
    let ctx = &ctx;
    let req: ApiVersionsRequest = decode(ctx, body)?;
    let mut resp = ApiVersionsResponse::default().with_api_keys(advertised());
    if ctx.version >= 3
        && (!valid_software_field(&req.client_software_name)
            || !valid_software_field(&req.client_software_version))
    {
        resp = ApiVersionsResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    encode(ctx, &resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names_follow_kafkas_pattern() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.0.2"));
        assert!(valid_software_field("apache-kafka-java"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }

    #[test]
    fn produce_is_advertised_from_zero() {
        let produce = advertised().into_iter().find(|a| a.api_key == 0).unwrap();
        assert_eq!(produce.min_version, 0);
    }
}

//! InitProducerId (key 22), v0–5, for idempotent producers: a new, never reused producer id
//! with epoch 0 (the id high-water mark is persisted in blocks). With v3+ a producer that
//! presents its current (id, epoch) gets the epoch bumped (KIP-360), or a new id when the
//! epoch is exhausted. Transactional ids are refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED (a clear, fatal error for clients).

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::blocking;
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::InitProducerId, 0, 5, 0, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: InitProducerIdRequest = decode(&ctx, body)?;
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        return encode(
            &ctx,
            &fail(ResponseError::TransactionalIdAuthorizationFailed),
        );
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        // KIP-360: an idempotent producer bumps its own epoch after an error.
        let resp = InitProducerIdResponse::default()
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
        return encode(&ctx, &resp);
    }
    let broker = ctx.broker.clone();
    let resp = match blocking(move || broker.next_producer_id()).await? {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "Cannot allocate a producer id.");
            fail(e.kafka_error())
        }
    };
    encode(&ctx, &resp)
}

//! DeleteTopics (key 20), v1–6: by name (v1–5 `topic_names`, v6 `topics[].name`) or by
//! topic id (v6). Refused with TOPIC_DELETION_DISABLED when `delete.topic.enable=false`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::{blocking, s};
use crate::dispatch::{decode, encode, ApiHandler, RequestContext};
use crate::error::Result;

/// Dispatch row.
pub const HANDLER: ApiHandler = crate::handler_row!(ApiKey::DeleteTopics, 1, 6, 1, handle);

async fn handle(ctx: RequestContext, body: Bytes) -> Result<Option<BytesMut>> {
    let req: DeleteTopicsRequest = decode(&ctx, body)?;
    let broker = ctx.broker.clone();
    let version = ctx.version;
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let results = blocking(move || {
        targets
            .into_iter()
            .map(|(name, id)| {
                let resolved = match &name {
                    Some(n) => Ok(n.clone()),
                    None => broker.topic_by_id(id).map(|t| t.name.clone()).ok_or(id),
                };
                let mut r = DeletableTopicResult::default()
                    .with_name(name.clone().map(|n| TopicName(s(n))));
                if version >= 6 {
                    r = r.with_topic_id(id);
                }
                match resolved {
                    Err(id) => {
                        r = r.with_error_code(ResponseError::UnknownTopicId.code());
                        if version >= 5 {
                            r = r.with_error_message(Some(s(format!("unknown topic id {id}"))));
                        }
                    }
                    Ok(n) => match broker.delete_topic(&n) {
                        Ok(t) => {
                            r = r.with_name(Some(TopicName(s(n))));
                            if version >= 6 {
                                r = r.with_topic_id(t.id);
                            }
                        }
                        Err(e) => {
                            r = r.with_error_code(e.error.code());
                            if version >= 5 {
                                r = r.with_error_message(Some(s(e.message)));
                            }
                        }
                    },
                }
                r
            })
            .collect::<Vec<_>>()
    })
    .await?;
    encode(
        &ctx,
        &DeleteTopicsResponse::default().with_responses(results),
    )
}

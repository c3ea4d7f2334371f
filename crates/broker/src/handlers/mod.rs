//! One file per Kafka API, named after it, with its version range in its [`HANDLER`] row
//! (see [`crate::dispatch`]). Inside each: request → per topic → per partition.
//!
//! [`HANDLER`]: api_versions::HANDLER

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod fetch;
pub mod find_coordinator;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;

use kafka_protocol::protocol::StrBytes;

use crate::error::{BrokerError, Result};

/// A `StrBytes` from any string.
pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Runs blocking work (file I/O, fsync) off the runtime threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))
}

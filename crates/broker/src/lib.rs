//! Flumen's broker: the Kafka wire protocol over the storage engine.
//!
//! Layout: [`config`] (server.properties keys), [`server`] (listener, background tasks,
//! graceful shutdown), [`connection`] (framing, in-order pipelined responses),
//! [`dispatch`] (the API table, which also generates ApiVersions), [`handlers`] (one file per
//! API), [`broker`] (topic registry and shared state), [`meta_store`] (persisted metadata),
//! [`partition`] (a partition log plus idempotent-producer state), [`topic_config`].

pub mod batch;
pub mod broker;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod meta_store;
pub mod partition;
pub mod producer_state;
pub mod server;
pub mod topic_config;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use error::{BrokerError, Result};
pub use server::Server;

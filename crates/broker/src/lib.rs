//! Flumen's broker: the Kafka wire protocol over the storage engine.

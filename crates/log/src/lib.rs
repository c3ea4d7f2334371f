//! Flumen's storage engine: partition logs made of segments in Kafka's on-disk format.
//!
//! (Being written; see the crate README and `docs/`.)

//! `SinkRunner`: one task per sink processor, calling `process()` in a loop with Flume's
//! backoff (BACKOFF: sleep `min(n × 1000, 5000)` ms, cut short when a channel gets events;
//! an error: log `Unable to deliver event. Exception follows.` and sleep 5000 ms).
//!
//! Shutdown has two steps: `drain` makes the runner stop as soon as its channels are empty
//! (takes no longer wait), `stop` ends it at once (an open transaction rolls back).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::processor::SinkProcessor;
use super::Status;
use crate::channel::MemoryChannel;

/// Runs `processor` until `stop`, or until `drain` and its channels are empty.
pub async fn run(mut processor: SinkProcessor, drain: CancellationToken, stop: CancellationToken) {
    let channels: Vec<Arc<MemoryChannel>> =
        processor.sinks().map(|s| s.channel().clone()).collect();
    let mut backoffs: u64 = 0;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let result = tokio::select! {
            _ = stop.cancelled() => break,
            r = processor.process() => r,
        };
        match result {
            Ok(Status::Ready) => backoffs = 0,
            Ok(Status::Backoff) => {
                if drain.is_cancelled() && channels.iter().all(|c| c.is_empty()) {
                    break;
                }
                backoffs += 1;
                let d = Duration::from_millis((backoffs * 1000).min(5000));
                let wake = async {
                    if drain.is_cancelled() {
                        return;
                    }
                    // Wake early when any channel gets events.
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if channels.iter().any(|c| !c.is_empty()) {
                            return;
                        }
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = drain.cancelled(), if !drain.is_cancelled() => {}
                    _ = tokio::time::sleep(d) => {}
                    _ = wake => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, "Unable to deliver event. Exception follows.");
                if drain.is_cancelled() {
                    // Nothing will get better during shutdown: give up on what is left.
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    }
    processor.stop().await;
}

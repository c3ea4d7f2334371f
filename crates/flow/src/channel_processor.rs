//! The source side of the flow (Flume's `ChannelProcessor`): interceptors over the whole
//! batch, then the selector, then one put transaction per required channel (a failure is
//! returned to the source; channels already committed are not undone, as in Flume), then
//! the optional channels (failures logged and ignored).

use std::sync::Arc;

use crate::channel::MemoryChannel;
use crate::error::Result;
use crate::event::Event;
use crate::interceptor::Interceptor;
use crate::selector::ChannelSelector;

/// Puts events from one source into its channels.
pub struct ChannelProcessor {
    channels: Vec<Arc<MemoryChannel>>,
    selector: ChannelSelector,
    interceptors: Vec<Box<dyn Interceptor>>,
}

impl ChannelProcessor {
    /// A processor over `channels` (indexes as the selector uses them).
    pub fn new(
        channels: Vec<Arc<MemoryChannel>>,
        selector: ChannelSelector,
        interceptors: Vec<Box<dyn Interceptor>>,
    ) -> Self {
        ChannelProcessor {
            channels,
            selector,
            interceptors,
        }
    }

    /// The largest batch one put transaction takes (the smallest transactionCapacity).
    pub fn max_batch(&self) -> usize {
        self.channels
            .iter()
            .map(|c| c.config().transaction_capacity)
            .min()
            .unwrap_or(100)
    }

    /// The channels this processor puts to.
    pub fn channels(&self) -> &[Arc<MemoryChannel>] {
        &self.channels
    }

    /// Intercepts, selects and puts a batch. Batches larger than a channel's
    /// transactionCapacity are put in several transactions.
    pub async fn process_batch(&self, mut events: Vec<Event>) -> Result<()> {
        for i in &self.interceptors {
            i.intercept(&mut events);
        }
        if events.is_empty() {
            return Ok(());
        }
        if self.selector.is_static() {
            let required = self.selector.required(&events[0]);
            if required.len() == 1 {
                return put(&self.channels[required[0]], events).await;
            }
        }
        let n = self.channels.len();
        let mut required: Vec<Vec<Event>> = vec![Vec::new(); n];
        let mut optional: Vec<Vec<Event>> = vec![Vec::new(); n];
        for e in events {
            for &c in self.selector.required(&e) {
                required[c].push(e.clone());
            }
            for &c in self.selector.optional(&e) {
                optional[c].push(e.clone());
            }
        }
        for (c, batch) in required.into_iter().enumerate() {
            if !batch.is_empty() {
                put(&self.channels[c], batch).await?;
            }
        }
        for (c, batch) in optional.into_iter().enumerate() {
            if !batch.is_empty() {
                if let Err(error) = put(&self.channels[c], batch).await {
                    tracing::warn!(%error, channel = self.channels[c].name(), "Unable to put batch on optional channel.");
                }
            }
        }
        Ok(())
    }

    /// One event (Flume's `processEvent`).
    pub async fn process_event(&self, event: Event) -> Result<()> {
        self.process_batch(vec![event]).await
    }
}

async fn put(channel: &Arc<MemoryChannel>, mut events: Vec<Event>) -> Result<()> {
    let cap = channel.config().transaction_capacity.max(1);
    while !events.is_empty() {
        let rest = if events.len() > cap {
            events.split_off(cap)
        } else {
            Vec::new()
        };
        let mut tx = channel.transaction();
        tx.put_vec(events)?;
        tx.commit().await?;
        events = rest;
    }
    Ok(())
}

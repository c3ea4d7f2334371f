//! `thrift`: Flume's `ThriftSink`, a client of `ThriftSourceProtocol` over Thrift's framed
//! transport with the compact (Flume's default) or binary protocol (see
//! [`crate::thrift_rpc`]). Each batch taken from the channel is one `appendBatch`; the take
//! is committed only when the next tier answers `OK` (see [`super::rpc`]).
//!
//! Not supported (refused at configuration): `ssl = true` and `kerberos = true`.

use std::sync::Arc;
use std::time::Duration;

use super::rpc::{LazyConnection, RpcClient, RpcSink, RpcSinkConfig};
use super::BoxFuture;
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;
use crate::source::thrift::{protocol, refuse_security};
use crate::thrift_rpc::{self, Method, Protocol, Status};

/// Settings of the `thrift` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThriftSinkConfig {
    /// `hostname`, `port`, `batch-size`, `connect-timeout`, `request-timeout`,
    /// `connection-reset-interval`.
    pub rpc: RpcSinkConfig,
    /// `protocol`: `compact` or `binary`. Flume's default: compact.
    pub protocol: Protocol,
}

impl ThriftSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let rpc = RpcSinkConfig::from_context(ctx)?;
        let protocol = protocol(ctx)?;
        refuse_security(ctx, "thrift sink")?;
        Ok(ThriftSinkConfig { rpc, protocol })
    }

    /// Creates the sink (it connects lazily, on the first batch).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> ThriftSink {
        let c = &self.rpc;
        let client = ThriftClient::new(
            format!("{}:{}", c.hostname, c.port),
            self.protocol,
            c.connect_timeout,
            c.request_timeout,
        );
        RpcSink::new(name, channel, self.rpc, client)
    }
}

/// A running `thrift` sink.
pub type ThriftSink = RpcSink<ThriftClient>;

/// A client of a Thrift source over a [`LazyConnection`].
#[derive(Debug)]
pub struct ThriftClient {
    conn: LazyConnection,
    protocol: Protocol,
    seqid: i32,
}

impl ThriftClient {
    /// A client of `target` (`host:port`).
    pub fn new(
        target: String,
        protocol: Protocol,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        ThriftClient {
            conn: LazyConnection::new(target, connect_timeout, request_timeout),
            protocol,
            seqid: 0,
        }
    }

    async fn try_append(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        self.seqid = self.seqid.wrapping_add(1);
        let seqid = self.seqid;
        let call = thrift_rpc::encode_call(self.protocol, Method::AppendBatch, seqid, events);
        let reply = self
            .conn
            .request(|stream| {
                Box::pin(async move {
                    thrift_rpc::write_frame(stream, &call).await?;
                    thrift_rpc::read_frame(stream).await
                })
            })
            .await?;
        let target = self.conn.target();
        match thrift_rpc::decode_reply(self.protocol, &reply, seqid).map_err(|e| e.to_string())? {
            Ok(Status::Ok) => Ok(()),
            Ok(s) => Err(format!(
                "Failed to deliver events. Server returned status : {}",
                s.name()
            )),
            Err(m) => Err(format!("{target} answered an exception: {m}")),
        }
    }
}

impl RpcClient for ThriftClient {
    fn append_batch<'a>(
        &'a mut self,
        events: &'a [Event],
    ) -> BoxFuture<'a, std::result::Result<(), String>> {
        Box::pin(async move {
            let r = self.try_append(events).await;
            if r.is_err() {
                self.conn.close();
            }
            r
        })
    }
    fn connection_age(&self) -> Option<Duration> {
        self.conn.age()
    }
    fn close(&mut self) {
        self.conn.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MemoryChannelConfig;
    use crate::channel_processor::ChannelProcessor;
    use crate::selector::ChannelSelector;
    use crate::sink::{Sink, Status as SinkStatus};
    use crate::source::thrift::ThriftSourceConfig;
    use crate::source::Source;
    use tokio_util::sync::CancellationToken;

    fn channel(name: &str, capacity: usize) -> Arc<MemoryChannel> {
        let c = MemoryChannelConfig {
            capacity,
            transaction_capacity: capacity,
            keep_alive: Duration::from_millis(50),
            ..Default::default()
        };
        Arc::new(MemoryChannel::new(name, c))
    }

    async fn source(
        ch: &Arc<MemoryChannel>,
        proto: &str,
    ) -> (
        u16,
        CancellationToken,
        tokio::task::JoinHandle<()>,
        Arc<crate::monitoring::CounterGroup>,
    ) {
        let processor = Arc::new(ChannelProcessor::new(
            vec![ch.clone()],
            ChannelSelector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![],
        ));
        let ctx = Context::from_pairs(
            "source r1",
            &[("bind", "127.0.0.1"), ("port", "0"), ("protocol", proto)],
        );
        let src = ThriftSourceConfig::from_context(&ctx)
            .unwrap()
            .build("r1")
            .await
            .unwrap();
        let port = src.local_addr().unwrap().port();
        let counter = src.counter().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(Box::new(src).run(processor, stop.clone()));
        (port, stop, task, counter)
    }

    #[tokio::test]
    async fn sink_to_source_both_protocols_full_channel_and_down() {
        for proto in ["compact", "binary"] {
            let dest = channel("c2", 3);
            let (port, stop, task, source_counter) = source(&dest, proto).await;
            let upstream = channel("c1", 100);
            let ctx = Context::from_pairs(
                "sink k1",
                &[
                    ("hostname", "127.0.0.1"),
                    ("port", &port.to_string()),
                    ("batch-size", "2"),
                    ("protocol", proto),
                    ("request-timeout", "5000"),
                ],
            );
            let mut sink = ThriftSinkConfig::from_context(&ctx)
                .unwrap()
                .build("k1", upstream.clone());
            let mut tx = upstream.transaction();
            let mut e = Event::new(&b"one"[..]);
            e.headers.insert("k".into(), "v".into());
            tx.put(e.clone()).unwrap();
            for b in ["two", "three", "four"] {
                tx.put(Event::new(b.as_bytes().to_vec())).unwrap();
            }
            tx.commit().await.unwrap();
            assert_eq!(sink.process().await.unwrap(), SinkStatus::Ready);
            assert_eq!(dest.len(), 2);
            // The collector's channel holds 3: the next batch of 2 is refused (FAILED),
            // rolled back upstream, nothing lost.
            let err = sink.process().await.unwrap_err().to_string();
            assert!(err.contains("status : FAILED"), "{err}");
            assert_eq!(upstream.len(), 2);
            assert_eq!(dest.len(), 2);
            let mut t = dest.transaction();
            assert_eq!(t.take_batch(10).await.unwrap(), 2);
            assert_eq!(t.taken()[0], e);
            t.commit().await.unwrap();
            assert_eq!(sink.process().await.unwrap(), SinkStatus::Ready);
            assert_eq!((upstream.len(), dest.len()), (0, 2));
            let counter = sink.counter().unwrap();
            assert_eq!(counter.get("EventDrainSuccessCount"), 4);
            assert_eq!(source_counter.get("AppendBatchReceivedCount"), 3);
            assert_eq!(source_counter.get("AppendBatchAcceptedCount"), 2);
            assert_eq!(source_counter.get("EventAcceptedCount"), 4);
            assert_eq!(source_counter.get("ChannelWriteFail"), 1);
            stop.cancel();
            task.await.unwrap();
            // The next tier is down: the batch is rolled back.
            let mut tx = upstream.transaction();
            tx.put(Event::new(&b"five"[..])).unwrap();
            tx.commit().await.unwrap();
            assert!(sink.process().await.is_err());
            assert_eq!(upstream.len(), 1);
        }
    }

    #[tokio::test]
    async fn wrong_protocol_is_an_error_not_a_hang() {
        let dest = channel("c2", 10);
        let (port, stop, task, _) = source(&dest, "binary").await;
        let t = Duration::from_secs(10);
        let mut client = ThriftClient::new(format!("127.0.0.1:{port}"), Protocol::Compact, t, t);
        let err = client
            .append_batch(&[Event::new(&b"x"[..])])
            .await
            .unwrap_err();
        assert!(err.contains("malformed") || err.contains("Thrift"), "{err}");
        assert_eq!(dest.len(), 0);
        stop.cancel();
        task.await.unwrap();
    }
}

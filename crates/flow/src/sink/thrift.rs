//! `thrift`: Flume's `ThriftSink`, a client of `ThriftSourceProtocol` over Thrift's framed
//! transport with the compact (Flume's default) or binary protocol (see
//! [`crate::thrift_rpc`]). Each batch taken from the channel is one `appendBatch`; the take
//! is committed only when the next tier answers `OK` (see [`super::rpc`]).
//!
//! Not supported (refused at configuration): `ssl = true` and `kerberos = true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rpc::{self, Connection, RpcClient, RpcSink, RpcSinkConfig};
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
        let client = ThriftClient {
            target: format!("{}:{}", c.hostname, c.port),
            protocol: self.protocol,
            connect_timeout: c.connect_timeout,
            request_timeout: c.request_timeout,
            conn: None,
            seqid: 0,
        };
        RpcSink::new(name, channel, self.rpc, client)
    }
}

/// A running `thrift` sink.
pub type ThriftSink = RpcSink<ThriftClient>;

/// A connection to a Thrift source: connects lazily, reconnects after any failure.
#[derive(Debug)]
pub struct ThriftClient {
    target: String,
    protocol: Protocol,
    connect_timeout: Duration,
    request_timeout: Duration,
    conn: Option<Connection>,
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
            target,
            protocol,
            connect_timeout,
            request_timeout,
            conn: None,
            seqid: 0,
        }
    }

    async fn try_append(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        let target = &self.target;
        if self.conn.is_none() {
            let stream = rpc::connect(target, self.connect_timeout).await?;
            self.conn = Some(Connection {
                stream,
                opened: Instant::now(),
            });
        }
        self.seqid = self.seqid.wrapping_add(1);
        let seqid = self.seqid;
        let call = thrift_rpc::encode_call(self.protocol, Method::AppendBatch, seqid, events);
        let stream = &mut self.conn.as_mut().expect("connected").stream;
        let reply = tokio::time::timeout(self.request_timeout, async {
            thrift_rpc::write_frame(stream, &call).await?;
            thrift_rpc::read_frame(stream).await
        })
        .await
        .map_err(|_| format!("request to {target} timed out"))?
        .map_err(|e| format!("RPC to {target} failed: {e}"))?
        .ok_or_else(|| format!("{target} closed the connection"))?;
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
                self.close();
            }
            r
        })
    }
    fn close(&mut self) {
        self.conn = None;
    }
    fn connection_age(&self) -> Option<Duration> {
        self.conn.as_ref().map(|c| c.opened.elapsed())
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
        let mut c = MemoryChannelConfig::default();
        c.capacity = capacity;
        c.transaction_capacity = capacity;
        c.keep_alive = Duration::from_millis(50);
        Arc::new(MemoryChannel::new(name, c))
    }

    async fn source(
        ch: &Arc<MemoryChannel>,
        proto: &str,
    ) -> (u16, CancellationToken, tokio::task::JoinHandle<()>) {
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
        let stop = CancellationToken::new();
        let task = tokio::spawn(Box::new(src).run(processor, stop.clone()));
        (port, stop, task)
    }

    #[tokio::test]
    async fn sink_to_source_both_protocols_full_channel_and_down() {
        for proto in ["compact", "binary"] {
            let dest = channel("c2", 3);
            let (port, stop, task) = source(&dest, proto).await;
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
        let (port, stop, task) = source(&dest, "binary").await;
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

//! `thrift`: Flume's `ThriftSink`, a client of `ThriftSourceProtocol` over Thrift's framed
//! transport with the compact (Flume's default) or binary protocol (see
//! [`crate::thrift_rpc`]). Each batch taken from the channel is one `appendBatch`; the take
//! is committed only when the next tier answers `OK` (see [`super::rpc`]).
//!
//! `ssl = true` connects with TLS (see [`crate::tls`]). Not supported (refused at
//! configuration): `kerberos = true`.

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
use crate::tls::{self, TruststoreSettings};

/// Settings of the `thrift` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThriftSinkConfig {
    /// `hostname`, `port`, `batch-size`, `connect-timeout`, `request-timeout`,
    /// `connection-reset-interval`.
    pub rpc: RpcSinkConfig,
    /// `protocol`: `compact` or `binary`. Flume's default: compact.
    pub protocol: Protocol,
    /// `ssl = true` (default false, Flume's): `truststore` (default: the system's CA
    /// bundle), `truststore-type` (`PEM`; unset = detected from the file),
    /// `trust-all-certs` (default false); `truststore-password` is accepted and unused.
    pub tls: Option<TruststoreSettings>,
}

impl ThriftSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let rpc = RpcSinkConfig::from_context(ctx)?;
        let protocol = protocol(ctx)?;
        refuse_security(ctx, "thrift sink")?;
        let tls = tls::truststore_from_context(ctx, &rpc.hostname)?;
        Ok(ThriftSinkConfig { rpc, protocol, tls })
    }

    /// Creates the sink (it connects lazily, on the first batch); reads the trust store.
    /// Runs on a blocking thread (it reads files).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> Result<ThriftSink> {
        let c = &self.rpc;
        let connector = match &self.tls {
            None => None,
            Some(t) => Some(tls::Connector::new(
                t,
                &format!("sink {name}"),
                &c.hostname,
            )?),
        };
        let client = ThriftClient::new(
            format!("{}:{}", c.hostname, c.port),
            self.protocol,
            c.connect_timeout,
            c.request_timeout,
        )
        .with_tls(connector);
        Ok(RpcSink::new(name, channel, self.rpc, client))
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

    /// Connects with TLS.
    pub fn with_tls(mut self, connector: Option<tls::Connector>) -> Self {
        self.conn = self.conn.with_tls(connector);
        self
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
        source_with(ch, proto, &[]).await
    }

    /// A thrift source with these extra properties.
    async fn source_with(
        ch: &Arc<MemoryChannel>,
        proto: &str,
        extra: &[(&str, &str)],
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
        let mut pairs = vec![("bind", "127.0.0.1"), ("port", "0"), ("protocol", proto)];
        pairs.extend_from_slice(extra);
        let ctx = Context::from_pairs("source r1", &pairs);
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
                .build("k1", upstream.clone())
                .unwrap();
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
    async fn connections_past_threads_wait_instead_of_being_closed() {
        let dest = channel("c2", 10);
        let (port, stop, task, _) = source_with(&dest, "compact", &[("threads", "1")]).await;
        let t = Duration::from_secs(30);
        let mut first = ThriftClient::new(format!("127.0.0.1:{port}"), Protocol::Compact, t, t);
        first.append_batch(&[Event::new(&b"a"[..])]).await.unwrap();
        // The only slot is taken: the second client's call waits (it is not refused) ...
        let mut second = ThriftClient::new(format!("127.0.0.1:{port}"), Protocol::Compact, t, t);
        let call = tokio::spawn(async move {
            let r = second.append_batch(&[Event::new(&b"b"[..])]).await;
            (second, r)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!call.is_finished(), "served past `threads`");
        assert_eq!(dest.len(), 1);
        // ... and is served once the first connection ends.
        first.close();
        let (_second, r) = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("the waiting connection was never served")
            .unwrap();
        r.unwrap();
        assert_eq!(dest.len(), 2);
        stop.cancel();
        task.await.unwrap();
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

    /// A thrift sink's client built from sink properties (as the agent builds it).
    async fn client(
        port: u16,
        proto: &str,
        extra: &[(&str, &str)],
    ) -> std::result::Result<ThriftClient, String> {
        let port = port.to_string();
        let mut pairs = vec![
            ("hostname", "127.0.0.1"),
            ("port", port.as_str()),
            ("protocol", proto),
            ("connect-timeout", "5000"),
            ("request-timeout", "5000"),
        ];
        pairs.extend_from_slice(extra);
        let ctx = Context::from_pairs("sink k1", &pairs);
        let config = ThriftSinkConfig::from_context(&ctx).map_err(|e| e.to_string())?;
        let ch = channel("c1", 10);
        tokio::task::spawn_blocking(move || config.build("k1", ch))
            .await
            .unwrap()
            .map(RpcSink::into_client)
            .map_err(|e| e.to_string())
    }

    async fn drain(ch: &Arc<MemoryChannel>) -> Vec<Event> {
        let mut tx = ch.transaction();
        tx.take_batch(100_000).await.unwrap();
        let v = tx.taken().to_vec();
        tx.commit().await.unwrap();
        v
    }

    #[tokio::test]
    async fn tls_both_protocols_and_mismatches_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let (ks, ts) = crate::tls::test_support::self_signed_stores(dir.path());
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let wrong = dir.path().join("wrong.pem");
        std::fs::write(&wrong, other.cert.pem()).unwrap();
        let (ks, ts, wrong) = (
            ks.to_str().unwrap(),
            ts.to_str().unwrap(),
            wrong.to_str().unwrap(),
        );
        let events: Vec<Event> = (0..50)
            .map(|i| {
                let mut e = Event::new(format!("event {i} {}", "x".repeat(i)));
                e.headers.insert("n".into(), i.to_string());
                e
            })
            .collect();
        for proto in ["compact", "binary"] {
            let dest = channel("c2", 1000);
            let (port, stop, task, _) = source_with(
                &dest,
                proto,
                &[
                    ("ssl", "true"),
                    ("keystore", ks),
                    ("keystore-password", "unused"),
                    ("keystore-type", "PEM"),
                    ("exclude-protocols", "SSLv3"),
                ],
            )
            .await;
            let tls = [
                ("ssl", "true"),
                ("truststore", ts),
                ("truststore-password", "unused"),
                ("truststore-type", "PEM"),
            ];
            let mut c = client(port, proto, &tls).await.unwrap();
            c.append_batch(&events).await.unwrap();
            c.append_batch(&events[..1]).await.unwrap();
            // A new connection (TLS handshake again).
            c.close();
            c.append_batch(&events[1..3]).await.unwrap();
            let mut want = events.clone();
            want.extend_from_slice(&events[..3]);
            assert_eq!(drain(&dest).await, want, "{proto}");
            // trust-all-certs without a truststore.
            let mut c = client(port, proto, &[("ssl", "true"), ("trust-all-certs", "true")])
                .await
                .unwrap();
            c.append_batch(&events[..2]).await.unwrap();
            assert_eq!(drain(&dest).await, events[..2].to_vec(), "{proto}");
            // A plain sink against the TLS source, and an untrusted certificate: errors,
            // nothing delivered, no hang.
            for extra in [vec![], vec![("ssl", "true"), ("truststore", wrong)]] {
                let mut c = client(port, proto, &extra).await.unwrap();
                let err = c.append_batch(&events[..2]).await.unwrap_err();
                assert!(!err.is_empty());
                assert_eq!(c.connection_age(), None, "the connection is dropped");
            }
            assert_eq!(dest.len(), 0, "{proto}");
            stop.cancel();
            task.await.unwrap();
            // A TLS sink against a plain source fails too.
            let (port, stop, task, _) = source(&dest, proto).await;
            let mut c = client(port, proto, &tls).await.unwrap();
            assert!(c.append_batch(&events[..2]).await.is_err());
            assert_eq!(dest.len(), 0, "{proto}");
            stop.cancel();
            task.await.unwrap();
        }
    }

    #[test]
    fn tls_properties() {
        let ctx = Context::from_pairs(
            "sink k1",
            &[("hostname", "h"), ("port", "1"), ("ssl", "true")],
        );
        let c = ThriftSinkConfig::from_context(&ctx).unwrap();
        let t = c.tls.unwrap();
        assert_eq!((t.path, t.trust_all), (None, false));
        let ctx = Context::from_pairs(
            "sink k1",
            &[("hostname", "h"), ("port", "1"), ("kerberos", "true")],
        );
        assert!(ThriftSinkConfig::from_context(&ctx).is_err());
        // A missing truststore is reported at build, naming the key.
        let ctx = Context::from_pairs(
            "sink k1",
            &[
                ("hostname", "h"),
                ("port", "1"),
                ("ssl", "true"),
                ("truststore", "/nonexistent/ts.pem"),
            ],
        );
        let c = ThriftSinkConfig::from_context(&ctx).unwrap();
        let e = c.build("k1", channel("c", 1)).err().unwrap().to_string();
        assert!(e.contains("truststore"), "{e}");
    }
}

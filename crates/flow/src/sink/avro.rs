//! `avro`: Flume's `AvroSink`, a client of `AvroSourceProtocol` (see [`crate::avro_rpc`]).
//! Each batch taken from the channel is sent as one `appendBatch`; the take is committed
//! only when the next tier answers `OK`, otherwise rolled back (the runner backs off and
//! retries, so nothing committed is lost while the next tier is down).
//!
//! `compression-type = deflate` sends a zlib stream under the frames (Netty's ZlibEncoder,
//! `compression-level`); `ssl = true` connects with TLS (see [`crate::tls`]).
//! Each batch is encoded straight into the connection's reused write buffer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::rpc::{RpcClient, RpcSink, RpcSinkConfig};
use super::BoxFuture;
use crate::avro_rpc::{self, FrameConn, HandshakeRequest, Match, Reader};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;
use crate::tls::{self, TruststoreSettings};

/// Settings of the `avro` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroSinkConfig {
    /// `hostname`, `port`, `batch-size`, `connect-timeout`, `request-timeout`,
    /// `reset-connection-interval` (shared with the thrift sink).
    pub rpc: RpcSinkConfig,
    /// `compression-type = deflate` (default `none`, Flume's) with `compression-level`
    /// (0–9, Flume's default 6): the zlib level, `None` without compression.
    pub deflate_level: Option<u32>,
    /// `ssl = true` (default false, Flume's): `truststore` (default: the system's CA
    /// bundle), `truststore-type` (`PEM`; unset = detected from the file),
    /// `trust-all-certs` (default false); `truststore-password` is accepted and unused.
    pub tls: Option<TruststoreSettings>,
}

/// `compression-type`: `none` (false) or `deflate` (true), Flume's two values.
pub(crate) fn compression(ctx: &Context) -> Result<bool> {
    let comp = ctx.string("compression-type", "none");
    match comp.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(false),
        "deflate" => Ok(true),
        _ => Err(ctx.error(
            "compression-type",
            format!("`{comp}` is not a compression type (none or deflate)"),
        )),
    }
}

impl AvroSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let rpc = RpcSinkConfig::from_context(ctx)?;
        let deflate_level = if compression(ctx)? {
            let level = ctx.number::<i32>("compression-level", 6)?;
            if !(0..=9).contains(&level) {
                return Err(ctx.error("compression-level", "must be between 0 and 9"));
            }
            Some(level as u32)
        } else {
            None
        };
        let tls = tls::truststore_from_context(ctx, &rpc.hostname)?;
        Ok(AvroSinkConfig {
            rpc,
            deflate_level,
            tls,
        })
    }

    /// Creates the sink (it connects lazily, on the first batch); reads the trust store.
    /// Runs on a blocking thread (it reads files).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> Result<AvroSink> {
        let c = &self.rpc;
        let mut client = AvroClient::new(
            c.hostname.clone(),
            c.port,
            c.connect_timeout,
            c.request_timeout,
        )
        .with_deflate(self.deflate_level);
        if let Some(t) = &self.tls {
            client = client.with_tls(tls::Connector::new(
                t,
                &format!("sink {name}"),
                &self.rpc.hostname,
            )?);
        }
        Ok(RpcSink::new(name, channel, self.rpc, client))
    }
}

/// A running `avro` sink.
pub type AvroSink = RpcSink<AvroClient>;

/// A connection to an Avro source: connects lazily, handshakes on the first call,
/// reconnects after any failure.
pub struct AvroClient {
    host: String,
    port: u16,
    connect_timeout: Duration,
    request_timeout: Duration,
    deflate_level: Option<u32>,
    tls: Option<tls::Connector>,
    conn: Option<(FrameConn, Instant)>,
    handshaken: bool,
    serial: i32,
}

impl std::fmt::Debug for AvroClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("deflate_level", &self.deflate_level)
            .field("tls", &self.tls.is_some())
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl AvroClient {
    /// A client of `host:port`.
    pub fn new(
        host: String,
        port: u16,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        AvroClient {
            host,
            port,
            connect_timeout,
            request_timeout,
            deflate_level: None,
            tls: None,
            conn: None,
            handshaken: false,
            serial: 0,
        }
    }

    /// Compresses the stream with zlib at this level (`compression-type = deflate`).
    pub fn with_deflate(mut self, level: Option<u32>) -> Self {
        self.deflate_level = level;
        self
    }

    /// Connects with TLS.
    pub fn with_tls(mut self, connector: tls::Connector) -> Self {
        self.tls = Some(connector);
        self
    }

    /// Drops the connection.
    pub fn close(&mut self) {
        self.conn = None;
        self.handshaken = false;
    }

    /// Sends `events` as one `appendBatch`; `Ok` only when the server answered `OK`.
    pub async fn append_batch(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        let r = self.try_append(events).await;
        if r.is_err() {
            self.close();
        }
        r
    }

    /// How long the current connection has been open.
    pub fn connection_age(&self) -> Option<Duration> {
        self.conn.as_ref().map(|(_, t)| t.elapsed())
    }

    async fn connect(&self, target: &str) -> std::result::Result<FrameConn, String> {
        let connect = async {
            let s = TcpStream::connect(target)
                .await
                .map_err(|e| format!("cannot connect to {target}: {e}"))?;
            let _ = s.set_nodelay(true);
            let stream = tls::connect(self.tls.as_ref(), s, target).await?;
            Ok(FrameConn::new(stream, self.deflate_level))
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| format!("connect to {target} timed out"))?
    }

    async fn try_append(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        let target = format!("{}:{}", self.host, self.port);
        if self.conn.is_none() {
            let conn = self.connect(&target).await?;
            self.conn = Some((conn, Instant::now()));
            self.handshaken = false;
        }
        let mut with_protocol = false;
        loop {
            let handshake = !self.handshaken;
            self.serial = self.serial.wrapping_add(1);
            let serial = self.serial;
            let timeout = self.request_timeout;
            let (conn, _) = self.conn.as_mut().expect("connected");
            let reply = tokio::time::timeout(timeout, async {
                conn.write_frame_with(serial, |out| {
                    if handshake {
                        let h = HandshakeRequest {
                            client_hash: avro_rpc::protocol_hash(),
                            client_protocol: with_protocol
                                .then(|| avro_rpc::PROTOCOL_JSON.to_string()),
                            server_hash: avro_rpc::protocol_hash(),
                        };
                        avro_rpc::put_handshake_request(out, &h);
                    }
                    avro_rpc::put_append_batch(out, events);
                })
                .await?;
                conn.read_frame().await
            })
            .await
            .map_err(|_| format!("request to {target} timed out"))?
            .map_err(|e| format!("RPC to {target} failed: {e}"))?
            .ok_or_else(|| format!("{target} closed the connection"))?;
            let mut r = Reader::new(&reply.1);
            if handshake {
                match r.handshake_response().map_err(|e| e.to_string())? {
                    Match::None if !with_protocol => {
                        with_protocol = true;
                        continue;
                    }
                    Match::None => return Err(format!("{target} refused the handshake")),
                    Match::Both | Match::Client => self.handshaken = true,
                }
            }
            return match avro_rpc::decode_reply(&mut r).map_err(|e| e.to_string())? {
                Ok(avro_rpc::Status::Ok) => Ok(()),
                Ok(s) => Err(format!("{target} answered {s:?}")),
                Err(m) => Err(format!("{target} answered an error: {m}")),
            };
        }
    }
}

impl RpcClient for AvroClient {
    fn append_batch<'a>(
        &'a mut self,
        events: &'a [Event],
    ) -> BoxFuture<'a, std::result::Result<(), String>> {
        Box::pin(AvroClient::append_batch(self, events))
    }
    fn connection_age(&self) -> Option<Duration> {
        AvroClient::connection_age(self)
    }
    fn close(&mut self) {
        AvroClient::close(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MemoryChannelConfig;
    use crate::channel_processor::ChannelProcessor;
    use crate::selector::ChannelSelector;
    use crate::source::avro::AvroSourceConfig;
    use crate::source::Source;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn client_to_source_round_trip_and_reconnect() {
        let ch = Arc::new(MemoryChannel::new("c1", MemoryChannelConfig::default()));
        let processor = Arc::new(ChannelProcessor::new(
            vec![ch.clone()],
            ChannelSelector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![],
        ));
        let ctx = Context::from_pairs("source r1", &[("bind", "127.0.0.1"), ("port", "0")]);
        let src = AvroSourceConfig::from_context(&ctx)
            .unwrap()
            .build("r1")
            .await
            .unwrap();
        let port = src.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let task = tokio::spawn(Box::new(src).run(processor, stop.clone()));
        // Connect/request timeouts far above any scheduling delay of a busy machine.
        let t = Duration::from_secs(60);
        let mut client = AvroClient::new("127.0.0.1".into(), port, t, t);
        let mut e = Event::new(&b"body"[..]);
        e.headers.insert("k".into(), "v".into());
        client
            .append_batch(&[e.clone(), Event::new(&b"x"[..])])
            .await
            .unwrap();
        client.append_batch(&[Event::new(&b"y"[..])]).await.unwrap();
        client.close();
        client.append_batch(&[Event::new(&b"z"[..])]).await.unwrap();
        assert_eq!(ch.len(), 4);
        let mut tx = ch.transaction();
        assert_eq!(tx.take_batch(10).await.unwrap(), 4);
        assert_eq!(tx.taken()[0], e);
        tx.commit().await.unwrap();
        stop.cancel();
        task.await.unwrap();
        // Nothing listens any more: the call fails (and the sink would roll back).
        assert!(client.append_batch(&[Event::new(&b"w"[..])]).await.is_err());
    }

    /// Starts an avro source with these extra properties; returns its port, channel and stop.
    async fn source(
        extra: &[(&str, &str)],
    ) -> (
        u16,
        Arc<MemoryChannel>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let config = MemoryChannelConfig {
            capacity: 10_000,
            transaction_capacity: 10_000,
            ..MemoryChannelConfig::default()
        };
        let ch = Arc::new(MemoryChannel::new("c1", config));
        let processor = Arc::new(ChannelProcessor::new(
            vec![ch.clone()],
            ChannelSelector::Replicating {
                required: vec![0],
                optional: vec![],
            },
            vec![],
        ));
        let mut pairs = vec![("bind", "127.0.0.1"), ("port", "0")];
        pairs.extend_from_slice(extra);
        let ctx = Context::from_pairs("source r1", &pairs);
        let src = AvroSourceConfig::from_context(&ctx)
            .unwrap()
            .build("r1")
            .await
            .unwrap();
        let port = src.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let task = tokio::spawn(Box::new(src).run(processor, stop.clone()));
        (port, ch, stop, task)
    }

    /// A sink's client built from sink properties (as the agent builds it).
    async fn client(port: u16, extra: &[(&str, &str)]) -> std::result::Result<AvroClient, String> {
        let port = port.to_string();
        let mut pairs = vec![
            ("hostname", "127.0.0.1"),
            ("port", port.as_str()),
            ("connect-timeout", "5000"),
            ("request-timeout", "5000"),
        ];
        pairs.extend_from_slice(extra);
        let ctx = Context::from_pairs("sink k1", &pairs);
        let config = AvroSinkConfig::from_context(&ctx).map_err(|e| e.to_string())?;
        let ch = Arc::new(MemoryChannel::new("c2", MemoryChannelConfig::default()));
        tokio::task::spawn_blocking(move || config.build("k1", ch))
            .await
            .unwrap()
            .map(RpcSink::into_client)
            .map_err(|e| e.to_string())
    }

    fn batch(n: usize, tag: &str) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = Event::new(format!("{tag} event {i} {}", "x".repeat(i % 50)));
                if i % 3 == 0 {
                    e.headers.insert("n".into(), i.to_string());
                }
                e
            })
            .collect()
    }

    async fn drain(ch: &Arc<MemoryChannel>) -> Vec<Event> {
        let mut tx = ch.transaction();
        tx.take_batch(100_000).await.unwrap();
        let v = tx.taken().to_vec();
        tx.commit().await.unwrap();
        v
    }

    #[tokio::test]
    async fn deflate_and_tls_on_and_off() {
        let dir = tempfile::tempdir().unwrap();
        let (ks, ts) = crate::tls::test_support::self_signed_stores(dir.path());
        let (ks, ts) = (ks.to_str().unwrap(), ts.to_str().unwrap());
        for deflate in [false, true] {
            for tls in [false, true] {
                let mut src = vec![];
                let mut snk = vec![];
                if deflate {
                    src.push(("compression-type", "deflate"));
                    snk.push(("compression-type", "deflate"));
                    snk.push(("compression-level", "9"));
                }
                if tls {
                    src.extend([("ssl", "true"), ("keystore", ks), ("keystore-type", "PEM")]);
                    snk.extend([("ssl", "true"), ("truststore", ts)]);
                }
                let (port, ch, stop, task) = source(&src).await;
                let mut c = client(port, &snk).await.unwrap();
                let a = batch(1000, "a");
                let b = batch(3, "b");
                c.append_batch(&a).await.unwrap();
                c.append_batch(&b).await.unwrap();
                c.close();
                c.append_batch(&b[..1]).await.unwrap();
                let got = drain(&ch).await;
                let mut want = a.clone();
                want.extend(b.iter().cloned());
                want.push(b[0].clone());
                assert_eq!(got, want, "deflate {deflate} tls {tls}");
                // trust-all-certs also works with TLS.
                if tls {
                    let mut snk2 = snk.clone();
                    snk2.retain(|(k, _)| *k != "truststore");
                    snk2.push(("trust-all-certs", "true"));
                    let mut c = client(port, &snk2).await.unwrap();
                    c.append_batch(&b).await.unwrap();
                    assert_eq!(drain(&ch).await, b);
                }
                stop.cancel();
                task.await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn mismatched_settings_fail_and_deliver_nothing() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_string()
        };
        // A CA, and two server certificates it signed: one naming 127.0.0.1, one localhost.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            format!("{}{}", cert.pem(), key.serialize_pem())
        };
        let ks_ip = write("ip.pem", leaf("127.0.0.1"));
        let ks_name = write("name.pem", leaf("localhost"));
        let ca_pem = write("ca.pem", ca.pem());
        let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let wrong = write("wrong.pem", other.cert.pem());
        let e = batch(2, "x");
        // A deflate sink against a plain source, and the other way round.
        let (port, ch, stop, task) = source(&[]).await;
        let mut c = client(port, &[("compression-type", "deflate")])
            .await
            .unwrap();
        assert!(c.append_batch(&e).await.is_err());
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ch.len(), 0);
        let (port, ch, stop, task) = source(&[("compression-type", "deflate")]).await;
        let mut c = client(port, &[]).await.unwrap();
        assert!(c.append_batch(&e).await.is_err());
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ch.len(), 0);
        // A certificate signed by the trusted CA and naming the host works.
        let (port, ch, stop, task) = source(&[("ssl", "true"), ("keystore", &ks_ip)]).await;
        let mut c = client(port, &[("ssl", "true"), ("truststore", &ca_pem)])
            .await
            .unwrap();
        c.append_batch(&e).await.unwrap();
        assert_eq!(drain(&ch).await, e);
        // An untrusted certificate, and a plain sink against a TLS source.
        for snk in [
            vec![("ssl", "true"), ("truststore", wrong.as_str())],
            vec![],
        ] {
            let mut c = client(port, &snk).await.unwrap();
            assert!(c.append_batch(&e).await.is_err());
        }
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ch.len(), 0);
        // A trusted CA's certificate that names another host (localhost; the sink dials
        // 127.0.0.1).
        let (port, ch, stop, task) = source(&[("ssl", "true"), ("keystore", &ks_name)]).await;
        let mut c = client(port, &[("ssl", "true"), ("truststore", &ca_pem)])
            .await
            .unwrap();
        let err = c.append_batch(&e).await.unwrap_err();
        assert!(err.contains("certificate"), "{err}");
        stop.cancel();
        task.await.unwrap();
        assert_eq!(ch.len(), 0);
    }
}

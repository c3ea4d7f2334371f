//! `avro`: Flume's `AvroSink`, a client of `AvroSourceProtocol` (see [`crate::avro_rpc`]).
//! Each batch taken from the channel is sent as one `appendBatch`; the take is committed
//! only when the next tier answers `OK`, otherwise rolled back (the runner backs off and
//! retries, so nothing committed is lost while the next tier is down).
//!
//! Not supported yet (refused at configuration): `compression-type = deflate`, `ssl = true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::{BoxFuture, Sink, Status};
use crate::avro_rpc::{self, HandshakeRequest, Match, Reader};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;

/// Settings of the `avro` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroSinkConfig {
    /// `hostname`: the next tier's host. Required.
    pub hostname: String,
    /// `port`: the next tier's port. Required.
    pub port: u16,
    /// `batch-size`: events per `appendBatch`. Flume's default: 100.
    pub batch_size: usize,
    /// `connect-timeout` (ms). Flume's default: 20000.
    pub connect_timeout: Duration,
    /// `request-timeout` (ms). Flume's default: 20000.
    pub request_timeout: Duration,
    /// `reset-connection-interval` (s): reconnect after this long (0 = never). Flume's
    /// default: none.
    pub reset_connection_interval: Option<Duration>,
}

impl AvroSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let hostname = ctx.require("hostname")?.to_string();
        let port = ctx.require_number::<u16>("port")?;
        let batch_size = ctx.number::<usize>("batch-size", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("batch-size", "must be at least 1"));
        }
        let comp = ctx.string("compression-type", "none").to_ascii_lowercase();
        if comp != "none" {
            return Err(ctx.error(
                "compression-type",
                format!("`{comp}` is not supported yet (only `none`)"),
            ));
        }
        if ctx.boolean("ssl", false) {
            return Err(ctx.error("ssl", "TLS is not supported yet by the avro sink"));
        }
        let reset = ctx.number::<u64>("reset-connection-interval", 0)?;
        Ok(AvroSinkConfig {
            hostname,
            port,
            batch_size,
            connect_timeout: Duration::from_millis(ctx.number::<u64>("connect-timeout", 20000)?),
            request_timeout: Duration::from_millis(ctx.number::<u64>("request-timeout", 20000)?),
            reset_connection_interval: (reset > 0).then(|| Duration::from_secs(reset)),
        })
    }

    /// Creates the sink (it connects lazily, on the first batch).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> AvroSink {
        AvroSink {
            name: name.to_string(),
            channel,
            client: AvroClient::new(
                self.hostname.clone(),
                self.port,
                self.connect_timeout,
                self.request_timeout,
            ),
            config: self,
        }
    }
}

/// A connection to an Avro source: connects lazily, handshakes on the first call,
/// reconnects after any failure.
#[derive(Debug)]
pub struct AvroClient {
    host: String,
    port: u16,
    connect_timeout: Duration,
    request_timeout: Duration,
    conn: Option<(TcpStream, Instant)>,
    handshaken: bool,
    serial: i32,
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
            conn: None,
            handshaken: false,
            serial: 0,
        }
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

    async fn try_append(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        let target = format!("{}:{}", self.host, self.port);
        if self.conn.is_none() {
            let s = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&target))
                .await
                .map_err(|_| format!("connect to {target} timed out"))?
                .map_err(|e| format!("cannot connect to {target}: {e}"))?;
            let _ = s.set_nodelay(true);
            self.conn = Some((s, Instant::now()));
            self.handshaken = false;
        }
        let mut call =
            Vec::with_capacity(64 + events.iter().map(|e| e.byte_size() + 16).sum::<usize>());
        avro_rpc::put_append_batch(&mut call, events);
        let mut with_protocol = false;
        loop {
            let mut payload = Vec::with_capacity(call.len() + 64);
            let handshake = !self.handshaken;
            if handshake {
                let h = HandshakeRequest {
                    client_hash: avro_rpc::protocol_hash(),
                    client_protocol: with_protocol.then(|| avro_rpc::PROTOCOL_JSON.to_string()),
                    server_hash: avro_rpc::protocol_hash(),
                };
                avro_rpc::put_handshake_request(&mut payload, &h);
            }
            payload.extend_from_slice(&call);
            self.serial = self.serial.wrapping_add(1);
            let serial = self.serial;
            let timeout = self.request_timeout;
            let (stream, _) = self.conn.as_mut().expect("connected");
            let reply = tokio::time::timeout(timeout, async {
                avro_rpc::write_frame(stream, serial, &payload).await?;
                avro_rpc::read_frame(stream).await
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

/// A running `avro` sink.
pub struct AvroSink {
    name: String,
    channel: Arc<MemoryChannel>,
    config: AvroSinkConfig,
    client: AvroClient,
}

impl Sink for AvroSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            if let (Some(limit), Some(age)) = (
                self.config.reset_connection_interval,
                self.client.connection_age(),
            ) {
                if age >= limit {
                    self.client.close();
                }
            }
            let mut tx = self.channel.transaction();
            let n = tx.take_batch(self.config.batch_size).await?;
            if n == 0 {
                tx.commit().await?;
                return Ok(Status::Backoff);
            }
            match self.client.append_batch(tx.taken()).await {
                Ok(()) => {
                    tx.commit().await?;
                    Ok(Status::Ready)
                }
                Err(message) => {
                    tx.rollback();
                    Err(FlowError::Delivery {
                        sink: self.name.clone(),
                        message: format!("Failed to send events: {message}"),
                    })
                }
            }
        })
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.client.close() })
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
}

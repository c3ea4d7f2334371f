//! `avro`: Flume's `AvroSink`, a client of `AvroSourceProtocol` (see [`crate::avro_rpc`]).
//! Each batch taken from the channel is sent as one `appendBatch`; the take is committed
//! only when the next tier answers `OK`, otherwise rolled back (the runner backs off and
//! retries, so nothing committed is lost while the next tier is down).
//!
//! Not supported yet (refused at configuration): `compression-type = deflate`, `ssl = true`.

use std::sync::Arc;
use std::time::Duration;

use super::rpc::{LazyConnection, RpcClient, RpcSink, RpcSinkConfig};
use super::BoxFuture;
use crate::avro_rpc::{self, HandshakeRequest, Match, Reader};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;

/// Settings of the `avro` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroSinkConfig {
    /// `hostname`, `port`, `batch-size`, `connect-timeout`, `request-timeout`,
    /// `reset-connection-interval`.
    pub rpc: RpcSinkConfig,
}

impl AvroSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let rpc = RpcSinkConfig::from_context(ctx)?;
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
        Ok(AvroSinkConfig { rpc })
    }

    /// Creates the sink (it connects lazily, on the first batch).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> AvroSink {
        let c = &self.rpc;
        let client = AvroClient::new(
            c.hostname.clone(),
            c.port,
            c.connect_timeout,
            c.request_timeout,
        );
        RpcSink::new(name, channel, self.rpc, client)
    }
}

/// A running `avro` sink.
pub type AvroSink = RpcSink<AvroClient>;

/// A client of an Avro source over a [`LazyConnection`]; handshakes on the first call of
/// each connection.
#[derive(Debug)]
pub struct AvroClient {
    conn: LazyConnection,
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
            conn: LazyConnection::new(format!("{host}:{port}"), connect_timeout, request_timeout),
            handshaken: false,
            serial: 0,
        }
    }

    /// Drops the connection.
    pub fn close(&mut self) {
        self.conn.close();
    }

    /// Sends `events` as one `appendBatch`; `Ok` only when the server answered `OK`.
    pub async fn append_batch(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        let r = self.try_append(events).await;
        if r.is_err() {
            self.close();
        }
        r
    }

    async fn try_append(&mut self, events: &[Event]) -> std::result::Result<(), String> {
        if self.conn.stream().await?.1 {
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
            let reply = self
                .conn
                .request(|stream| {
                    Box::pin(async move {
                        avro_rpc::write_frame(stream, serial, &payload).await?;
                        avro_rpc::read_frame(stream).await
                    })
                })
                .await?;
            let target = self.conn.target();
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
    fn connection(&mut self) -> &mut LazyConnection {
        &mut self.conn
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
        let t = Duration::from_secs(5);
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

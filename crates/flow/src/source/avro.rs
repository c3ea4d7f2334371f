//! `avro`: Flume's `AvroSource`, a server of `AvroSourceProtocol` over Netty-framed Avro
//! IPC (see [`crate::avro_rpc`]). Each `append`/`appendBatch` is one channel transaction;
//! the reply is `OK` only after the commit, `FAILED` when the channels refuse.
//!
//! `compression-type = deflate` reads and writes a zlib stream under the frames (Netty's
//! ZlibDecoder/ZlibEncoder, level 6 for the replies); `ssl = true` serves TLS with a PEM
//! keystore (see [`crate::tls`]). `ipFilter`/`ipFilterRules` are applied
//! (`allow:`/`deny:` with `ip:` or `name:` glob patterns, first match wins, Flume's rules
//! syntax). The listener and accept loop are shared with the thrift source
//! ([`super::rpc`]).

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::rpc::{Calls, RpcServer, RpcServerConfig};
use super::{BoxFuture, Source};
use crate::avro_rpc::{self, Call, FrameConn, Match, Reader, Status};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::Result;
use crate::monitoring::CounterGroup;
use crate::tls::{self, KeystoreSettings};

/// Settings of the `avro` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroSourceConfig {
    /// `bind`, `port`, `threads`, `ipFilter` and `ipFilterRules`.
    pub server: RpcServerConfig,
    /// `compression-type = deflate` (default `none`, Flume's): a zlib stream under the
    /// frames, both ways; the sender must use it too.
    pub deflate: bool,
    /// `ssl = true` (default false, Flume's): `keystore` (required), `keystore-type`
    /// (`PEM`; unset = detected from the file); `keystore-password` is accepted and unused.
    pub tls: Option<KeystoreSettings>,
}

/// The zlib level of the source's replies (Flume's AvroSource: `new ZlibEncoder(6)`).
const REPLY_DEFLATE_LEVEL: u32 = 6;

impl AvroSourceConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let server = RpcServerConfig::from_context(ctx, true)?;
        let deflate = super::super::sink::avro::compression(ctx)?;
        let tls = tls::keystore_from_context(ctx)?;
        Ok(AvroSourceConfig {
            server,
            deflate,
            tls,
        })
    }

    /// Reads the keystore and binds the port.
    pub async fn build(self, name: &str) -> Result<AvroSource> {
        let component = format!("source {name}");
        let tls = tls::acceptor(self.tls.clone(), component).await?;
        Ok(AvroSource {
            server: self.server.bind(name, "Avro").await?,
            tls,
            deflate: self.deflate,
        })
    }
}

/// A running `avro` source.
pub struct AvroSource {
    server: RpcServer,
    tls: Option<TlsAcceptor>,
    deflate: bool,
}

impl AvroSource {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.server.local_addr()
    }
}

impl Source for AvroSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.server.counter())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        let AvroSource {
            server,
            tls,
            deflate,
        } = *self;
        let level = deflate.then_some(REPLY_DEFLATE_LEVEL);
        Box::pin(server.run(processor, shutdown, move |stream, calls, sd| {
            serve(stream, tls.clone(), level, calls, sd)
        }))
    }
}

async fn serve(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    deflate_level: Option<u32>,
    calls: Calls,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let stream = tls::accept(tls.as_ref(), stream).await?;
    let mut conn = FrameConn::new(stream, deflate_level);
    let ours = avro_rpc::protocol_hash();
    let mut handshaken = false;
    let mut out = Vec::with_capacity(256);
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            f = conn.read_frame() => f?,
        };
        let Some((serial, payload)) = frame else {
            return Ok(());
        };
        let mut r = Reader::from_bytes(&payload);
        out.clear();
        let invalid =
            |e: avro_rpc::DecodeError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        if !handshaken {
            let h = r.handshake_request().map_err(invalid)?;
            // Flume has one protocol version: whatever the client's hash, the message names
            // decide; the client learns our protocol unless it already names our hash.
            let m = if h.server_hash == ours
                && (h.client_hash == ours || h.client_protocol.is_some())
            {
                Match::Both
            } else {
                Match::Client
            };
            avro_rpc::put_handshake_response(&mut out, m);
            handshaken = true;
        }
        match avro_rpc::decode_call(&mut r) {
            Ok(Call::Ping) => {}
            Ok(Call::Append(events, batch)) => match calls.put(events, batch).await {
                Ok(()) => avro_rpc::put_status_reply(&mut out, Status::Ok),
                Err(error) => {
                    tracing::warn!(%error, "Avro source could not put events; answering FAILED.");
                    avro_rpc::put_status_reply(&mut out, Status::Failed);
                }
            },
            Err(e) => {
                avro_rpc::put_error_reply(&mut out, &e.to_string());
                conn.write_frame(serial, &out).await?;
                return Err(invalid(e));
            }
        }
        conn.write_frame(serial, &out).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_supported() {
        let bad = Context::from_pairs(
            "source r1",
            &[("bind", "x"), ("port", "1"), ("compression-type", "lzo")],
        );
        assert!(AvroSourceConfig::from_context(&bad).is_err());
        let no_keystore = Context::from_pairs(
            "source r1",
            &[("bind", "x"), ("port", "1"), ("ssl", "true")],
        );
        let e = AvroSourceConfig::from_context(&no_keystore).unwrap_err();
        assert!(e.to_string().contains("keystore"), "{e}");
    }
}

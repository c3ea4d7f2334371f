//! `avro`: Flume's `AvroSource`, a server of `AvroSourceProtocol` over Netty-framed Avro
//! IPC (see [`crate::avro_rpc`]). Each `append`/`appendBatch` is one channel transaction;
//! the reply is `OK` only after the commit, `FAILED` when the channels refuse.
//!
//! Not supported yet (refused at configuration): `compression-type = deflate` and
//! `ssl = true`. `ipFilter`/`ipFilterRules` are applied (`allow:`/`deny:` with `ip:` or
//! `name:` glob patterns, first match wins, Flume's rules syntax).

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::rpc::{Calls, RpcServer, RpcServerConfig};
use super::{BoxFuture, Source};
use crate::avro_rpc::{self, Call, Match, Reader, Status};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::Result;
use crate::monitoring::CounterGroup;

/// Settings of the `avro` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroSourceConfig {
    /// `bind`, `port`, `threads`, `ipFilter` and `ipFilterRules`.
    pub server: RpcServerConfig,
}

impl AvroSourceConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let server = RpcServerConfig::from_context(ctx, true)?;
        let comp = ctx.string("compression-type", "none").to_ascii_lowercase();
        if comp != "none" {
            return Err(ctx.error(
                "compression-type",
                format!("`{comp}` is not supported yet (only `none`)"),
            ));
        }
        if ctx.boolean("ssl", false) {
            return Err(ctx.error("ssl", "TLS is not supported yet by the avro source"));
        }
        Ok(AvroSourceConfig { server })
    }

    /// Binds the port.
    pub async fn build(self, name: &str) -> Result<AvroSource> {
        Ok(AvroSource {
            server: self.server.bind(name, "Avro").await?,
        })
    }
}

/// A running `avro` source.
pub struct AvroSource {
    server: RpcServer,
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
        Box::pin(self.server.run(processor, shutdown, serve))
    }
}

async fn serve(
    mut stream: TcpStream,
    calls: Calls,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.split();
    let ours = avro_rpc::protocol_hash();
    let mut handshaken = false;
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            f = avro_rpc::read_frame(&mut rd) => f?,
        };
        let Some((serial, payload)) = frame else {
            return Ok(());
        };
        let mut r = Reader::new(&payload);
        let mut out = Vec::with_capacity(64);
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
                avro_rpc::write_frame(&mut wr, serial, &out).await?;
                return Err(invalid(e));
            }
        }
        avro_rpc::write_frame(&mut wr, serial, &out).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_supported() {
        let bad = Context::from_pairs(
            "source r1",
            &[
                ("bind", "x"),
                ("port", "1"),
                ("compression-type", "deflate"),
            ],
        );
        assert!(AvroSourceConfig::from_context(&bad).is_err());
    }
}

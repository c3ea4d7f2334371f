//! `netcatudp`: each datagram is an event, body up to the first `\n` (Flume's
//! `NetcatUdpSource`). Events the channel refuses are dropped and logged, as in Flume.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;

/// Settings of the `netcatudp` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetcatUdpConfig {
    /// `bind`: address to listen on. Flume's default: all interfaces.
    pub bind: String,
    /// `port`: UDP port. Required.
    pub port: u16,
    /// `remoteAddress` (the key Flume's code reads; the user guide says
    /// `remoteAddressHeader`, also accepted): header receiving the sender address
    /// (`/127.0.0.1:54321`). Default: none.
    pub remote_address_header: Option<String>,
}

impl NetcatUdpConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        Ok(NetcatUdpConfig {
            bind: ctx.string("bind", "0.0.0.0"),
            port: ctx.require_number("port")?,
            remote_address_header: ctx
                .get("remoteAddress")
                .or(ctx.get("remoteAddressHeader"))
                .map(str::to_string),
        })
    }

    /// Binds the socket.
    pub async fn build(self, name: &str) -> Result<NetcatUdpSource> {
        let component = format!("source {name}");
        let addr = super::resolve_bind(&component, &self.bind, self.port).await?;
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| FlowError::Start {
                component,
                message: format!("cannot bind UDP {addr}"),
                source,
            })?;
        Ok(NetcatUdpSource {
            config: self,
            socket,
        })
    }
}

/// A running `netcatudp` source.
pub struct NetcatUdpSource {
    config: NetcatUdpConfig,
    socket: UdpSocket,
}

impl Source for NetcatUdpSource {
    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut buf = vec![0u8; 65536];
            loop {
                let r = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.socket.recv_from(&mut buf) => r,
                };
                let Ok((n, peer)) = r else { continue };
                let data = &buf[..n];
                let end = data.iter().position(|&b| b == b'\n').unwrap_or(n);
                let mut event = Event::new(Bytes::copy_from_slice(&data[..end]));
                if let Some(h) = &self.config.remote_address_header {
                    event.headers.insert(h.clone(), format!("/{peer}"));
                }
                if let Err(error) = processor.process_event(event).await {
                    tracing::warn!(%error, "netcatudp: channel refused the event; dropped.");
                }
            }
        })
    }
}

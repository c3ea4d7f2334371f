//! `netcat`: a TCP server; each line is an event, answered `OK` (Flume's `NetcatSource`).
//!
//! Lines already in the read buffer are put in one transaction (Flume uses one per line),
//! then answered `OK\n` each, in order; so the reply stream is exactly Flume's and a
//! pipelining sender gets one `OK` per line, only after its line is committed.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;

/// Settings of the `netcat` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetcatConfig {
    /// `bind`: host or IP to listen on. Required (Flume has no default).
    pub bind: String,
    /// `port`: TCP port. Required.
    pub port: u16,
    /// `max-line-length`: the most bytes of a line including its newline. Flume's
    /// default: 512.
    pub max_line_length: usize,
    /// `ack-every-event`: answer `OK` for each accepted line. Flume's default: true.
    pub ack_every_event: bool,
}

impl NetcatConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let bind = ctx.require("bind")?.to_string();
        let port = ctx.require_number::<u16>("port")?;
        let max_line_length = ctx.number::<usize>("max-line-length", 512)?;
        if max_line_length < 2 {
            return Err(ctx.error("max-line-length", "must be at least 2"));
        }
        if let Some(enc) = ctx.get("encoding") {
            let e = enc.to_ascii_lowercase().replace('_', "-");
            if !["utf-8", "utf8", "us-ascii", "ascii"].contains(&e.as_str()) {
                return Err(ctx.error(
                    "encoding",
                    format!("charset `{enc}` is not supported (UTF-8 only)"),
                ));
            }
        }
        Ok(NetcatConfig {
            bind,
            port,
            max_line_length,
            ack_every_event: ctx.boolean("ack-every-event", true),
        })
    }

    /// Binds the port (SO_REUSEADDR, as Flume).
    pub async fn build(self, name: &str) -> Result<NetcatSource> {
        let component = format!("source {name}");
        let (listener, addr) = super::listen_tcp(&component, &self.bind, self.port).await?;
        tracing::info!(source = name, %addr, "Created serverSocket.");
        Ok(NetcatSource {
            name: name.to_string(),
            config: self,
            listener,
        })
    }
}

/// A running `netcat` source.
pub struct NetcatSource {
    name: String,
    config: NetcatConfig,
    listener: TcpListener,
}

impl NetcatSource {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl Source for NetcatSource {
    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    a = self.listener.accept() => a,
                };
                match accepted {
                    Ok((stream, peer)) => {
                        tracing::debug!(source = %self.name, %peer, "Starting connection handler.");
                        let p = processor.clone();
                        let cfg = self.config.clone();
                        let sd = shutdown.clone();
                        let name = self.name.clone();
                        conns.spawn(async move {
                            if let Err(error) = handle(stream, p, cfg, sd).await {
                                tracing::debug!(source = %name, %error, "Connection closed with an error.");
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(source = %self.name, %error, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
                while conns.try_join_next().is_some() {}
            }
            conns.shutdown().await;
        })
    }
}

async fn handle(
    mut stream: TcpStream,
    processor: Arc<ChannelProcessor>,
    cfg: NetcatConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.split();
    let max_batch = processor.max_batch().max(1);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut replies: Vec<u8> = Vec::with_capacity(4096);
    let mut scanned = 0;
    loop {
        if buf.capacity() - buf.len() < 8 * 1024 {
            buf.reserve(64 * 1024);
        }
        let n = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = rd.read_buf(&mut buf) => r?,
        };
        if n == 0 {
            return Ok(()); // trailing text without newline is discarded, as Flume does
        }
        let mut events = Vec::new();
        let mut too_long = false;
        loop {
            let Some(pos) = memchr(b'\n', &buf[scanned..]).map(|p| p + scanned) else {
                scanned = buf.len();
                if buf.len() >= cfg.max_line_length {
                    too_long = true;
                }
                break;
            };
            if pos >= cfg.max_line_length {
                too_long = true;
                break;
            }
            let line = buf.split_to(pos + 1).freeze();
            scanned = 0;
            events.push(Event::new(line.slice(..pos)));
            if events.len() >= max_batch {
                deliver(&processor, &mut events, &cfg, &mut replies).await;
                wr.write_all(&replies).await?;
            }
        }
        deliver(&processor, &mut events, &cfg, &mut replies).await;
        if too_long {
            replies.extend_from_slice(
                format!(
                    "FAILED: Event exceeds the maximum length ({} chars, including newline)\n",
                    cfg.max_line_length
                )
                .as_bytes(),
            );
        }
        if !replies.is_empty() {
            wr.write_all(&replies).await?;
            replies.clear();
        }
        if too_long {
            wr.shutdown().await?;
            return Ok(());
        }
        if buf.is_empty() {
            buf.clear();
        } else if buf.len() < 4096 && buf.capacity() > 256 * 1024 {
            let rest = buf.split();
            buf = BytesMut::with_capacity(64 * 1024);
            buf.extend_from_slice(rest.chunk());
        }
    }
}

async fn deliver(
    processor: &ChannelProcessor,
    events: &mut Vec<Event>,
    cfg: &NetcatConfig,
    replies: &mut Vec<u8>,
) {
    replies.clear();
    if events.is_empty() {
        return;
    }
    let n = events.len();
    match processor.process_batch(std::mem::take(events)).await {
        Ok(()) => {
            if cfg.ack_every_event {
                for _ in 0..n {
                    replies.extend_from_slice(b"OK\n");
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "Error processing event; answering FAILED.");
            let msg = format!("FAILED: {error}\n");
            for _ in 0..n {
                replies.extend_from_slice(msg.as_bytes());
            }
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

//! `avro`: Flume's `AvroSource`, a server of `AvroSourceProtocol` over Netty-framed Avro
//! IPC (see [`crate::avro_rpc`]). Each `append`/`appendBatch` is one channel transaction;
//! the reply is `OK` only after the commit, `FAILED` when the channels refuse.
//!
//! Not supported yet (refused at configuration): `compression-type = deflate` and
//! `ssl = true`. `ipFilter`/`ipFilterRules` are applied (`allow:`/`deny:` with `ip:` or
//! `name:` glob patterns, first match wins, Flume's rules syntax).

use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Source};
use crate::avro_rpc::{self, Call, Match, Reader, Status};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};

/// One `ipFilterRules` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    /// `allow` (true) or `deny`.
    pub allow: bool,
    /// The glob pattern (`*` matches any run of characters) on the peer's IP.
    pub pattern: String,
}

/// Settings of the `avro` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroSourceConfig {
    /// `bind`: host or IP to listen on. Required.
    pub bind: String,
    /// `port`: TCP port. Required.
    pub port: u16,
    /// `threads`: the most connections served at once. Flume's default: unbounded
    /// (0 here).
    pub threads: usize,
    /// `ipFilterRules` when `ipFilter = true`; empty means everything is allowed.
    pub ip_rules: Vec<IpRule>,
}

impl AvroSourceConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let bind = ctx.require("bind")?.to_string();
        let port = ctx.require_number::<u16>("port")?;
        let threads = ctx.number::<usize>("threads", 0)?;
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
        let mut ip_rules = Vec::new();
        if ctx.boolean("ipFilter", false) {
            let rules = ctx.require("ipFilterRules")?;
            for rule in rules.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                let parts: Vec<&str> = rule.splitn(3, ':').collect();
                let [action, kind, pattern] = parts[..] else {
                    return Err(ctx.error("ipFilterRules", format!("bad rule `{rule}`")));
                };
                let allow = match action {
                    "allow" => true,
                    "deny" => false,
                    _ => return Err(ctx.error("ipFilterRules", format!("bad rule `{rule}`"))),
                };
                if kind != "ip" && kind != "name" {
                    return Err(ctx.error(
                        "ipFilterRules",
                        format!("bad rule `{rule}`: type must be ip or name"),
                    ));
                }
                ip_rules.push(IpRule {
                    allow,
                    pattern: pattern.to_string(),
                });
            }
        }
        Ok(AvroSourceConfig {
            bind,
            port,
            threads,
            ip_rules,
        })
    }

    /// Binds the port.
    pub async fn build(self, name: &str) -> Result<AvroSource> {
        let component = format!("source {name}");
        let addr = super::resolve_bind(&component, &self.bind, self.port).await?;
        let start = |source| FlowError::Start {
            component: component.clone(),
            message: format!("cannot listen on {addr}"),
            source,
        };
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(start)?;
        socket.set_reuseaddr(true).map_err(start)?;
        socket.bind(addr).map_err(start)?;
        let listener = socket.listen(1024).map_err(start)?;
        tracing::info!(source = name, %addr, "Avro source started.");
        Ok(AvroSource {
            name: name.to_string(),
            config: self,
            listener,
        })
    }
}

/// Whether `peer` passes the rules (first match wins; no match allows, as Flume).
fn allowed(rules: &[IpRule], peer: &str) -> bool {
    for r in rules {
        if glob(&r.pattern, peer) {
            return r.allow;
        }
    }
    true
}

fn glob(pattern: &str, s: &str) -> bool {
    let re = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    regex::Regex::new(&re)
        .map(|r| r.is_match(s))
        .unwrap_or(false)
}

/// A running `avro` source.
pub struct AvroSource {
    name: String,
    config: AvroSourceConfig,
    listener: TcpListener,
}

impl AvroSource {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl Source for AvroSource {
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
                while conns.try_join_next().is_some() {}
                match accepted {
                    Ok((stream, peer)) => {
                        if !allowed(&self.config.ip_rules, &peer.ip().to_string()) {
                            tracing::info!(source = %self.name, %peer, "Connection refused by ipFilterRules.");
                            continue;
                        }
                        if self.config.threads > 0 && conns.len() >= self.config.threads {
                            tracing::warn!(source = %self.name, %peer, "Too many connections (threads); closing.");
                            continue;
                        }
                        let p = processor.clone();
                        let sd = shutdown.clone();
                        let name = self.name.clone();
                        conns.spawn(async move {
                            if let Err(error) = serve(stream, p, sd).await {
                                tracing::debug!(source = %name, %error, "Avro connection closed with an error.");
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(source = %self.name, %error, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
            conns.shutdown().await;
        })
    }
}

async fn serve(
    mut stream: TcpStream,
    processor: Arc<ChannelProcessor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
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
            Ok(Call::Append(events)) => match processor.process_batch(events).await {
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
    fn ip_rules() {
        let ctx = Context::from_pairs(
            "source r1",
            &[
                ("bind", "127.0.0.1"),
                ("port", "0"),
                ("ipFilter", "true"),
                ("ipFilterRules", "deny:ip:10.0.*,allow:ip:*"),
            ],
        );
        let c = AvroSourceConfig::from_context(&ctx).unwrap();
        assert!(!allowed(&c.ip_rules, "10.0.1.2"));
        assert!(allowed(&c.ip_rules, "127.0.0.1"));
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

//! `avro`: Flume's `AvroSource`, a server of `AvroSourceProtocol` over Netty-framed Avro
//! IPC (see [`crate::avro_rpc`]). Each `append`/`appendBatch` is one channel transaction;
//! the reply is `OK` only after the commit, `FAILED` when the channels refuse.
//!
//! `compression-type = deflate` reads and writes a zlib stream under the frames (Netty's
//! ZlibDecoder/ZlibEncoder, level 6 for the replies); `ssl = true` serves TLS with a PEM
//! keystore (see [`crate::avro_rpc::tls`]). `ipFilter`/`ipFilterRules` are applied
//! (`allow:`/`deny:` with `ip:` or `name:` glob patterns, first match wins, Flume's rules
//! syntax).

use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Source};
use crate::avro_rpc::tls::KeystoreSettings;
use crate::avro_rpc::{self, Call, FrameConn, Match, Reader, Status};
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
        let bind = ctx.require("bind")?.to_string();
        let port = ctx.require_number::<u16>("port")?;
        let threads = ctx.number::<usize>("threads", 0)?;
        let deflate = super::super::sink::avro::compression(ctx)?;
        let tls = if ctx.boolean("ssl", false) {
            Some(KeystoreSettings {
                path: ctx.require("keystore")?.trim().into(),
                kind: ctx.get("keystore-type").map(|k| k.trim().to_string()),
            })
        } else {
            None
        };
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
            deflate,
            tls,
        })
    }

    /// Binds the port.
    pub async fn build(self, name: &str) -> Result<AvroSource> {
        let component = format!("source {name}");
        let tls = match self.tls.clone() {
            None => None,
            Some(k) => {
                let c = component.clone();
                let config = super::blocking(move || {
                    avro_rpc::tls::server_config(&k)
                        .map_err(|m| FlowError::config(c, "keystore", None, m))
                })
                .await?;
                Some(TlsAcceptor::from(config))
            }
        };
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
            tls,
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
    tls: Option<TlsAcceptor>,
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
                        let tls = self.tls.clone();
                        let level = self.config.deflate.then_some(REPLY_DEFLATE_LEVEL);
                        conns.spawn(async move {
                            if let Err(error) = serve(stream, tls, level, p, sd).await {
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

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

async fn serve(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    deflate_level: Option<u32>,
    processor: Arc<ChannelProcessor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let stream: Box<dyn avro_rpc::transport::Stream> = match tls {
        None => Box::new(stream),
        Some(acceptor) => Box::new(
            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| std::io::Error::other("TLS handshake timed out"))??,
        ),
    };
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
            Ok(Call::Append(events)) => match processor.process_batch(events).await {
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

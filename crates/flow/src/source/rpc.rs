//! What the RPC sources (`avro`, `thrift`) share: the listening properties (`bind`, `port`,
//! `threads`, Avro's `ipFilterRules`), the bound listener, the accept loop (one task per
//! connection) and the delivery of a call's events to the channels with Flume's
//! SourceCounter.

use std::future::Future;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;
use crate::monitoring::{CounterGroup, SOURCE_COUNTERS};

/// One `ipFilterRules` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    /// `allow` (true) or `deny`.
    pub allow: bool,
    /// The glob pattern (`*` matches any run of characters) on the peer's IP.
    pub pattern: String,
}

/// The listening settings of an RPC source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcServerConfig {
    /// `bind`: host or IP to listen on. Required.
    pub bind: String,
    /// `port`: TCP port. Required.
    pub port: u16,
    /// `threads`: the most connections served at once; more wait, accepted, until one of
    /// them ends (as in Thrift's thread-pool server; Flume never closes them). Flume's
    /// default: unbounded (0 here).
    pub threads: usize,
    /// `ipFilterRules` when `ipFilter = true` (avro only); empty means everything is
    /// allowed.
    pub ip_rules: Vec<IpRule>,
}

impl RpcServerConfig {
    /// Reads `bind`, `port`, `threads` and, when `ip_filter` (the avro source), `ipFilter`
    /// and `ipFilterRules`.
    pub fn from_context(ctx: &Context, ip_filter: bool) -> Result<Self> {
        let bind = ctx.require("bind")?.to_string();
        let port = ctx.require_number::<u16>("port")?;
        let threads = ctx.number::<usize>("threads", 0)?;
        let mut ip_rules = Vec::new();
        if ip_filter && ctx.boolean("ipFilter", false) {
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
        Ok(RpcServerConfig {
            bind,
            port,
            threads,
            ip_rules,
        })
    }

    /// Binds the port (SO_REUSEADDR, as Netty and Thrift servers do); `kind` names the
    /// source type in logs.
    pub async fn bind(self, name: &str, kind: &'static str) -> Result<RpcServer> {
        let component = format!("source {name}");
        let (listener, addr) = super::listen_tcp(&component, &self.bind, self.port).await?;
        tracing::info!(source = name, %addr, "{kind} source started.");
        Ok(RpcServer {
            name: name.to_string(),
            kind,
            config: self,
            listener,
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        })
    }

    /// Whether `peer` passes the rules (first match wins; no match allows, as Flume).
    pub fn allowed(&self, peer: &str) -> bool {
        for r in &self.ip_rules {
            if glob(&r.pattern, peer) {
                return r.allow;
            }
        }
        true
    }
}

fn glob(pattern: &str, s: &str) -> bool {
    let re = format!("^{}$", regex::escape(pattern).replace(r"\*", ".*"));
    regex::Regex::new(&re)
        .map(|r| r.is_match(s))
        .unwrap_or(false)
}

/// Delivers the events of calls to the channels, keeping the source's counters.
#[derive(Clone)]
pub struct Calls {
    processor: Arc<ChannelProcessor>,
    counter: Arc<CounterGroup>,
}

impl Calls {
    /// Puts the events of one call (`batch`: an `appendBatch`) in one transaction.
    pub async fn put(&self, events: Vec<Event>, batch: bool) -> Result<()> {
        let n = events.len() as i64;
        let (received, accepted) = if batch {
            ("AppendBatchReceivedCount", "AppendBatchAcceptedCount")
        } else {
            ("AppendReceivedCount", "AppendAcceptedCount")
        };
        self.counter.add(received, 1);
        self.counter.add("EventReceivedCount", n);
        match self.processor.process_batch(events).await {
            Ok(()) => {
                self.counter.add(accepted, 1);
                self.counter.add("EventAcceptedCount", n);
                Ok(())
            }
            Err(e) => {
                self.counter.add("ChannelWriteFail", 1);
                Err(e)
            }
        }
    }
}

/// A bound RPC source, ready to accept connections.
#[derive(Debug)]
pub struct RpcServer {
    name: String,
    kind: &'static str,
    config: RpcServerConfig,
    listener: TcpListener,
    counter: Arc<CounterGroup>,
}

impl RpcServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Its SourceCounter.
    pub fn counter(&self) -> Arc<CounterGroup> {
        self.counter.clone()
    }

    /// Accepts connections until `shutdown`, serving each in its own task with `serve`,
    /// then stops them all.
    pub async fn run<F, Fut>(
        self,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
        serve: F,
    ) where
        F: Fn(TcpStream, Calls, CancellationToken) -> Fut,
        Fut: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let RpcServer {
            name,
            kind,
            config,
            listener,
            counter,
        } = self;
        counter.start();
        let calls = Calls {
            processor,
            counter: counter.clone(),
        };
        let mut conns = tokio::task::JoinSet::new();
        let slots =
            (config.threads > 0).then(|| Arc::new(tokio::sync::Semaphore::new(config.threads)));
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            while conns.try_join_next().is_some() {}
            match accepted {
                Ok((stream, peer)) => {
                    if !config.allowed(&peer.ip().to_string()) {
                        tracing::info!(source = %name, %peer, "Connection refused by ipFilterRules.");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let conn = serve(stream, calls.clone(), shutdown.clone());
                    let (name, counter) = (name.clone(), counter.clone());
                    let slots = slots.clone();
                    let stop = shutdown.clone();
                    conns.spawn(async move {
                        // Past `threads` connections, wait for one to end.
                        let _slot = match slots {
                            None => None,
                            Some(s) => {
                                if s.available_permits() == 0 {
                                    tracing::debug!(source = %name, %peer, "All `threads` connections busy; this one waits.");
                                }
                                tokio::select! {
                                    p = s.acquire_owned() => p.ok(),
                                    _ = stop.cancelled() => return,
                                }
                            }
                        };
                        counter.add("OpenConnectionCount", 1);
                        if let Err(error) = conn.await {
                            tracing::debug!(source = %name, %peer, %error, "{kind} connection closed with an error.");
                        }
                        counter.add("OpenConnectionCount", -1);
                    });
                }
                Err(error) => {
                    tracing::warn!(source = %name, %error, "Accept failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
        conns.shutdown().await;
        counter.stop();
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
        let c = RpcServerConfig::from_context(&ctx, true).unwrap();
        assert!(!c.allowed("10.0.1.2"));
        assert!(c.allowed("127.0.0.1"));
        let c = RpcServerConfig::from_context(&ctx, false).unwrap();
        assert!(c.allowed("10.0.1.2"));
        let bad = Context::from_pairs(
            "source r1",
            &[
                ("bind", "x"),
                ("port", "1"),
                ("ipFilter", "true"),
                ("ipFilterRules", "maybe:ip:*"),
            ],
        );
        assert!(RpcServerConfig::from_context(&bad, true).is_err());
    }
}

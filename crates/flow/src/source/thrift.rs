//! `thrift`: Flume's `ThriftSource`, a server of `ThriftSourceProtocol` over Thrift's framed
//! transport with the compact (Flume's default) or binary protocol (see
//! [`crate::thrift_rpc`]). Each `append`/`appendBatch` is one channel transaction; the reply
//! is `OK` only after the commit, `FAILED` when the channels are full (the sender retries),
//! `ERROR` on any other failure to put.
//!
//! Not supported (refused at configuration): `ssl = true` and `kerberos = true`.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::rpc::{Calls, RpcServer, RpcServerConfig};
use super::{BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::monitoring::CounterGroup;
use crate::thrift_rpc::{self, Method, Protocol, Status};

/// Reads the `protocol` property (`compact`, Flume's default, or `binary`).
pub(crate) fn protocol(ctx: &Context) -> Result<Protocol> {
    match ctx
        .string("protocol", "compact")
        .to_ascii_lowercase()
        .as_str()
    {
        "compact" => Ok(Protocol::Compact),
        "binary" => Ok(Protocol::Binary),
        other => Err(ctx.error(
            "protocol",
            format!("`{other}`: binary or compact are the only valid Thrift protocol types"),
        )),
    }
}

/// Refuses `ssl = true` and `kerberos = true`, which are not supported.
pub(crate) fn refuse_security(ctx: &Context, what: &str) -> Result<()> {
    for key in ["ssl", "kerberos"] {
        if ctx.boolean(key, false) {
            return Err(ctx.error(
                key,
                format!("`{key} = true` is not supported by the {what}"),
            ));
        }
    }
    Ok(())
}

/// Settings of the `thrift` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThriftSourceConfig {
    /// `bind`, `port`, `threads`.
    pub server: RpcServerConfig,
    /// `protocol`: `compact` or `binary`. Flume's default: compact.
    pub protocol: Protocol,
}

impl ThriftSourceConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let server = RpcServerConfig::from_context(ctx, false)?;
        let protocol = protocol(ctx)?;
        refuse_security(ctx, "thrift source")?;
        Ok(ThriftSourceConfig { server, protocol })
    }

    /// Binds the port.
    pub async fn build(self, name: &str) -> Result<ThriftSource> {
        Ok(ThriftSource {
            server: self.server.bind(name, "Thrift").await?,
            protocol: self.protocol,
        })
    }
}

/// A running `thrift` source.
pub struct ThriftSource {
    server: RpcServer,
    protocol: Protocol,
}

impl ThriftSource {
    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.server.local_addr()
    }
}

impl Source for ThriftSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.server.counter())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        let proto = self.protocol;
        Box::pin(
            self.server
                .run(processor, shutdown, move |s, c, sd| serve(s, c, sd, proto)),
        )
    }
}

/// The status answered when the channels refuse the events.
fn refused(error: &FlowError) -> Status {
    match error {
        FlowError::ChannelFull { .. }
        | FlowError::ChannelBytesFull { .. }
        | FlowError::TransactionFull { .. }
        | FlowError::DiskSpace { .. } => Status::Failed,
        _ => Status::Error,
    }
}

async fn serve(
    mut stream: TcpStream,
    calls: Calls,
    shutdown: CancellationToken,
    proto: Protocol,
) -> std::io::Result<()> {
    let (mut rd, mut wr) = stream.split();
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            f = thrift_rpc::read_frame(&mut rd) => f?,
        };
        let Some(payload) = frame else {
            return Ok(());
        };
        let call = match thrift_rpc::decode_call(proto, &payload) {
            Ok(call) => call,
            Err(bad) => {
                if let Some(other) = thrift_rpc::sniff(&payload).filter(|p| *p != proto) {
                    tracing::warn!(
                        expected = proto.name(),
                        got = other.name(),
                        "A Thrift client speaks another protocol than this source's `protocol`."
                    );
                }
                let reply = thrift_rpc::encode_exception(
                    proto,
                    &bad.name,
                    bad.seqid,
                    bad.kind,
                    &bad.error.to_string(),
                );
                thrift_rpc::write_frame(&mut wr, &reply).await?;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    bad.error,
                ));
            }
        };
        let status = match calls
            .put(call.events, call.method == Method::AppendBatch)
            .await
        {
            Ok(()) => Status::Ok,
            Err(error) => {
                let s = refused(&error);
                tracing::warn!(%error, status = s.name(), "Thrift source could not put events.");
                s
            }
        };
        let reply = thrift_rpc::encode_reply(proto, call.method.name(), call.seqid, status);
        thrift_rpc::write_frame(&mut wr, &reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties() {
        let ctx = Context::from_pairs("source r1", &[("bind", "127.0.0.1"), ("port", "1")]);
        let c = ThriftSourceConfig::from_context(&ctx).unwrap();
        assert_eq!(c.protocol, Protocol::Compact);
        let ctx = Context::from_pairs(
            "source r1",
            &[("bind", "h"), ("port", "1"), ("protocol", "BINARY")],
        );
        let c = ThriftSourceConfig::from_context(&ctx).unwrap();
        assert_eq!(c.protocol, Protocol::Binary);
        for (k, v) in [("protocol", "json"), ("ssl", "true"), ("kerberos", "true")] {
            let ctx = Context::from_pairs("source r1", &[("bind", "h"), ("port", "1"), (k, v)]);
            let e = ThriftSourceConfig::from_context(&ctx)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{k}`")), "{e}");
        }
    }
}

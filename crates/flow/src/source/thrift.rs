//! `thrift`: Flume's `ThriftSource`, a server of `ThriftSourceProtocol` over Thrift's framed
//! transport with the compact (Flume's default) or binary protocol (see
//! [`crate::thrift_rpc`]). Each `append`/`appendBatch` is one channel transaction; the reply
//! is `OK` only after the commit, `FAILED` when the channels are full (the sender retries),
//! `ERROR` on any other failure to put.
//!
//! `ssl = true` serves TLS with a PEM keystore (see [`crate::tls`]); `exclude-protocols`,
//! `include-protocols`, `exclude-cipher-suites` and `include-cipher-suites` are accepted
//! and ignored (rustls offers TLS 1.2 and 1.3 with its own safe cipher suites). Not
//! supported (refused at configuration): `kerberos = true`.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::rpc::{Calls, RpcServer, RpcServerConfig};
use super::{BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::monitoring::CounterGroup;
use crate::thrift_rpc::{self, Method, Protocol, Status};
use crate::tls::{self, KeystoreSettings};

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

/// Refuses `kerberos = true`, which is not supported.
pub(crate) fn refuse_security(ctx: &Context, what: &str) -> Result<()> {
    let key = "kerberos";
    if ctx.boolean(key, false) {
        return Err(ctx.error(
            key,
            format!("`{key} = true` is not supported by the {what}"),
        ));
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
    /// `ssl = true` (default false, Flume's): `keystore` (required), `keystore-type`
    /// (`PEM`; unset = detected from the file); `keystore-password` is accepted and unused.
    pub tls: Option<KeystoreSettings>,
}

impl ThriftSourceConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let server = RpcServerConfig::from_context(ctx, false)?;
        let protocol = protocol(ctx)?;
        refuse_security(ctx, "thrift source")?;
        let tls = tls::keystore_from_context(ctx)?;
        Ok(ThriftSourceConfig {
            server,
            protocol,
            tls,
        })
    }

    /// Reads the keystore and binds the port.
    pub async fn build(self, name: &str) -> Result<ThriftSource> {
        let tls = tls::acceptor(self.tls.clone(), format!("source {name}")).await?;
        Ok(ThriftSource {
            server: self.server.bind(name, "Thrift").await?,
            protocol: self.protocol,
            tls,
        })
    }
}

/// A running `thrift` source.
pub struct ThriftSource {
    server: RpcServer,
    protocol: Protocol,
    tls: Option<TlsAcceptor>,
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
        let ThriftSource {
            server,
            protocol,
            tls,
        } = *self;
        Box::pin(server.run(processor, shutdown, move |s, c, sd| {
            serve(s, tls.clone(), c, sd, protocol)
        }))
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
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    calls: Calls,
    shutdown: CancellationToken,
    proto: Protocol,
) -> std::io::Result<()> {
    let mut stream = tls::accept(tls.as_ref(), stream).await?;
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            f = thrift_rpc::read_frame(&mut stream) => f?,
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
                thrift_rpc::write_frame(&mut stream, &reply).await?;
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
        thrift_rpc::write_frame(&mut stream, &reply).await?;
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
        // `ssl` without `keystore`: the error names `keystore`.
        for (k, v, named) in [
            ("protocol", "json", "protocol"),
            ("ssl", "true", "keystore"),
            ("kerberos", "true", "kerberos"),
        ] {
            let ctx = Context::from_pairs("source r1", &[("bind", "h"), ("port", "1"), (k, v)]);
            let e = ThriftSourceConfig::from_context(&ctx)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("`{named}`")), "{e}");
        }
    }
}

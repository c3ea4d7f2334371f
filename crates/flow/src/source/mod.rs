//! Sources: take events in and hand them to their [`ChannelProcessor`].
//!
//! Each source type is a config struct (`from_context` reads and validates the properties)
//! and a `build()` that acquires resources (binds the port, checks the directory) and
//! returns the running [`Source`]; `run` only does runtime work, until `shutdown`.

pub mod avro;
pub mod exec;
pub mod http;
pub mod kafka;
pub mod netcat;
pub mod netcatudp;
pub mod rpc;
pub mod seq;
pub mod spooldir;
pub mod syslog;
pub mod taildir;
pub mod thrift;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::channel_processor::ChannelProcessor;
use crate::config::types::{self, Resolved, SourceType};
use crate::config::ComponentConfig;
use crate::error::Result;
use crate::monitoring::CounterGroup;

/// A boxed `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A built source, ready to run.
pub trait Source: Send {
    /// Its counters, when Flume gives this source type a SourceCounter.
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        None
    }
    /// Runs until `shutdown` is cancelled.
    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()>;
}

/// The configuration of any built-in source.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// `netcat`
    Netcat(netcat::NetcatConfig),
    /// `netcatudp`
    NetcatUdp(netcatudp::NetcatUdpConfig),
    /// `seq`
    Seq(seq::SeqConfig),
    /// `exec`
    Exec(exec::ExecConfig),
    /// `spooldir`
    SpoolDir(spooldir::SpoolDirConfig),
    /// `TAILDIR`
    Taildir(taildir::TaildirConfig),
    /// `org.apache.flume.source.kafka.KafkaSource`
    Kafka(kafka::KafkaSourceConfig),
    /// `syslogtcp`, `syslogudp`, `multiport_syslogtcp`
    Syslog(syslog::SyslogConfig),
    /// `http`
    Http(http::HttpConfig),
    /// `avro`
    Avro(avro::AvroSourceConfig),
    /// `thrift`
    Thrift(thrift::ThriftSourceConfig),
}

impl SourceConfig {
    /// Resolves the type and reads the properties.
    pub fn from_component(c: &ComponentConfig) -> Result<Self> {
        let ctx = &c.ctx;
        match types::source(&c.type_name) {
            Resolved::Builtin(SourceType::Netcat) => Ok(SourceConfig::Netcat(
                netcat::NetcatConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SourceType::NetcatUdp) => Ok(SourceConfig::NetcatUdp(
                netcatudp::NetcatUdpConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SourceType::Seq) => {
                Ok(SourceConfig::Seq(seq::SeqConfig::from_context(ctx)?))
            }
            Resolved::Builtin(SourceType::Exec) => {
                Ok(SourceConfig::Exec(exec::ExecConfig::from_context(ctx)?))
            }
            Resolved::Builtin(SourceType::SpoolDir) => Ok(SourceConfig::SpoolDir(
                spooldir::SpoolDirConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SourceType::Taildir) => Ok(SourceConfig::Taildir(
                taildir::TaildirConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SourceType::Kafka) => Ok(SourceConfig::Kafka(
                kafka::KafkaSourceConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SourceType::SyslogTcp) => Ok(SourceConfig::Syslog(
                syslog::SyslogConfig::from_context(ctx, syslog::SyslogKind::Tcp)?,
            )),
            Resolved::Builtin(SourceType::SyslogUdp) => Ok(SourceConfig::Syslog(
                syslog::SyslogConfig::from_context(ctx, syslog::SyslogKind::Udp)?,
            )),
            Resolved::Builtin(SourceType::MultiportSyslogTcp) => Ok(SourceConfig::Syslog(
                syslog::SyslogConfig::from_context(ctx, syslog::SyslogKind::MultiportTcp)?,
            )),
            Resolved::Builtin(SourceType::Http) => {
                Ok(SourceConfig::Http(http::HttpConfig::from_context(ctx)?))
            }
            Resolved::Builtin(SourceType::Avro) => Ok(SourceConfig::Avro(
                avro::AvroSourceConfig::from_context(ctx)?,
            )),
            Resolved::Builtin(SourceType::Thrift) => Ok(SourceConfig::Thrift(
                thrift::ThriftSourceConfig::from_context(ctx)?,
            )),
            other => Err(ctx.error("type", types::describe(&other, &c.type_name))),
        }
    }

    /// The batch size checked against the channels' transactionCapacity, for the source
    /// types that declare one in Flume.
    pub fn batch_size(&self) -> Option<usize> {
        match self {
            SourceConfig::Seq(c) => Some(c.batch_size),
            SourceConfig::Exec(c) => Some(c.batch_size),
            SourceConfig::SpoolDir(c) => Some(c.batch_size),
            SourceConfig::Taildir(c) => Some(c.batch_size),
            SourceConfig::Kafka(c) => Some(c.batch_size),
            SourceConfig::Syslog(c) if c.kind == syslog::SyslogKind::MultiportTcp => {
                Some(c.batch_size)
            }
            _ => None,
        }
    }

    /// Acquires resources and returns the runnable source.
    pub async fn build(self, name: &str) -> Result<Box<dyn Source>> {
        Ok(match self {
            SourceConfig::Netcat(c) => Box::new(c.build(name).await?),
            SourceConfig::NetcatUdp(c) => Box::new(c.build(name).await?),
            SourceConfig::Seq(c) => Box::new(c.build(name)),
            SourceConfig::Exec(c) => Box::new(c.build(name)),
            // These check directories and read files: off the runtime threads.
            SourceConfig::SpoolDir(c) => {
                let name = name.to_string();
                Box::new(blocking(move || c.build(&name)).await?)
            }
            SourceConfig::Taildir(c) => {
                let name = name.to_string();
                Box::new(blocking(move || c.build(&name)).await?)
            }
            SourceConfig::Syslog(c) => Box::new(c.build(name).await?),
            SourceConfig::Http(c) => Box::new(c.build(name).await?),
            SourceConfig::Kafka(c) => Box::new(c.build(name)?),
            SourceConfig::Avro(c) => Box::new(c.build(name).await?),
            SourceConfig::Thrift(c) => Box::new(c.build(name).await?),
        })
    }
}

/// Resolves a bind address, preferring IPv4 (as Java's `InetSocketAddress` does for
/// `localhost`).
pub(crate) async fn resolve_bind(
    component: &str,
    host: &str,
    port: u16,
) -> Result<std::net::SocketAddr> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| crate::error::FlowError::Start {
            component: component.to_string(),
            message: format!("cannot resolve bind address `{host}`"),
            source,
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| crate::error::FlowError::Start {
            component: component.to_string(),
            message: format!("bind address `{host}` resolves to nothing"),
            source: std::io::Error::from(std::io::ErrorKind::AddrNotAvailable),
        })
}

/// Binds a TCP listener on `host:port` with SO_REUSEADDR (as Flume's and Netty's servers
/// do); returns it with the address it is bound to.
pub(crate) async fn listen_tcp(
    component: &str,
    host: &str,
    port: u16,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let addr = resolve_bind(component, host, port).await?;
    let start = |source| crate::error::FlowError::Start {
        component: component.to_string(),
        message: format!("cannot listen on {addr} (bind = {host}, port = {port})"),
        source,
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(start)?;
    socket.set_reuseaddr(true).map_err(start)?;
    socket.bind(addr).map_err(start)?;
    let listener = socket.listen(1024).map_err(start)?;
    Ok((listener, addr))
}

/// Runs a start-up step that does blocking I/O on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::error::FlowError::Start {
            component: "agent".into(),
            message: "a start-up task failed".into(),
            source: std::io::Error::other(e),
        })?
}

/// Sleeps `d` unless `shutdown` comes first; returns false on shutdown.
pub(crate) async fn sleep_or_shutdown(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

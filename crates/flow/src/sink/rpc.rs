//! What the RPC sinks (`avro`, `thrift`) share, as Flume's `AbstractRpcSink`: the
//! connection properties, and the transaction around one batch — take up to `batch-size`
//! events, send them in one call, commit only when the next tier answered `OK`, otherwise
//! roll back (the runner backs off and retries on a new connection, so nothing committed is
//! lost while the next tier is down).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::{BoxFuture, Sink, Status};
use crate::channel::MemoryChannel;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::monitoring::{CounterGroup, SINK_COUNTERS};
use crate::tls::{self, Stream};

/// The connection settings of an RPC sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcSinkConfig {
    /// `hostname`: the next tier's host. Required.
    pub hostname: String,
    /// `port`: the next tier's port. Required.
    pub port: u16,
    /// `batch-size`: events per `appendBatch`. Flume's default: 100.
    pub batch_size: usize,
    /// `connect-timeout` (ms). Flume's default: 20000.
    pub connect_timeout: Duration,
    /// `request-timeout` (ms). Flume's default: 20000.
    pub request_timeout: Duration,
    /// `reset-connection-interval` (s; the Thrift sink's user guide spells it
    /// `connection-reset-interval`, both are read): reconnect after this long (0 = never).
    /// Flume's default: none.
    pub reset_connection_interval: Option<Duration>,
}

impl RpcSinkConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let hostname = ctx.require("hostname")?.to_string();
        let port = ctx.require_number::<u16>("port")?;
        let batch_size = ctx.number::<usize>("batch-size", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("batch-size", "must be at least 1"));
        }
        let key = if ctx.get("reset-connection-interval").is_none()
            && ctx.get("connection-reset-interval").is_some()
        {
            "connection-reset-interval"
        } else {
            "reset-connection-interval"
        };
        let reset = ctx.number::<u64>(key, 0)?;
        Ok(RpcSinkConfig {
            hostname,
            port,
            batch_size,
            connect_timeout: Duration::from_millis(ctx.number::<u64>("connect-timeout", 20000)?),
            request_timeout: Duration::from_millis(ctx.number::<u64>("request-timeout", 20000)?),
            reset_connection_interval: (reset > 0).then(|| Duration::from_secs(reset)),
        })
    }
}

/// A connection to the next tier (TCP, or TLS over TCP): opened on first use, dropped after
/// any failure (the next call reconnects).
pub struct LazyConnection {
    target: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    tls: Option<tls::Connector>,
    conn: Option<(Box<dyn Stream>, Instant)>,
}

impl std::fmt::Debug for LazyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyConnection")
            .field("target", &self.target)
            .field("tls", &self.tls.is_some())
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl LazyConnection {
    /// A connection to `target` (`host:port`), not opened yet.
    pub fn new(target: String, connect_timeout: Duration, request_timeout: Duration) -> Self {
        LazyConnection {
            target,
            connect_timeout,
            request_timeout,
            tls: None,
            conn: None,
        }
    }

    /// Connects with TLS.
    pub fn with_tls(mut self, connector: Option<tls::Connector>) -> Self {
        self.tls = connector;
        self
    }

    /// `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The stream, connected (TCP_NODELAY set) and TLS-handshaken within `connect-timeout`
    /// if it was not; the flag says it was just opened.
    pub async fn stream(&mut self) -> std::result::Result<(&mut Box<dyn Stream>, bool), String> {
        let fresh = self.conn.is_none();
        if fresh {
            let target = &self.target;
            let connect = async {
                let s = TcpStream::connect(target)
                    .await
                    .map_err(|e| format!("cannot connect to {target}: {e}"))?;
                let _ = s.set_nodelay(true);
                tls::connect(self.tls.as_ref(), s, target).await
            };
            let s = tokio::time::timeout(self.connect_timeout, connect)
                .await
                .map_err(|_| format!("connect to {target} timed out"))??;
            self.conn = Some((s, Instant::now()));
        }
        Ok((&mut self.conn.as_mut().expect("connected").0, fresh))
    }

    /// Runs one request/reply exchange within `request-timeout`; `None` from `exchange` means
    /// the peer closed the connection. The connection is dropped on any error.
    pub async fn request<T>(
        &mut self,
        exchange: impl for<'s> FnOnce(
            &'s mut Box<dyn Stream>,
        ) -> BoxFuture<'s, std::io::Result<Option<T>>>,
    ) -> std::result::Result<T, String> {
        let timeout = self.request_timeout;
        let target = self.target.clone();
        let (stream, _) = self.stream().await?;
        let r = match tokio::time::timeout(timeout, exchange(stream)).await {
            Err(_) => Err(format!("request to {target} timed out")),
            Ok(Err(e)) => Err(format!("RPC to {target} failed: {e}")),
            Ok(Ok(None)) => Err(format!("{target} closed the connection")),
            Ok(Ok(Some(v))) => Ok(v),
        };
        if r.is_err() {
            self.close();
        }
        r
    }

    /// Drops the connection.
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// How long the current connection has been open (`None`: not connected).
    pub fn age(&self) -> Option<Duration> {
        self.conn.as_ref().map(|(_, t)| t.elapsed())
    }
}

/// A client of the next tier's RPC protocol.
pub trait RpcClient: Send {
    /// Sends `events` as one batch; `Ok` only when the server answered `OK`. On an error the
    /// connection is dropped (the next call reconnects).
    fn append_batch<'a>(
        &'a mut self,
        events: &'a [Event],
    ) -> BoxFuture<'a, std::result::Result<(), String>>;
    /// How long the current connection has been open (`None`: not connected).
    fn connection_age(&self) -> Option<Duration>;
    /// Drops the connection (the next call reconnects).
    fn close(&mut self);
}

/// A running RPC sink over the client `C`.
pub struct RpcSink<C> {
    name: String,
    channel: Arc<MemoryChannel>,
    config: RpcSinkConfig,
    client: C,
    counter: Arc<CounterGroup>,
}

impl<C: RpcClient> RpcSink<C> {
    /// A sink sending with `client` (which connects lazily, on the first batch).
    pub fn new(name: &str, channel: Arc<MemoryChannel>, config: RpcSinkConfig, client: C) -> Self {
        let counter = Arc::new(CounterGroup::new("SINK", name, SINK_COUNTERS));
        counter.start();
        RpcSink {
            name: name.to_string(),
            channel,
            config,
            client,
            counter,
        }
    }

    /// Its client (the sink is dropped).
    pub fn into_client(self) -> C {
        self.client
    }
}

impl<C: RpcClient> Sink for RpcSink<C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            if let (Some(limit), Some(age)) = (
                self.config.reset_connection_interval,
                self.client.connection_age(),
            ) {
                if age >= limit {
                    self.client.close();
                    self.counter.add("ConnectionClosedCount", 1);
                }
            }
            let mut tx = self.channel.transaction();
            let n = tx.take_batch(self.config.batch_size).await?;
            if n == 0 {
                tx.commit().await?;
                self.counter.add("BatchEmptyCount", 1);
                return Ok(Status::Backoff);
            }
            self.counter.add("EventDrainAttemptCount", n as i64);
            let was_connected = self.client.connection_age().is_some();
            let sent = self.client.append_batch(tx.taken()).await;
            if !was_connected && sent.is_ok() {
                self.counter.add("ConnectionCreatedCount", 1);
            }
            match sent {
                Ok(()) => {
                    tx.commit().await?;
                    let kind = if n < self.config.batch_size {
                        "BatchUnderflowCount"
                    } else {
                        "BatchCompleteCount"
                    };
                    self.counter.add(kind, 1);
                    self.counter.add("EventDrainSuccessCount", n as i64);
                    Ok(Status::Ready)
                }
                Err(message) => {
                    tx.rollback();
                    self.counter.add(
                        if was_connected {
                            "ConnectionClosedCount"
                        } else {
                            "ConnectionFailedCount"
                        },
                        1,
                    );
                    Err(FlowError::Delivery {
                        sink: self.name.clone(),
                        message: format!("Failed to send events: {message}"),
                    })
                }
            }
        })
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.client.connection_age().is_some() {
                self.counter.add("ConnectionClosedCount", 1);
            }
            self.client.close();
            self.counter.stop();
        })
    }
}

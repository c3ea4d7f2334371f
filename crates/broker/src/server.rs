//! The listener, the background tasks (retention, flush, producer snapshots) and graceful
//! shutdown.
//!
//! [`Server::build`] binds the listener and opens the logs, so a bad address or an unreadable
//! log directory fails at start-up; [`Server::run`] accepts connections until the shutdown
//! token is cancelled, then stops accepting, lets every connection answer the requests it
//! already received, and closes every partition log (flush + clean-shutdown marker).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::connection;
use crate::error::{BrokerError, Result};

/// How long shutdown waits for connections to finish their in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, ready-to-run broker.
pub struct Server {
    listeners: Vec<TcpListener>,
    broker: Arc<Broker>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

async fn bind(config: &BrokerConfig) -> Result<Vec<TcpListener>> {
    let host = if config.listener.host.is_empty() {
        "0.0.0.0"
    } else {
        config.listener.host.as_str()
    };
    let listen_err = |source| BrokerError::Listen {
        address: config.listener.to_string(),
        source,
    };
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, config.listener.port))
        .await
        .map_err(listen_err)?
        .collect();
    // Prefer IPv4 first: it is what the advertised address usually resolves to.
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs.dedup();
    let mut listeners: Vec<TcpListener> = Vec::new();
    for mut addr in addrs {
        if let Some(first) = listeners.first() {
            addr.set_port(first.local_addr().map_err(listen_err)?.port());
        }
        match TcpListener::bind(addr).await {
            Ok(l) => listeners.push(l),
            Err(e) if listeners.is_empty() => return Err(listen_err(e)),
            Err(e) => tracing::debug!(%addr, error = %e, "Secondary listener address not bound."),
        }
    }
    if listeners.is_empty() {
        return Err(listen_err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "host resolves to no address",
        )));
    }
    Ok(listeners)
}

impl Server {
    /// Binds the listener(s) and opens the logs.
    pub async fn build(config: BrokerConfig) -> Result<Server> {
        let listeners = bind(&config).await?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| BrokerError::Listen {
                address: config.listener.to_string(),
                source,
            })?;
        let advertised = config.advertised(local_addr.port());
        let broker = tokio::task::spawn_blocking(move || Broker::open(config, advertised))
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))??;
        Ok(Server {
            listeners,
            broker: Arc::new(broker),
            local_addr,
        })
    }

    /// The first bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared broker state.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Serves until `shutdown` is cancelled, then shuts down gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let Server {
            listeners,
            broker,
            local_addr,
        } = self;
        tracing::info!(
            listener = %local_addr,
            advertised = %broker.advertised,
            log_dir = %broker.config.log_dir.display(),
            "Broker ready."
        );
        let tracker = TaskTracker::new();
        for listener in listeners {
            let broker = broker.clone();
            let shutdown = shutdown.clone();
            let conns = tracker.clone();
            tracker.spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        a = listener.accept() => a,
                    };
                    match accepted {
                        Ok((stream, _)) => {
                            conns.spawn(connection::serve(
                                broker.clone(),
                                stream,
                                shutdown.clone(),
                            ));
                        }
                        Err(error) => {
                            tracing::warn!(%error, "Accept failed.");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        tracker.spawn(background(broker.clone(), shutdown.clone()));
        shutdown.cancelled().await;
        tracing::info!("Shutting down: no new connections; finishing in-flight requests.");
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("Some connections did not finish in time.");
        }
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.close())
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))?;
        tracing::info!("Broker stopped cleanly.");
        Ok(())
    }
}

/// Retention, producer-state snapshots and time-based flushes, each on a blocking thread.
async fn background(broker: Arc<Broker>, shutdown: CancellationToken) {
    let retention_every = Duration::from_millis(broker.config.log_retention_check_interval_ms);
    let flush_every = Duration::from_millis(broker.config.log_flush_scheduler_interval_ms);
    let mut retention = tokio::time::interval(retention_every);
    let mut flush = tokio::time::interval(flush_every);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retention.tick().await;
    flush.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = retention.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.maintenance()).await;
            }
            _ = flush.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.flush_due()).await;
            }
        }
    }
}

//! `flumen serve`: the Kafka-compatible broker.

use std::path::PathBuf;

use anyhow::Context;
use flumen_broker::{BrokerConfig, Server};
use tokio_util::sync::CancellationToken;

/// Arguments of `flumen serve`, as `kafka-server-start.sh` takes them.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A Kafka `server.properties` file (optional: without it, serve on localhost:9092 with
    /// data in ./flumen-data).
    pub config: Option<PathBuf>,
    /// Override one property, as `key=value` (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Runs the broker until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let (config, unknown) = BrokerConfig::load(args.config.as_deref(), &args.overrides)?;
    for key in unknown {
        tracing::warn!(key, "Unknown configuration key, ignored.");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flumen-broker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = Server::build(config).await?;
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signal.cancel();
        });
        server.run(shutdown).await?;
        anyhow::Ok(())
    })
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

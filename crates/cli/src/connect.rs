//! `flumen connect-standalone`: Kafka Connect in standalone mode (`connect-standalone.sh`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use flumen_connect::config::{load_connector_file, load_properties, WorkerConfig};
use flumen_connect::task::State;
use flumen_connect::worker::Worker;
use rdkafka::producer::{BaseProducer, Producer};
use tokio_util::sync::CancellationToken;

/// Arguments of `flumen connect-standalone`, as `connect-standalone.sh` takes them.
#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The worker's properties (`connect-standalone.properties`).
    pub worker: PathBuf,
    /// Connector files: Java properties, a flat JSON map, or a `POST /connectors` body.
    pub connectors: Vec<PathBuf>,
}

/// Runs the worker until SIGTERM or SIGINT. Exits with code 3 when a connector cannot be
/// created, as Kafka's `ConnectStandalone` does.
pub fn run(args: ConnectArgs) -> anyhow::Result<()> {
    crate::serve::init_logging();
    let worker_props = load_properties(&args.worker)?;
    let config = WorkerConfig::from_props(worker_props)
        .with_context(|| format!("invalid worker configuration {}", args.worker.display()))?;
    let connectors = args
        .connectors
        .iter()
        .map(|p| load_connector_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("flumen-connect")
        .build()
        .context("cannot start the async runtime")?;
    let cluster_id = cluster_id(&config);
    let exit_code = runtime.block_on(async move {
        let listener = flumen_connect::rest::bind(&config.rest_addr).await?;
        let local = listener.local_addr()?;
        let worker_id = format!(
            "{}:{}",
            if local.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                local.ip().to_string()
            },
            local.port()
        );
        let worker = Arc::new(Worker::new(config, worker_id, cluster_id));
        let shutdown = CancellationToken::new();
        let rest = tokio::spawn(flumen_connect::rest::serve(
            listener,
            worker.clone(),
            shutdown.clone(),
        ));
        tracing::info!(listener = %local, "REST server listening at http://{local}/");
        let w = worker.clone();
        let created = tokio::task::spawn_blocking(move || {
            for props in connectors {
                let name = props.get("name").cloned().unwrap_or_default();
                if let Err(error) = w.create(props, State::Running) {
                    tracing::error!(connector = %name, %error, "Failed to create connector.");
                    eprintln!("ERROR Failed to create connector {name}: {error}");
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false);
        if !created {
            tracing::error!("Stopping after connector error");
        } else {
            tracing::info!("Kafka Connect started");
            crate::serve::wait_for_signal().await;
            tracing::info!("Kafka Connect stopping");
        }
        shutdown.cancel();
        let _ = rest.await;
        let w = worker.clone();
        let _ = tokio::task::spawn_blocking(move || w.shutdown()).await;
        tracing::info!("Kafka Connect stopped");
        anyhow::Ok(if created { 0 } else { 3 })
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    if exit_code != 0 {
        std::process::exit(exit_code);
    }
    Ok(())
}

/// The Kafka cluster id (for `GET /`), or empty when the cluster does not answer in time.
fn cluster_id(config: &WorkerConfig) -> String {
    let producer: Result<BaseProducer, _> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.bootstrap_servers)
        .create();
    producer
        .ok()
        .and_then(|p| p.client().fetch_cluster_id(Duration::from_secs(5)))
        .unwrap_or_default()
}

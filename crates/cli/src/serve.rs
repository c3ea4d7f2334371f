//! `flumen serve`: the Kafka-compatible broker.

use std::path::PathBuf;

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
pub fn run(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("the broker is not built yet")
}

//! `flumen agent`: a Flume-compatible agent.

use std::path::PathBuf;

/// Arguments of `flumen agent`, as `flume-ng agent` takes them.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Configuration directory (Flume's `--conf`).
    #[arg(short = 'c', long = "conf")]
    pub conf: Option<PathBuf>,
    /// The agent's configuration file (repeatable: merged in order).
    #[arg(short = 'f', long = "conf-file")]
    pub conf_file: Vec<PathBuf>,
    /// The name of the agent to run.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(_args: AgentArgs) -> anyhow::Result<()> {
    anyhow::bail!("the agent runtime is not built yet")
}

//! `flumen agent`: a Flume-compatible agent (`flume-ng agent …`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use flumen_flow::agent::{self, MonitoringConfig, Plan};
use flumen_flow::config::{Properties, Severity};

/// Arguments of `flumen agent`, as `flume-ng agent` takes them.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Configuration directory (Flume's `--conf`; accepted for compatibility, Flumen reads
    /// no log4j or flume-env.sh from it).
    #[arg(short = 'c', long = "conf")]
    pub conf: Option<PathBuf>,
    /// The agent's configuration file (repeatable: merged in order, later files win).
    #[arg(short = 'f', long = "conf-file")]
    pub conf_file: Vec<PathBuf>,
    /// The name of the agent to run.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// System properties, `-Dkey=value` (e.g. `-Dflume.root.logger=INFO,console`,
    /// `-Dflume.monitoring.type=http -Dflume.monitoring.port=34545`); also `${sys:key}`.
    #[arg(short = 'D', value_name = "KEY=VALUE", allow_hyphen_values = true)]
    pub define: Vec<String>,
    /// Do not poll the configuration files for changes.
    #[arg(long = "no-reload-conf")]
    pub no_reload_conf: bool,
    /// Seconds between checks of the configuration files for changes (Flume's default: 30).
    #[arg(short = 'i', long = "poll-interval", default_value_t = 30)]
    pub poll_interval: u64,
    /// Validate the configuration, print every problem and what would be dropped, and exit
    /// (non-zero when anything would be dropped).
    #[arg(long = "check")]
    pub check: bool,
    /// Seconds to let sinks drain the channels on SIGTERM before stopping them.
    #[arg(long = "drain-timeout", default_value_t = 10)]
    pub drain_timeout: u64,
}

fn system_properties(defs: &[String]) -> HashMap<String, String> {
    defs.iter()
        .map(|d| match d.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (d.trim().to_string(), String::new()),
        })
        .collect()
}

/// The log level from `flume.root.logger` (`INFO,console`), else `RUST_LOG`, else INFO.
fn init_logging(system: &HashMap<String, String>) {
    let level = system
        .get("flume.root.logger")
        .and_then(|v| v.split(',').next())
        .map(|l| match l.trim().to_ascii_uppercase().as_str() {
            "TRACE" | "ALL" => "trace",
            "DEBUG" => "debug",
            "WARN" => "warn",
            "ERROR" | "FATAL" => "error",
            "OFF" => "off",
            _ => "info",
        });
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn load(args: &AgentArgs, system: &HashMap<String, String>) -> anyhow::Result<(Plan, String)> {
    let name = args
        .name
        .clone()
        .context("missing required option --name (-n): the agent to run")?;
    anyhow::ensure!(
        !args.conf_file.is_empty(),
        "missing required option --conf-file (-f): the configuration file"
    );
    for f in &args.conf_file {
        anyhow::ensure!(
            f.exists(),
            "The specified configuration file does not exist: {}",
            f.display()
        );
    }
    let props = Properties::load(&args.conf_file, system)?;
    Ok((agent::plan(&props, &name), name))
}

fn print_check(plan: &Plan, name: &str) {
    for p in &plan.config.problems {
        let tag = match p.severity {
            Severity::Warning => "warning",
            Severity::Error => "DROPPED",
        };
        println!("{tag}: {}", p.message);
    }
    println!("agent {name} would run:");
    let summary = plan.config.summary();
    if summary.is_empty() {
        println!("  nothing");
    }
    for (k, v) in summary {
        println!("  {k}: {v}");
    }
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let system = system_properties(&args.define);
    init_logging(&system);
    if args.conf.is_none() && !args.check {
        tracing::warn!("No configuration directory set! Use --conf <dir> to override.");
    }
    let (plan, name) = load(&args, &system)?;
    if args.check {
        print_check(&plan, &name);
        if plan.has_errors() {
            anyhow::bail!("the configuration of agent {name} has problems (see above)");
        }
        println!("configuration OK");
        return Ok(());
    }
    for p in &plan.config.problems {
        match p.severity {
            Severity::Warning => tracing::warn!("{}", p.message),
            Severity::Error => tracing::error!("{}", p.message),
        }
    }
    if !plan.config.found {
        anyhow::bail!("no configuration found for agent {name} (see above)");
    }
    if plan.channels.is_empty() {
        anyhow::bail!("agent {name} has nothing left to run: every component was dropped (see above; `flumen agent --check` lists the problems)");
    }
    let monitoring = MonitoringConfig::from_system(&system)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flumen-agent")
        .build()?;
    runtime.block_on(async move {
        let running = agent::start(&plan, monitoring).await?;
        tracing::info!(agent = %name, "Agent started.");
        if !args.no_reload_conf {
            tracing::debug!(
                interval = args.poll_interval,
                "Configuration reload by polling is not implemented yet; the configuration is read once."
            );
        }
        wait_for_signal().await;
        tracing::info!(agent = %name, "Stopping: sources first, then draining channels.");
        running
            .shutdown(Duration::from_secs(args.drain_timeout))
            .await;
        tracing::info!(agent = %name, "Agent stopped.");
        anyhow::Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_are_split_on_the_first_equals() {
        let s = system_properties(&["flume.root.logger=INFO,console".into(), "a=b=c".into()]);
        assert_eq!(s["flume.root.logger"], "INFO,console");
        assert_eq!(s["a"], "b=c");
    }
}

//! `flumen agent`: a Flume-compatible agent (`flume-ng agent …`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use flumen_flow::agent::{self, MonitoringConfig, Plan};
use flumen_flow::config::{Properties, Severity};
use flumen_flow::monitoring::Registry;

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
    /// Configuration URIs (Flume 1.10+ `-u/--conf-uri`, repeatable). Only `file:` URIs are
    /// supported; as in Flume's code, `--conf-file` is ignored when any URI is given.
    #[arg(short = 'u', long = "conf-uri")]
    pub conf_uri: Vec<String>,
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
    /// Flume's extra Java classpath (`-C/--classpath`): accepted and ignored (plugins are
    /// Java classes Flumen cannot load).
    #[arg(short = 'C', long = "classpath", hide = true)]
    pub classpath: Option<String>,
    /// Flume's `--plugins-path`: accepted and ignored.
    #[arg(long = "plugins-path", hide = true)]
    pub plugins_path: Option<String>,
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

/// Logging from `flume.root.logger` (`LEVEL,console` or `LEVEL,LOGFILE`), else `RUST_LOG`,
/// else INFO to stderr. `LOGFILE` appends to `${flume.log.dir}/${flume.log.file}` (Flume's
/// defaults `./logs` and `flume.log`). Unlike Flume, the default is the console.
fn init_logging(system: &HashMap<String, String>) {
    let root = system.get("flume.root.logger");
    let level = root.and_then(|v| v.split(',').next()).map(|l| {
        match l.trim().to_ascii_uppercase().as_str() {
            "TRACE" | "ALL" => "trace",
            "DEBUG" => "debug",
            "WARN" => "warn",
            "ERROR" | "FATAL" => "error",
            "OFF" => "off",
            _ => "info",
        }
    });
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let to_file = root.is_some_and(|r| {
        r.split(',')
            .skip(1)
            .any(|a| a.trim().eq_ignore_ascii_case("LOGFILE"))
    });
    if to_file {
        let dir = system
            .get("flume.log.dir")
            .cloned()
            .unwrap_or_else(|| "./logs".into());
        let file = system
            .get("flume.log.file")
            .cloned()
            .unwrap_or_else(|| "flume.log".into());
        let path = std::path::Path::new(&dir).join(file);
        let opened = std::fs::create_dir_all(&dir).and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
        match opened {
            Ok(f) => {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .with_writer(std::sync::Mutex::new(f))
                    .with_ansi(false)
                    .try_init();
                return;
            }
            Err(e) => eprintln!(
                "flumen: cannot open log file {}: {e}; logging to stderr",
                path.display()
            ),
        }
    }
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
    let files = config_files(args)?;
    anyhow::ensure!(
        !files.is_empty(),
        "missing required option --conf-file (-f): the configuration file"
    );
    for f in &files {
        anyhow::ensure!(
            f.exists(),
            "The specified configuration file does not exist: {}",
            f.display()
        );
    }
    let props = Properties::load(&files, system)?;
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
    if args.classpath.is_some() || args.plugins_path.is_some() {
        tracing::warn!(
            "--classpath/--plugins-path are ignored: Flumen runs its built-in components only."
        );
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
        let registry = Registry::default();
        let monitor = match &monitoring {
            Some(m) => Some(agent::start_monitoring(m, &registry).await?),
            None => None,
        };
        let mut running = agent::start_with(&plan, &registry, &HashMap::new()).await?;
        let mut current = plan;
        tracing::info!(agent = %name, "Agent started.");
        let files = config_files(&args)?;
        let mut seen = mtimes(&files);
        let poll = Duration::from_secs(args.poll_interval.max(1));
        let mut signal = std::pin::pin!(wait_for_signal());
        loop {
            tokio::select! {
                _ = &mut signal => break,
                _ = tokio::time::sleep(poll), if !args.no_reload_conf => {
                    let now = mtimes(&files);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    let next = match load(&args, &system) {
                        Ok((next, _)) => next,
                        Err(error) => {
                            tracing::error!(%error, "Failed to load configuration data; keeping the current configuration.");
                            continue;
                        }
                    };
                    tracing::info!(agent = %name, "Reloading configuration: the files changed.");
                    for p in &next.config.problems {
                        match p.severity {
                            Severity::Warning => tracing::warn!("{}", p.message),
                            Severity::Error => tracing::error!("{}", p.message),
                        }
                    }
                    let channels = running.stop_for_reload().await;
                    running = match agent::start_with(&next, &registry, &channels).await {
                        Ok(r) => {
                            current = next;
                            r
                        }
                        Err(error) => {
                            tracing::error!(%error, "The new configuration failed to start; going back to the previous one.");
                            agent::start_with(&current, &registry, &channels).await?
                        }
                    };
                }
            }
        }
        tracing::info!(agent = %name, "Stopping: sources first, then draining channels.");
        running
            .shutdown(Duration::from_secs(args.drain_timeout))
            .await;
        if let Some(m) = monitor {
            m.cancel();
        }
        tracing::info!(agent = %name, "Agent stopped.");
        anyhow::Ok(())
    })
}

/// The configuration files: `--conf-uri` (`file:` only) when given, else `--conf-file`.
fn config_files(args: &AgentArgs) -> anyhow::Result<Vec<PathBuf>> {
    if args.conf_uri.is_empty() {
        return Ok(args.conf_file.clone());
    }
    if !args.conf_file.is_empty() {
        tracing::warn!("--conf-file is ignored because --conf-uri is given (as Flume does).");
    }
    args.conf_uri
        .iter()
        .map(|u| {
            let path = u
                .strip_prefix("file://")
                .or_else(|| u.strip_prefix("file:"))
                .with_context(|| format!("--conf-uri {u}: only file: URIs are supported"))?;
            Ok(PathBuf::from(path))
        })
        .collect()
}

/// Modification times of the configuration files (a change triggers a reload).
fn mtimes(files: &[PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
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

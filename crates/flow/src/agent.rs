//! The agent: from a validated configuration to running components, and back down.
//!
//! [`plan`] runs Flume's second validation stage without touching the system (reads every
//! component's settings, checks batch sizes against transaction capacities) and drops what
//! is invalid, recording why. [`start`] then acquires resources in Flume's order —
//! channels, sinks, sources — and spawns one task per source and per sink runner.
//! [`RunningAgent::shutdown`] stops sources first, lets sinks drain the channels within a
//! bound, then stops the sinks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channel::{MemoryChannel, MemoryChannelConfig};
use crate::channel_processor::ChannelProcessor;
use crate::config::types::{self, Resolved};
use crate::config::{AgentConfig, Kind, Properties, Severity};
use crate::error::{FlowError, Result};
use crate::interceptor;
use crate::monitoring::{self, Registry};
use crate::selector::ChannelSelector;
use crate::sink::processor::{ProcessorConfig, SinkProcessor};
use crate::sink::{runner, SinkConfig};
use crate::source::SourceConfig;

/// A source ready to build.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// Its name.
    pub name: String,
    /// Its settings.
    pub config: SourceConfig,
    /// Its channels (selector indexes refer to this order).
    pub channels: Vec<String>,
    /// Its selector.
    pub selector: ChannelSelector,
    /// Its properties (interceptors are built from them at start).
    pub ctx: crate::config::Context,
}

/// Everything the agent will run, after both validation stages.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The validated configuration, with every problem found.
    pub config: AgentConfig,
    /// Channels.
    pub channels: Vec<(String, MemoryChannelConfig)>,
    /// Sources.
    pub sources: Vec<SourcePlan>,
    /// Sinks: name, settings, channel.
    pub sinks: Vec<(String, SinkConfig, String)>,
    /// Sink groups: name, processor, member sinks.
    pub groups: Vec<(String, ProcessorConfig, Vec<String>)>,
}

impl Plan {
    /// True when a problem made Flumen drop something (not just warn).
    pub fn has_errors(&self) -> bool {
        self.config
            .problems
            .iter()
            .any(|p| p.severity == Severity::Error)
    }
}

/// Selects agent `name` and validates it fully, without acquiring any resource.
pub fn plan(props: &Properties, name: &str) -> Plan {
    let mut cfg = props.agent(name);
    if !cfg.found {
        let names = props.agent_names();
        if let Some(p) = cfg.problems.last_mut() {
            p.message.push_str(&format!(
                " (the configuration defines {})",
                if names.is_empty() {
                    "no agent".to_string()
                } else {
                    format!("agents: {}", names.join(", "))
                }
            ));
        }
    }
    // Channels.
    let mut channels = Vec::new();
    for c in cfg.channels.clone() {
        let r = match types::channel(&c.type_name) {
            Resolved::Builtin(types::ChannelType::Memory) => {
                MemoryChannelConfig::from_context(&c.ctx)
            }
            Resolved::Builtin(types::ChannelType::File) => {
                crate::file_channel::FileChannelConfig::from_context(&c.ctx)
                    .map(|f| f.into_channel_config())
            }
            Resolved::Builtin(types::ChannelType::Kafka) => {
                crate::kafka_channel::KafkaChannelConfig::from_context(&c.ctx)
                    .map(|k| k.into_channel_config())
            }
            other => Err(c.ctx.error("type", types::describe(&other, &c.type_name))),
        };
        match r {
            Ok(conf) => channels.push((c.name.clone(), conf)),
            Err(e) => cfg.reject(Kind::Channel, &c.name, &e),
        }
    }
    let tx_cap: HashMap<String, usize> = channels
        .iter()
        .map(|(n, c)| (n.clone(), c.transaction_capacity))
        .collect();
    // Sources.
    let mut sources = Vec::new();
    for s in cfg.sources.clone() {
        let links: Vec<String> = s
            .links
            .iter()
            .filter(|l| tx_cap.contains_key(*l))
            .cloned()
            .collect();
        let r = (|| {
            let config = SourceConfig::from_component(&s)?;
            let selector = ChannelSelector::from_context(&s.ctx, &links)?;
            interceptor::build_all(&s.ctx)?;
            if let Some(batch) = config.batch_size() {
                for l in &links {
                    if batch > tx_cap[l] {
                        return Err(s.ctx.error("batchSize", format!(
                            "Incompatible source and channel settings defined. source's batch size ({batch}) is greater than the channel {l}'s transactionCapacity ({}).",
                            tx_cap[l]
                        )));
                    }
                }
            }
            Ok(SourcePlan {
                name: s.name.clone(),
                config,
                channels: links.clone(),
                selector,
                ctx: s.ctx.clone(),
            })
        })();
        match r {
            Ok(p) if !p.channels.is_empty() => sources.push(p),
            Ok(_) => {}
            Err(e) => cfg.reject(Kind::Source, &s.name, &e),
        }
    }
    // Sinks.
    let mut sinks = Vec::new();
    for k in cfg.sinks.clone() {
        let ch = k.links[0].clone();
        let r = SinkConfig::from_component(&k).and_then(|conf| {
            if let (Some((batch, key)), Some(cap)) = (conf.batch_size(), tx_cap.get(&ch)) {
                if batch > *cap {
                    return Err(k.ctx.error(key, format!(
                        "Incompatible sink and channel settings defined. sink's batch size ({batch}) is greater than the channel {ch}'s transactionCapacity ({cap})."
                    )));
                }
            }
            Ok(conf)
        });
        match r {
            Ok(conf) => sinks.push((k.name.clone(), conf, ch)),
            Err(e) => cfg.reject(Kind::Sink, &k.name, &e),
        }
    }
    // Sink groups.
    let mut groups = Vec::new();
    for g in cfg.sink_groups.clone() {
        let members: Vec<String> = g
            .links
            .iter()
            .filter(|m| sinks.iter().any(|(n, _, _)| n == *m))
            .cloned()
            .collect();
        if members.len() != g.links.len() {
            let e = g.ctx.error("sinks", "a member sink was removed (Flume would reject the whole configuration; Flumen drops the group and runs its remaining sinks alone)");
            cfg.reject(Kind::SinkGroup, &g.name, &e);
            continue;
        }
        match ProcessorConfig::from_context(&g.ctx, &members) {
            Ok(p) => groups.push((g.name.clone(), p, members)),
            Err(e) => {
                cfg.reject(Kind::SinkGroup, &g.name, &e);
                // Flume: the members of a removed group do not run standalone.
                for m in &members {
                    sinks.retain(|(n, _, _)| n != m);
                    let e = FlowError::config(
                        format!("sink {m}"),
                        "sinkgroup",
                        None,
                        format!("its group {} was removed", g.name),
                    );
                    cfg.reject(Kind::Sink, m, &e);
                }
            }
        }
    }
    cfg.prune();
    let keep = |list: &[crate::config::ComponentConfig], n: &str| list.iter().any(|c| c.name == n);
    channels.retain(|(n, _)| keep(&cfg.channels, n));
    sources.retain(|s| keep(&cfg.sources, &s.name));
    for s in &mut sources {
        if let Some(c) = cfg.sources.iter().find(|c| c.name == s.name) {
            if c.links != s.channels {
                s.channels = c.links.clone();
                if let Ok(sel) = ChannelSelector::from_context(&s.ctx, &s.channels) {
                    s.selector = sel;
                }
            }
        }
    }
    sinks.retain(|(n, _, _)| keep(&cfg.sinks, n));
    groups.retain(|(n, _, _)| keep(&cfg.sink_groups, n));
    Plan {
        config: cfg,
        channels,
        sources,
        sinks,
        groups,
    }
}

/// Monitoring settings from `-Dflume.monitoring.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringConfig {
    /// `flume.monitoring.port`. Flume's default: 41414.
    pub port: u16,
    /// `flume.monitoring.bind` (Flumen extension). Default: `0.0.0.0`, as Flume's Jetty.
    pub bind: String,
}

impl MonitoringConfig {
    /// Reads the system properties; `Ok(None)` when monitoring is off.
    pub fn from_system(system: &HashMap<String, String>) -> Result<Option<Self>> {
        let Some(t) = system.get("flume.monitoring.type") else {
            return Ok(None);
        };
        if !t.eq_ignore_ascii_case("http")
            && t != "org.apache.flume.instrumentation.http.HTTPMetricsServer"
        {
            return Err(FlowError::config(
                "monitoring",
                "flume.monitoring.type",
                None,
                format!("`{t}` is not supported (http only)"),
            ));
        }
        let port = match system.get("flume.monitoring.port") {
            None => 41414,
            Some(p) => p.trim().parse().map_err(|_| {
                FlowError::config(
                    "monitoring",
                    "flume.monitoring.port",
                    None,
                    format!("`{p}` is not a valid port"),
                )
            })?,
        };
        Ok(Some(MonitoringConfig {
            port,
            bind: system
                .get("flume.monitoring.bind")
                .cloned()
                .unwrap_or_else(|| "0.0.0.0".into()),
        }))
    }
}

/// A started agent.
pub struct RunningAgent {
    sources_stop: CancellationToken,
    sources: JoinSet<()>,
    drain: CancellationToken,
    sinks_stop: CancellationToken,
    sinks: JoinSet<()>,
    channels: HashMap<String, Arc<MemoryChannel>>,
    monitor_stop: Option<CancellationToken>,
    /// The registry of counters served by the monitor.
    pub registry: Registry,
}

/// Binds the HTTP monitor and serves `registry` until the returned token is cancelled.
pub async fn start_monitoring(
    m: &MonitoringConfig,
    registry: &Registry,
) -> Result<CancellationToken> {
    let stop = CancellationToken::new();
    let listener = monitoring::bind_http(&m.bind, m.port)
        .await
        .map_err(|source| FlowError::Start {
            component: "monitoring".into(),
            message: format!(
                "cannot listen on {}:{} (flume.monitoring.port)",
                m.bind, m.port
            ),
            source,
        })?;
    tracing::info!(port = m.port, "Started the HTTP monitoring server.");
    tokio::spawn(monitoring::serve_http(
        listener,
        registry.clone(),
        stop.clone(),
    ));
    Ok(stop)
}

/// Starts `plan` with a fresh registry, and the HTTP monitor when configured.
pub async fn start(plan: &Plan, monitoring: Option<MonitoringConfig>) -> Result<RunningAgent> {
    let registry = Registry::default();
    let monitor_stop = match monitoring {
        Some(m) => Some(start_monitoring(&m, &registry).await?),
        None => None,
    };
    let mut agent = start_with(plan, &registry, &HashMap::new()).await?;
    agent.monitor_stop = monitor_stop;
    Ok(agent)
}

/// Acquires every resource of `plan` and starts its components. Channels of `existing`
/// with a name of the plan are reused with their events (a reload), resized to the new
/// settings.
pub async fn start_with(
    plan: &Plan,
    registry: &Registry,
    existing: &HashMap<String, Arc<MemoryChannel>>,
) -> Result<RunningAgent> {
    let registry = registry.clone();
    let mut channels: HashMap<String, Arc<MemoryChannel>> = HashMap::new();
    for (name, conf) in &plan.channels {
        let ch = match existing.get(name) {
            Some(ch) => {
                ch.reconfigure(conf.clone());
                ch.set_draining(false);
                tracing::info!(events = ch.len(), "Reusing Channel {name} and its events.");
                ch.clone()
            }
            None => crate::channel::open(name, conf.clone()).await?,
        };
        registry.register(ch.clone());
        tracing::info!(capacity = conf.capacity, "Starting Channel {name}");
        channels.insert(name.clone(), ch);
    }
    // Sinks.
    let mut built = HashMap::new();
    for (name, conf, ch) in &plan.sinks {
        let (conf, name2, channel) = (conf.clone(), name.clone(), channels[ch].clone());
        // Sinks check their directories: off the runtime threads.
        let sink = crate::source::blocking(move || conf.build(&name2, channel)).await?;
        if let Some(c) = sink.counter() {
            c.start();
            registry.register(c);
        }
        built.insert(name.clone(), sink);
    }
    let drain = CancellationToken::new();
    let sinks_stop = CancellationToken::new();
    let mut sink_tasks = JoinSet::new();
    for (gname, pconf, members) in &plan.groups {
        let sinks = members.iter().filter_map(|m| built.remove(m)).collect();
        let p = SinkProcessor::new(gname, pconf.clone(), sinks);
        tracing::info!("Starting Sink group {gname}");
        sink_tasks.spawn(runner::run(p, drain.clone(), sinks_stop.clone()));
    }
    let mut rest: Vec<_> = built.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, sink) in rest {
        tracing::info!("Starting Sink {name}");
        sink_tasks.spawn(runner::run(
            SinkProcessor::single(sink),
            drain.clone(),
            sinks_stop.clone(),
        ));
    }
    // Sources.
    let sources_stop = CancellationToken::new();
    let mut source_tasks = JoinSet::new();
    let mut pending = Vec::new();
    for s in &plan.sources {
        let source = s.config.clone().build(&s.name).await?;
        let ctx = s.ctx.clone();
        // The host interceptor resolves the host name: off the runtime threads.
        let interceptors = crate::source::blocking(move || interceptor::build_all(&ctx)).await?;
        let processor = ChannelProcessor::new(
            s.channels.iter().map(|c| channels[c].clone()).collect(),
            s.selector.clone(),
            interceptors,
        );
        if let Some(c) = source.counter() {
            c.start();
            registry.register(c);
        }
        pending.push((s.name.clone(), source, Arc::new(processor)));
    }
    for (name, source, processor) in pending {
        tracing::info!("Starting Source {name}");
        source_tasks.spawn(source.run(processor, sources_stop.clone()));
    }
    Ok(RunningAgent {
        sources_stop,
        sources: source_tasks,
        drain,
        sinks_stop,
        sinks: sink_tasks,
        channels,
        monitor_stop: None,
        registry,
    })
}

impl RunningAgent {
    /// Stops sources then sinks at once (open transactions roll back) and returns the
    /// channels with their events, for the next configuration (Flume's reload).
    pub async fn stop_for_reload(mut self) -> HashMap<String, Arc<MemoryChannel>> {
        self.sources_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.sources.join_next().await.is_some() {}
        })
        .await;
        self.sources.abort_all();
        self.sinks_stop.cancel();
        while self.sinks.join_next().await.is_some() {}
        if let Some(m) = self.monitor_stop.take() {
            m.cancel();
        }
        std::mem::take(&mut self.channels)
    }

    /// Stops sources, lets sinks drain the channels for at most `drain_for`, stops sinks.
    pub async fn shutdown(mut self, drain_for: Duration) {
        self.sources_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.sources.join_next().await.is_some() {}
        })
        .await;
        self.sources.abort_all();
        for c in self.channels.values() {
            c.set_draining(true);
        }
        self.drain.cancel();
        let drained = tokio::time::timeout(drain_for, async {
            while self.sinks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let left: usize = self.channels.values().map(|c| c.len()).sum();
            tracing::warn!(
                events = left,
                "Channels not drained in time; stopping sinks."
            );
        }
        self.sinks_stop.cancel();
        while self.sinks.join_next().await.is_some() {}
        let channels: Vec<_> = self.channels.values().cloned().collect();
        crate::channel::close_all(&channels).await;
        if let Some(m) = self.monitor_stop {
            m.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(text: &str) -> Plan {
        plan(&Properties::parse_str(text, &HashMap::new()), "a1")
    }

    /// Polls the registry's JSON until `done` holds or 60 s pass; returns the last value
    /// (the caller asserts on it, so a timeout fails with the counters in the message).
    async fn wait_json(
        registry: &Registry,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v: serde_json::Value = serde_json::from_str(&registry.json()).unwrap();
            if done(&v) || tokio::time::Instant::now() >= deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    const BASE: &str = "a1.sources = r1\na1.sinks = k1\na1.channels = c1\n\
        a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
        a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
        a1.channels.c1.type = memory\na1.channels.c1.transactionCapacity = 50\n";

    #[test]
    fn batch_size_over_transaction_capacity_drops_the_component() {
        let p = plan_of(&format!(
            "{BASE}a1.sources.r1.batchSize = 100\na1.sinks.k1.batchSize = 60\n"
        ));
        let msgs = p.config.messages().join("\n");
        assert!(msgs.contains("Source r1 has been removed"), "{msgs}");
        assert!(msgs.contains("source's batch size (100) is greater than the channel c1's transactionCapacity (50)"), "{msgs}");
        assert!(msgs.contains("property `batchSize` (<memory>:"), "{msgs}");
        assert!(msgs.contains("Sink k1 has been removed"), "{msgs}");
        assert!(
            msgs.contains("Channel c1 has no components connected"),
            "{msgs}"
        );
        assert!(p.sources.is_empty() && p.sinks.is_empty() && p.channels.is_empty());
    }

    #[test]
    fn unknown_type_drops_only_that_component() {
        let p = plan_of(&BASE.replace("type = null", "type = nul"));
        assert!(p.sinks.is_empty());
        assert_eq!(p.sources.len(), 1);
        assert!(p
            .config
            .messages()
            .join("\n")
            .contains("type `nul` is neither a Flume alias"));
    }

    #[tokio::test]
    async fn reload_keeps_same_named_channels_and_their_events() {
        // No sink: events stay in the channel.
        let first = plan_of("a1.sources = r1\na1.channels = c1\na1.sources.r1.type = seq\n\
            a1.sources.r1.channels = c1\na1.sources.r1.totalEvents = 30\na1.channels.c1.type = memory\n");
        let registry = Registry::default();
        let agent = start_with(&first, &registry, &HashMap::new())
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while agent.channels["c1"].len() < 30 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let channels = agent.stop_for_reload().await;
        assert_eq!(channels["c1"].len(), 30);
        let second = plan_of(&format!(
            "{BASE}a1.sources.r1.totalEvents = 0\na1.sinks.k1.batchSize = 10\n\
            a1.channels.c1.capacity = 500\n"
        ));
        let agent = start_with(&second, &registry, &channels).await.unwrap();
        assert!(Arc::ptr_eq(&channels["c1"], &agent.channels["c1"]));
        assert_eq!(agent.channels["c1"].config().capacity, 500);
        let v = wait_json(&registry, |v| v["CHANNEL.c1"]["ChannelSize"] == "0").await;
        assert_eq!(v["CHANNEL.c1"]["ChannelSize"], "0", "{v}");
        agent.shutdown(Duration::from_secs(2)).await;
    }

    #[tokio::test]
    async fn seq_to_null_runs_and_drains() {
        let p = plan_of(&format!("{BASE}a1.sources.r1.totalEvents = 1000\na1.sources.r1.batchSize = 50\na1.sinks.k1.batchSize = 50\n"));
        assert!(!p.has_errors(), "{:?}", p.config.problems);
        let agent = start(&p, None).await.unwrap();
        let json = agent.registry.json();
        assert!(json.contains("SOURCE.r1"), "{json}");
        let v = wait_json(&agent.registry, |v| {
            v["SOURCE.r1"]["EventAcceptedCount"] == "1000"
                && v["CHANNEL.c1"]["EventTakeSuccessCount"] == "1000"
        })
        .await;
        assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "1000", "{v}");
        assert_eq!(v["CHANNEL.c1"]["EventTakeSuccessCount"], "1000", "{v}");
        agent.shutdown(Duration::from_secs(2)).await;
    }
}

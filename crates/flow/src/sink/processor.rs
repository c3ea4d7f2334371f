//! Sink processors: how a sink group drives its sinks (Flume's `DefaultSinkProcessor`,
//! `FailoverSinkProcessor`, `LoadBalancingSinkProcessor`).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{Sink, Status};
use crate::config::types::{self, ProcessorType, Resolved};
use crate::config::Context;
use crate::error::{FlowError, Result};

/// Settings of a sink group's processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessorConfig {
    /// `default`: exactly one sink.
    Default,
    /// `failover`.
    Failover {
        /// `processor.priority.<sink>` (higher first). Sinks without one get −1, −2, … in
        /// configuration order (Flume: hash-map order).
        priorities: HashMap<String, i64>,
        /// `processor.maxpenalty` ms. Flume's default: 30000.
        max_penalty: Duration,
    },
    /// `load_balance`.
    LoadBalance {
        /// `processor.selector`: true = `random`, false = `round_robin` (Flume's default).
        random: bool,
        /// `processor.backoff`: blacklist failed sinks. Flume's default: false.
        backoff: bool,
        /// `processor.selector.maxTimeOut` ms. Flume's default: 30000.
        max_timeout: Duration,
    },
}

impl ProcessorConfig {
    /// Reads `processor.*` of a group whose members are `sinks`.
    pub fn from_context(ctx: &Context, sinks: &[String]) -> Result<Self> {
        let t = ctx
            .get("processor.type")
            .ok_or_else(|| ctx.error("processor.type", "required property is missing"))?;
        let kind = match types::processor(t) {
            Resolved::Builtin(k) => k,
            other => return Err(ctx.error("processor.type", types::describe(&other, t))),
        };
        Ok(match kind {
            ProcessorType::Default => {
                if sinks.len() != 1 {
                    return Err(ctx.error(
                        "sinks",
                        format!(
                            "a default sink processor takes exactly one sink, not {}",
                            sinks.len()
                        ),
                    ));
                }
                ProcessorConfig::Default
            }
            ProcessorType::Failover => {
                let mut priorities = HashMap::new();
                let mut next_default = -1;
                let mut used = Vec::new();
                for s in sinks {
                    let key = format!("processor.priority.{s}");
                    let p = match ctx.get(&key) {
                        Some(_) => ctx.number::<i64>(&key, 0)?,
                        None => {
                            next_default -= 1;
                            next_default + 1
                        }
                    };
                    if used.contains(&p) {
                        tracing::warn!(sink = %s, priority = p, "{}: sink {s} has the same priority as another sink of the group; it is left out", ctx.component());
                        continue;
                    }
                    used.push(p);
                    priorities.insert(s.clone(), p);
                }
                ProcessorConfig::Failover {
                    priorities,
                    max_penalty: Duration::from_millis(ctx.number("processor.maxpenalty", 30000)?),
                }
            }
            ProcessorType::LoadBalance => {
                if sinks.len() < 2 {
                    return Err(ctx.error(
                        "sinks",
                        "a load_balance sink processor needs at least two sinks",
                    ));
                }
                let sel = ctx.string("processor.selector", "round_robin");
                let random = match sel.to_ascii_lowercase().as_str() {
                    "round_robin" => false,
                    "random" => true,
                    _ => {
                        return Err(ctx.error(
                            "processor.selector",
                            format!("`{sel}` is not one of round_robin, random"),
                        ))
                    }
                };
                ProcessorConfig::LoadBalance {
                    random,
                    backoff: ctx.boolean("processor.backoff", false),
                    max_timeout: Duration::from_millis(
                        ctx.number("processor.selector.maxTimeOut", 30000)?,
                    ),
                }
            }
        })
    }
}

struct Member {
    sink: Box<dyn Sink>,
    priority: i64,
    /// Parked until this instant after failures.
    parked_until: Option<Instant>,
    failures: u32,
}

/// Drives one or more sinks.
pub struct SinkProcessor {
    config: ProcessorConfig,
    members: Vec<Member>,
    next: usize,
    name: String,
}

impl SinkProcessor {
    /// A processor for a lone sink (Flume's implicit default group).
    pub fn single(sink: Box<dyn Sink>) -> Self {
        let name = sink.name().to_string();
        Self::new(&name, ProcessorConfig::Default, vec![sink])
    }

    /// A processor over `sinks` (failover: only the sinks with a priority are kept).
    pub fn new(name: &str, config: ProcessorConfig, sinks: Vec<Box<dyn Sink>>) -> Self {
        let mut members: Vec<Member> = sinks
            .into_iter()
            .filter_map(|sink| {
                let priority = match &config {
                    ProcessorConfig::Failover { priorities, .. } => *priorities.get(sink.name())?,
                    _ => 0,
                };
                Some(Member {
                    sink,
                    priority,
                    parked_until: None,
                    failures: 0,
                })
            })
            .collect();
        members.sort_by_key(|m| std::cmp::Reverse(m.priority));
        SinkProcessor {
            config,
            members,
            next: 0,
            name: name.to_string(),
        }
    }

    /// The sinks, for channels and counters.
    pub fn sinks(&self) -> impl Iterator<Item = &dyn Sink> {
        self.members.iter().map(|m| m.sink.as_ref())
    }

    /// One round (Flume's `SinkProcessor.process`).
    pub async fn process(&mut self) -> Result<Status> {
        match self.config.clone() {
            ProcessorConfig::Default => self.members[0].sink.process().await,
            ProcessorConfig::Failover { max_penalty, .. } => self.failover(max_penalty).await,
            ProcessorConfig::LoadBalance {
                random,
                backoff,
                max_timeout,
            } => self.load_balance(random, backoff, max_timeout).await,
        }
    }

    async fn failover(&mut self, max_penalty: Duration) -> Result<Status> {
        let now = Instant::now();
        // A parked sink whose penalty is over gets one try (highest priority first).
        for m in &mut self.members {
            if m.parked_until.is_some_and(|t| t <= now) {
                match m.sink.process().await {
                    Ok(status) => {
                        m.parked_until = None;
                        m.failures = 0;
                        tracing::info!(group = %self.name, sink = m.sink.name(), "Sink is back in the active set.");
                        return Ok(status);
                    }
                    Err(error) => {
                        m.failures += 1;
                        let penalty = penalty(m.failures, max_penalty);
                        m.parked_until = Some(Instant::now() + penalty);
                        tracing::warn!(group = %self.name, sink = m.sink.name(), %error, "Sink failed again; parked for {} ms.", penalty.as_millis());
                    }
                }
            }
        }
        for m in &mut self.members {
            if m.parked_until.is_some() {
                continue;
            }
            match m.sink.process().await {
                Ok(status) => return Ok(status),
                Err(error) => {
                    m.failures += 1;
                    let penalty = penalty(m.failures, max_penalty);
                    m.parked_until = Some(Instant::now() + penalty);
                    tracing::warn!(group = %self.name, sink = m.sink.name(), %error, "Sink failed and has been sent to failover list; parked for {} ms.", penalty.as_millis());
                }
            }
        }
        Err(FlowError::Delivery {
            sink: self.name.clone(),
            message: "All sinks failed to process, nothing left to failover to".into(),
        })
    }

    async fn load_balance(
        &mut self,
        random: bool,
        backoff: bool,
        max_timeout: Duration,
    ) -> Result<Status> {
        let n = self.members.len();
        let start = if random {
            (uuid::Uuid::new_v4().as_u128() % n as u128) as usize
        } else {
            let s = self.next % n;
            self.next = (self.next + 1) % n;
            s
        };
        let now = Instant::now();
        for i in 0..n {
            let m = &mut self.members[(start + i) % n];
            if backoff && m.parked_until.is_some_and(|t| t > now) {
                continue;
            }
            match m.sink.process().await {
                Ok(status) => {
                    m.failures = 0;
                    m.parked_until = None;
                    return Ok(status);
                }
                Err(error) => {
                    tracing::warn!(group = %self.name, sink = m.sink.name(), %error, "Sink failed to consume event. Attempting next sink if available.");
                    if backoff {
                        m.failures = (m.failures + 1).min(16);
                        m.parked_until = Some(
                            Instant::now() + penalty(m.failures - 1, max_timeout).min(max_timeout),
                        );
                    }
                }
            }
        }
        Err(FlowError::Delivery {
            sink: self.name.clone(),
            message: "All configured sinks have failed".into(),
        })
    }

    /// Stops every sink.
    pub async fn stop(&mut self) {
        for m in &mut self.members {
            m.sink.stop().await;
        }
    }
}

/// `min(max, 2^k × 1000)` ms.
fn penalty(k: u32, max: Duration) -> Duration {
    Duration::from_millis(1000u64.saturating_mul(1u64 << k.min(20))).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{MemoryChannel, MemoryChannelConfig};
    use crate::source::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Fake {
        name: String,
        fail: bool,
        calls: Arc<AtomicUsize>,
        channel: Arc<MemoryChannel>,
    }

    impl Sink for Fake {
        fn name(&self) -> &str {
            &self.name
        }
        fn channel(&self) -> &Arc<MemoryChannel> {
            &self.channel
        }
        fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let fail = self.fail;
            let name = self.name.clone();
            Box::pin(async move {
                if fail {
                    Err(FlowError::Delivery {
                        sink: name,
                        message: "boom".into(),
                    })
                } else {
                    Ok(Status::Ready)
                }
            })
        }
    }

    fn fake(name: &str, fail: bool) -> (Box<dyn Sink>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let channel = MemoryChannelConfig::default().build("c");
        (
            Box::new(Fake {
                name: name.into(),
                fail,
                calls: calls.clone(),
                channel,
            }),
            calls,
        )
    }

    #[tokio::test]
    async fn failover_parks_the_failed_sink() {
        let ctx = Context::from_pairs(
            "sinkgroup g1",
            &[
                ("processor.type", "failover"),
                ("processor.priority.k1", "10"),
                ("processor.priority.k2", "5"),
            ],
        );
        let sinks = vec!["k1".to_string(), "k2".to_string()];
        let cfg = ProcessorConfig::from_context(&ctx, &sinks).unwrap();
        let (k1, c1) = fake("k1", true);
        let (k2, c2) = fake("k2", false);
        let mut p = SinkProcessor::new("g1", cfg, vec![k2, k1]);
        for _ in 0..3 {
            assert_eq!(p.process().await.unwrap(), Status::Ready);
        }
        assert_eq!(c1.load(Ordering::SeqCst), 1, "k1 tried once, then parked");
        assert_eq!(c2.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn load_balance_round_robin_and_all_failed() {
        let ctx = Context::from_pairs("sinkgroup g1", &[("processor.type", "load_balance")]);
        let sinks = vec!["k1".to_string(), "k2".to_string()];
        let cfg = ProcessorConfig::from_context(&ctx, &sinks).unwrap();
        let (k1, c1) = fake("k1", false);
        let (k2, c2) = fake("k2", false);
        let mut p = SinkProcessor::new("g1", cfg.clone(), vec![k1, k2]);
        for _ in 0..4 {
            p.process().await.unwrap();
        }
        assert_eq!(
            (c1.load(Ordering::SeqCst), c2.load(Ordering::SeqCst)),
            (2, 2)
        );
        let (k1, _) = fake("k1", true);
        let (k2, _) = fake("k2", true);
        let mut p = SinkProcessor::new("g1", cfg, vec![k1, k2]);
        assert!(p
            .process()
            .await
            .unwrap_err()
            .to_string()
            .contains("All configured sinks have failed"));
        let ctx = Context::from_pairs("sinkgroup g1", &[("processor.type", "load_balance")]);
        assert!(ProcessorConfig::from_context(&ctx, &sinks[..1]).is_err());
    }
}

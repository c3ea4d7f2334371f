//! The broker's shared state: configuration, the topic registry (persisted in the
//! [`MetaStore`]), the open partitions, and the producer-id allocator.
//!
//! Topic changes persist the metadata first and touch the logs second: creating writes the
//! topic record and then opens (creates) the logs; deleting removes the record and then the
//! logs. A crash between the two leaves at worst an orphan log directory, which is reported
//! at start-up and left alone.
//!
//! Methods that touch files are blocking; handlers call them through `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use flumen_log::{LogManager, TopicPartition};
use kafka_protocol::error::ResponseError;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::{BrokerConfig, Listener};
use crate::error::{BrokerError, Result};
use crate::meta_store::{MetaStore, TopicRecord, PRODUCER_ID_BLOCK};
use crate::partition::Partition;
use crate::topic_config;

/// A topic and its open partitions.
#[derive(Debug)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Topic id (persisted).
    pub id: Uuid,
    /// Partitions, by index.
    pub partitions: Vec<Arc<Partition>>,
    /// Topic config overrides.
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    /// The partition with this index.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// An admin operation refused with a Kafka error.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The error code.
    pub error: ResponseError,
    /// The error message.
    pub message: String,
}

impl Refused {
    /// A refusal.
    pub fn new(error: ResponseError, message: impl Into<String>) -> Refused {
        Refused {
            error,
            message: message.into(),
        }
    }
}

impl From<BrokerError> for Refused {
    fn from(e: BrokerError) -> Refused {
        tracing::error!(error = %e, "Admin operation failed.");
        Refused {
            error: e.kafka_error(),
            message: e.to_string(),
        }
    }
}

/// The broker's shared state.
pub struct Broker {
    /// Configuration.
    pub config: BrokerConfig,
    /// The address clients are told to use.
    pub advertised: Listener,
    /// The cluster id (persisted).
    pub cluster_id: String,
    meta: MetaStore,
    logs: LogManager,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    admin: Mutex<()>,
    appends: watch::Sender<u64>,
    producer_ids: Mutex<(i64, i64)>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name {name:?} is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long, the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name {name:?} contains {c:?}: only ASCII letters, digits, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Opens partitions `range` of a topic, on several threads when there are many (creating a
/// partition costs a few fsyncs, so a 10,000-partition topic is otherwise slow to create).
fn open_partitions(
    logs: &LogManager,
    root: &std::path::Path,
    topic: &str,
    range: std::ops::Range<i32>,
    config: &flumen_log::LogConfig,
) -> Result<Vec<Arc<Partition>>> {
    let open = |p: i32| {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition: p,
        };
        Partition::open(logs, root, tp, config.clone()).map(Arc::new)
    };
    let count = (range.end - range.start).max(0) as usize;
    if count <= 16 {
        return range.map(open).collect();
    }
    let workers = 8usize;
    let next = std::sync::atomic::AtomicI32::new(range.start);
    let mut slots: Vec<Option<Result<Arc<Partition>>>> = (0..count).map(|_| None).collect();
    let results = Mutex::new(&mut slots);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if p >= range.end {
                    break;
                }
                let r = open(p);
                results.lock().unwrap_or_else(|e| e.into_inner())[(p - range.start) as usize] =
                    Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(BrokerError::Task("partition open did not run".into()))))
        .collect()
}

impl Broker {
    /// Opens the metadata and every partition log (blocking).
    pub fn open(config: BrokerConfig, advertised: Listener) -> Result<Broker> {
        let meta = MetaStore::open(&config.log_dir)?;
        let logs = LogManager::open(&config.log_dir).map_err(|source| BrokerError::Log {
            partition: config.log_dir.display().to_string(),
            source,
        })?;
        let state = meta.snapshot();
        let mut topics = HashMap::new();
        for (name, rec) in &state.topics {
            let id = Uuid::parse_str(&rec.id).unwrap_or_else(|_| Uuid::new_v4());
            let log_config = topic_config::log_config(&rec.configs, &config);
            let partitions =
                open_partitions(&logs, &config.log_dir, name, 0..rec.partitions, &log_config)?;
            topics.insert(
                name.clone(),
                Arc::new(Topic {
                    name: name.clone(),
                    id,
                    partitions,
                    configs: rec.configs.clone(),
                }),
            );
        }
        for tp in logs.partitions() {
            let known = topics
                .get(&tp.topic)
                .is_some_and(|t| tp.partition < t.partitions.len() as i32);
            if !known {
                tracing::warn!(partition = %tp, "Log directory without a topic in the metadata; left alone.");
            }
        }
        let hw = state.producer_id_high_water;
        Ok(Broker {
            cluster_id: state.cluster_id.clone(),
            config,
            advertised,
            meta,
            logs,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            appends: watch::channel(0).0,
            producer_ids: Mutex::new((hw, hw)),
        })
    }

    /// The topic with this name.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The topic with this id.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Every open partition.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Signals fetchers waiting for data that something was appended.
    pub fn notify_append(&self) {
        self.appends.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver woken by every append.
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appends.subscribe()
    }

    fn admin_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn install(&self, topic: Topic) -> Arc<Topic> {
        let topic = Arc::new(topic);
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.name.clone(), topic.clone());
        topic
    }

    /// Creates a topic (blocking). `partitions`/`configs` were validated by the caller except
    /// for the checks done here (name, existence, config names and values).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> std::result::Result<Arc<Topic>, Refused> {
        validate_topic_name(name)
            .map_err(|m| Refused::new(ResponseError::InvalidTopicException, m))?;
        if partitions < 1 {
            return Err(Refused::new(
                ResponseError::InvalidPartitions,
                format!("{partitions} partitions: must be at least 1"),
            ));
        }
        if partitions > 100_000 {
            return Err(Refused::new(
                ResponseError::InvalidPartitions,
                format!("{partitions} partitions is too many"),
            ));
        }
        for (k, v) in &configs {
            topic_config::validate(k, v)
                .map_err(|m| Refused::new(ResponseError::InvalidConfig, m))?;
        }
        let _guard = self.admin_lock();
        if self.topic(name).is_some() {
            return Err(Refused::new(
                ResponseError::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        let id = Uuid::new_v4();
        if validate_only {
            return Ok(Arc::new(Topic {
                name: name.to_string(),
                id,
                partitions: Vec::new(),
                configs,
            }));
        }
        self.meta.update(|s| {
            s.topics.insert(
                name.to_string(),
                TopicRecord {
                    id: id.to_string(),
                    partitions,
                    configs: configs.clone(),
                },
            );
        })?;
        let log_config = topic_config::log_config(&configs, &self.config);
        let opened = open_partitions(
            &self.logs,
            &self.config.log_dir,
            name,
            0..partitions,
            &log_config,
        )?;
        tracing::info!(topic = name, partitions, "Topic created.");
        Ok(self.install(Topic {
            name: name.to_string(),
            id,
            partitions: opened,
            configs,
        }))
    }

    /// Creates a topic with the broker defaults if auto-creation is on (blocking).
    pub fn auto_create(&self, name: &str) -> Option<Arc<Topic>> {
        if let Some(t) = self.topic(name) {
            return Some(t);
        }
        if !self.config.auto_create_topics_enable {
            return None;
        }
        match self.create_topic(name, self.config.num_partitions, BTreeMap::new(), false) {
            Ok(t) => Some(t),
            Err(r) if r.error == ResponseError::TopicAlreadyExists => self.topic(name),
            Err(_) => None,
        }
    }

    /// Deletes a topic and its logs (blocking).
    pub fn delete_topic(&self, name: &str) -> std::result::Result<Arc<Topic>, Refused> {
        if !self.config.delete_topic_enable {
            return Err(Refused::new(
                ResponseError::TopicDeletionDisabled,
                "delete.topic.enable is false",
            ));
        }
        let _guard = self.admin_lock();
        let Some(topic) = self.topic(name) else {
            return Err(Refused::new(
                ResponseError::UnknownTopicOrPartition,
                format!("unknown topic {name:?}"),
            ));
        };
        self.meta.update(|s| {
            s.topics.remove(name);
        })?;
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        for p in &topic.partitions {
            p.retire();
            if let Err(error) = self.logs.delete_log(p.tp()) {
                tracing::warn!(%error, partition = %p.tp(), "Cannot delete the log of a deleted topic.");
            }
        }
        tracing::info!(topic = name, "Topic deleted.");
        Ok(topic)
    }

    /// Raises a topic's partition count (blocking).
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> std::result::Result<(), Refused> {
        let _guard = self.admin_lock();
        let Some(topic) = self.topic(name) else {
            return Err(Refused::new(
                ResponseError::UnknownTopicOrPartition,
                format!("unknown topic {name:?}"),
            ));
        };
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(Refused::new(
                ResponseError::InvalidPartitions,
                format!(
                    "topic {name:?} has {current} partitions; the new count {count} must be larger"
                ),
            ));
        }
        if count > 100_000 {
            return Err(Refused::new(
                ResponseError::InvalidPartitions,
                format!("{count} partitions is too many"),
            ));
        }
        if validate_only {
            return Ok(());
        }
        self.meta.update(|s| {
            if let Some(rec) = s.topics.get_mut(name) {
                rec.partitions = count;
            }
        })?;
        let log_config = topic_config::log_config(&topic.configs, &self.config);
        let mut partitions = topic.partitions.clone();
        partitions.extend(open_partitions(
            &self.logs,
            &self.config.log_dir,
            name,
            current..count,
            &log_config,
        )?);
        self.install(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
            configs: topic.configs.clone(),
        });
        Ok(())
    }

    /// Replaces a topic's config overrides (blocking). The caller validated the values.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> std::result::Result<(), Refused> {
        let _guard = self.admin_lock();
        let Some(topic) = self.topic(name) else {
            return Err(Refused::new(
                ResponseError::UnknownTopicOrPartition,
                format!("unknown topic {name:?}"),
            ));
        };
        self.meta.update(|s| {
            if let Some(rec) = s.topics.get_mut(name) {
                rec.configs = configs.clone();
            }
        })?;
        let log_config = topic_config::log_config(&configs, &self.config);
        for p in &topic.partitions {
            p.set_config(log_config.clone());
        }
        self.install(Topic {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partitions.clone(),
            configs,
        });
        Ok(())
    }

    /// Hands out a new producer id (blocking: may persist a new block).
    pub fn next_producer_id(&self) -> Result<i64> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.0 >= ids.1 {
            let new_limit = ids.1 + PRODUCER_ID_BLOCK;
            self.meta.update(|s| s.producer_id_high_water = new_limit)?;
            ids.1 = new_limit;
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Runs retention and producer-state snapshots on every partition (blocking).
    pub fn maintenance(&self) {
        let now = now_ms();
        for p in self.partitions() {
            if let Err(error) = p.apply_retention(now) {
                tracing::warn!(%error, partition = %p.tp(), "Retention failed.");
            }
            if let Err(error) = p.snapshot_producers() {
                tracing::warn!(%error, partition = %p.tp(), "Producer-state snapshot failed.");
            }
        }
    }

    /// Flushes partitions whose flush.ms elapsed (blocking).
    pub fn flush_due(&self) {
        let now = now_ms();
        for p in self.partitions() {
            if let Err(error) = p.flush_if_needed(now) {
                tracing::error!(%error, partition = %p.tp(), "Flush failed.");
            }
        }
    }

    /// Closes every partition: flush, snapshot, clean-shutdown marker (blocking; several
    /// threads, as each close costs fsyncs).
    pub fn close(&self) {
        let partitions = self.partitions();
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8.min(partitions.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = partitions.get(i) else { break };
                    if let Err(error) = p.close() {
                        tracing::error!(%error, partition = %p.tp(), "Closing the partition failed.");
                    }
                });
            }
        });
    }

    /// Milliseconds since the epoch.
    pub fn now_ms() -> i64 {
        now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("a.b_c-9").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").unwrap_err().contains("' '"));
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}

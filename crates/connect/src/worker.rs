//! The standalone worker: the connectors, their tasks (one thread each) and what the REST
//! API asks of them. Connector configurations live in memory, as in Kafka's standalone
//! mode (the ones from the command line come back on restart; REST-created ones do not);
//! only offsets persist.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};

use crate::config::{ConnectorClass, ConnectorConfig, Props, WorkerConfig};
use crate::error::{ConnectError, Result};
use crate::offsets::OffsetStore;
use crate::sink::{FileSinkTask, SinkOutput};
use crate::source::FileSourceTask;
use crate::task::{ActiveTopics, State, TaskControl};

/// The version `GET /` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Connector {
    cfg: Arc<ConnectorConfig>,
    /// The connector's target state (RUNNING, PAUSED or STOPPED).
    target: State,
    /// The running tasks, by id (empty while STOPPED).
    tasks: Vec<TaskHandle>,
    /// The topics its tasks used (topic tracking).
    topics: Arc<ActiveTopics>,
}

/// How many tasks a connector runs: Kafka's `FileStreamSourceConnector` always one, its
/// `FileStreamSinkConnector` `tasks.max` (they share the partitions of the topics and
/// append to the same file, line by line).
fn task_count(cfg: &ConnectorConfig) -> u32 {
    match cfg.class {
        ConnectorClass::FileStreamSource => 1,
        ConnectorClass::FileStreamSink => cfg.tasks_max.max(1),
    }
}

struct TaskHandle {
    control: Arc<TaskControl>,
    thread: Option<JoinHandle<()>>,
}

impl TaskHandle {
    fn stop(mut self) {
        self.control.request_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A standalone Connect worker. Its methods block (they start and join task threads):
/// call them off the async runtime.
pub struct Worker {
    config: Arc<WorkerConfig>,
    store: Arc<OffsetStore>,
    connectors: Mutex<BTreeMap<String, Connector>>,
    worker_id: String,
    cluster_id: String,
}

impl Worker {
    /// A worker with no connectors yet. `worker_id` is the REST `host:port`; `cluster_id`
    /// the Kafka cluster's id (for `GET /`).
    pub fn new(config: WorkerConfig, worker_id: String, cluster_id: String) -> Self {
        let store = Arc::new(OffsetStore::open(&config.offset_file));
        Self {
            config: Arc::new(config),
            store,
            connectors: Mutex::new(BTreeMap::new()),
            worker_id,
            cluster_id,
        }
    }

    /// The worker settings.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// `host:port` of the REST listener.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The Kafka cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Connector>> {
        self.connectors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts every task of a connector (stopping those already started on a failure).
    fn start_tasks(
        &self,
        cfg: &Arc<ConnectorConfig>,
        topics: &Arc<ActiveTopics>,
        paused: bool,
    ) -> Result<Vec<TaskHandle>> {
        let mut tasks = Vec::new();
        for id in 0..task_count(cfg) {
            match self.start_task(cfg, topics, id, paused) {
                Ok(t) => tasks.push(t),
                Err(e) => {
                    tasks.into_iter().for_each(TaskHandle::stop);
                    return Err(e);
                }
            }
        }
        Ok(tasks)
    }

    fn start_task(
        &self,
        cfg: &Arc<ConnectorConfig>,
        topics: &Arc<ActiveTopics>,
        id: u32,
        paused: bool,
    ) -> Result<TaskHandle> {
        let control = Arc::new(TaskControl::new(topics.clone()));
        control.set_paused(paused);
        let thread_name = format!("connect-{}-{id}", cfg.name);
        let spawn_err = |source| ConnectError::Io {
            context: "starting the task thread".into(),
            source,
        };
        let thread = match cfg.class {
            ConnectorClass::FileStreamSource => {
                let task = FileSourceTask::new(
                    cfg.clone(),
                    self.config.clone(),
                    self.store.clone(),
                    control.clone(),
                );
                std::thread::Builder::new()
                    .name(thread_name)
                    .spawn(move || task.run())
                    .map_err(spawn_err)?
            }
            ConnectorClass::FileStreamSink => {
                let output = SinkOutput::open(cfg)?;
                let task = FileSinkTask::new(
                    cfg.clone(),
                    self.config.clone(),
                    self.store.clone(),
                    control.clone(),
                    output,
                )
                .with_task_id(id, task_count(cfg));
                std::thread::Builder::new()
                    .name(thread_name)
                    .spawn(move || task.run())
                    .map_err(spawn_err)?
            }
        };
        Ok(TaskHandle {
            control,
            thread: Some(thread),
        })
    }

    /// Creates and starts a connector (`initial_state` RUNNING, PAUSED or STOPPED).
    pub fn create(&self, props: Props, initial: State) -> Result<Value> {
        let cfg = Arc::new(ConnectorConfig::from_props(props, &self.config)?);
        let mut conns = self.lock();
        if conns.contains_key(&cfg.name) {
            return Err(ConnectError::AlreadyExists(cfg.name.clone()));
        }
        let topics = Arc::new(ActiveTopics::default());
        let tasks = match initial {
            State::Stopped => Vec::new(),
            _ => self.start_tasks(&cfg, &topics, initial == State::Paused)?,
        };
        tracing::info!("Created connector {}", cfg.name);
        let info = info_json(&cfg);
        conns.insert(
            cfg.name.clone(),
            Connector {
                cfg,
                target: initial,
                tasks,
                topics,
            },
        );
        Ok(info)
    }

    /// Replaces (or creates) a connector's configuration; `true` when it was created.
    pub fn put_config(&self, name: &str, mut props: Props) -> Result<(bool, Value)> {
        if let Some(n) = props.get("name") {
            if n != name {
                return Err(ConnectError::InvalidConfig(vec![format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )]));
            }
        }
        props.insert("name".into(), name.to_string());
        let cfg = Arc::new(ConnectorConfig::from_props(props.clone(), &self.config)?);
        let old = self.lock().remove(name);
        let Some(old) = old else {
            return Ok((true, self.create(props, State::Running)?));
        };
        old.tasks.into_iter().for_each(TaskHandle::stop);
        let tasks = match old.target {
            State::Stopped => Vec::new(),
            target => self.start_tasks(&cfg, &old.topics, target == State::Paused)?,
        };
        let info = info_json(&cfg);
        self.lock().insert(
            name.to_string(),
            Connector {
                cfg,
                target: old.target,
                tasks,
                topics: old.topics,
            },
        );
        Ok((false, info))
    }

    /// `PATCH /connectors/{name}/config` (Kafka 3.8+): merges `patch` into the configuration
    /// (a `null` value removes the key) and applies it as `PUT` does.
    pub fn patch_config(
        &self,
        name: &str,
        patch: &serde_json::Map<String, Value>,
    ) -> Result<Value> {
        let mut props = self.config_of(name)?;
        for (k, v) in patch {
            match v {
                Value::Null => {
                    props.remove(k);
                }
                Value::String(s) => {
                    props.insert(k.clone(), s.trim().to_string());
                }
                Value::Number(_) | Value::Bool(_) => {
                    props.insert(k.clone(), v.to_string());
                }
                other => {
                    return Err(ConnectError::InvalidConfig(vec![format!(
                        "configuration value of {k} must be a string, got {other}"
                    )]))
                }
            }
        }
        Ok(self.put_config(name, props)?.1)
    }

    /// Connector names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&Connector) -> Result<T>) -> Result<T> {
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        f(c)
    }

    /// `GET /connectors/{name}`.
    pub fn info(&self, name: &str) -> Result<Value> {
        self.with(name, |c| Ok(info_json(&c.cfg)))
    }

    /// `GET /connectors/{name}/config`.
    pub fn config_of(&self, name: &str) -> Result<Props> {
        self.with(name, |c| Ok(c.cfg.raw.clone()))
    }

    /// `GET /connectors/{name}/status`.
    pub fn status(&self, name: &str) -> Result<Value> {
        self.with(name, |c| {
            let tasks: Vec<Value> = c
                .tasks
                .iter()
                .zip(0..)
                .map(|(t, id)| self.task_state_json(id, &t.control))
                .collect();
            Ok(json!({
                "name": c.cfg.name,
                "connector": {"state": c.target.as_str(), "worker_id": self.worker_id},
                "tasks": tasks,
                "type": c.cfg.class.kind(),
            }))
        })
    }

    fn task_state_json(&self, id: u32, control: &TaskControl) -> Value {
        let (state, trace) = control.state();
        let mut v = json!({"id": id, "state": state.as_str(), "worker_id": self.worker_id});
        if let Some(trace) = trace {
            v["trace"] = Value::String(trace);
        }
        v
    }

    /// `GET /connectors/{name}/tasks/{id}/status`.
    pub fn task_status(&self, name: &str, id: u32) -> Result<Value> {
        self.with(name, |c| match c.tasks.get(id as usize) {
            Some(t) => Ok(self.task_state_json(id, &t.control)),
            None => Err(ConnectError::TaskNotFound(format!("{name}-{id}"))),
        })
    }

    /// `GET /connectors/{name}/tasks`.
    pub fn tasks(&self, name: &str) -> Result<Value> {
        self.with(name, |c| {
            if c.target == State::Stopped {
                return Ok(json!([]));
            }
            let mut config = c.cfg.raw.clone();
            let task_class = match c.cfg.class {
                ConnectorClass::FileStreamSource => {
                    "org.apache.kafka.connect.file.FileStreamSourceTask"
                }
                ConnectorClass::FileStreamSink => {
                    "org.apache.kafka.connect.file.FileStreamSinkTask"
                }
            };
            config.insert("task.class".into(), task_class.into());
            Ok(Value::Array(
                (0..task_count(&c.cfg))
                    .map(|id| json!({"id": {"connector": name, "task": id}, "config": config}))
                    .collect(),
            ))
        })
    }

    /// `GET /connectors/{name}/topics`: the topics the connector used since it was created
    /// or since its last reset (403 when `topic.tracking.enable=false`).
    pub fn topics(&self, name: &str) -> Result<Value> {
        if self
            .config
            .raw
            .get("topic.tracking.enable")
            .map(String::as_str)
            == Some("false")
        {
            return Err(ConnectError::Forbidden(
                "Topic tracking is disabled.".into(),
            ));
        }
        self.with(name, |c| Ok(json!({ name: {"topics": c.topics.list()} })))
    }

    /// `PUT /connectors/{name}/topics/reset` (403 when
    /// `topic.tracking.allow.reset=false` or tracking is off).
    pub fn reset_topics(&self, name: &str) -> Result<()> {
        let raw = &self.config.raw;
        if raw.get("topic.tracking.enable").map(String::as_str) == Some("false") {
            return Err(ConnectError::Forbidden(
                "Topic tracking is disabled.".into(),
            ));
        }
        if raw.get("topic.tracking.allow.reset").map(String::as_str) == Some("false") {
            return Err(ConnectError::Forbidden(
                "Topic tracking reset is disabled.".into(),
            ));
        }
        self.with(name, |c| {
            c.topics.reset();
            Ok(())
        })
    }

    /// `GET /connectors/{name}/offsets`.
    pub fn offsets(&self, name: &str) -> Result<Value> {
        self.with(name, |_| Ok(()))?;
        let offsets: Vec<Value> = self
            .store
            .entries(name)
            .into_iter()
            .map(|(partition, mut offset)| {
                if let Some(o) = offset.as_object_mut() {
                    o.remove("inode");
                }
                json!({"partition": partition, "offset": offset})
            })
            .collect();
        Ok(json!({ "offsets": offsets }))
    }

    /// The configuration of a STOPPED connector (offsets may change only then).
    fn stopped_config(&self, name: &str) -> Result<Arc<ConnectorConfig>> {
        self.with(name, |c| {
            if c.target != State::Stopped {
                return Err(ConnectError::NotStopped(name.into()));
            }
            Ok(c.cfg.clone())
        })
    }

    /// `DELETE /connectors/{name}/offsets` (connector must be STOPPED). A sink's consumer
    /// group positions are reset too (to each partition's start).
    pub fn reset_offsets(&self, name: &str) -> Result<Value> {
        let cfg = self.stopped_config(name)?;
        if cfg.class == ConnectorClass::FileStreamSink {
            let parts: Vec<(String, i32, Option<i64>)> =
                crate::sink::sink_partitions(&self.config, &cfg)?
                    .into_iter()
                    .map(|(t, p)| (t, p, None))
                    .collect();
            crate::sink::write_group_offsets(&self.config, &cfg, &parts)?;
        }
        self.store.remove_connector(name);
        self.store.flush()?;
        Ok(json!({"message": "The offsets for this connector have been reset successfully"}))
    }

    /// `PATCH /connectors/{name}/offsets` (connector must be STOPPED): body
    /// `{"offsets":[{"partition":{…},"offset":{…}|null}]}`, validated as Kafka's file
    /// connectors and `SinkUtils` do; a `null` offset resets that partition.
    pub fn alter_offsets(&self, name: &str, body: &Value) -> Result<Value> {
        let cfg = self.stopped_config(name)?;
        let entries = match body.get("offsets").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a,
            _ => {
                return Err(ConnectError::BadRequest(
                    "Partitions / offsets need to be provided for an alter offsets request".into(),
                ))
            }
        };
        let bad = |m: &str| Err(ConnectError::BadRequest(m.to_string()));
        // (store partition key, store offset) pairs, validated before anything changes.
        let mut changes: Vec<(Value, Option<Value>)> = Vec::new();
        let mut group: Vec<(String, i32, Option<i64>)> = Vec::new();
        for e in entries {
            let Some(partition) = e.get("partition").and_then(Value::as_object) else {
                return bad("Partition objects cannot be null");
            };
            let offset = match e.get("offset") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => Some(o),
                Some(_) => return bad("Offset objects must be JSON objects or null"),
            };
            match cfg.class {
                ConnectorClass::FileStreamSource => {
                    if cfg.file.is_none() {
                        return bad("Offsets cannot be modified if the 'file' configuration is unspecified. This is because stdin is used for input and offsets are not tracked.");
                    }
                    let Some(filename) = partition.get("filename") else {
                        return bad("Partition objects should contain the key 'filename'");
                    };
                    let offset = match offset {
                        None => None,
                        Some(o) => {
                            let Some(p) = o.get("position") else {
                                return bad(
                                    "Offset objects should either be null or contain the key 'position'",
                                );
                            };
                            let Some(p) = p.as_i64() else {
                                return bad("The value for the 'position' key in the offset is expected to be a Long value");
                            };
                            if p < 0 {
                                return bad("The value for the 'position' key in the offset should be a non-negative value");
                            }
                            Some(json!({ "position": p }))
                        }
                    };
                    changes.push((json!({ "filename": filename }), offset));
                }
                ConnectorClass::FileStreamSink => {
                    let (Some(topic), Some(part)) = (
                        partition.get("kafka_topic"),
                        partition.get("kafka_partition"),
                    ) else {
                        return bad("The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'");
                    };
                    let Some(topic) = topic.as_str().filter(|t| !t.is_empty()) else {
                        return bad("Kafka topic names must be valid strings");
                    };
                    let Some(part) = part
                        .as_i64()
                        .or_else(|| part.as_str().and_then(|s| s.parse().ok()))
                        .and_then(|p| i32::try_from(p).ok())
                        .filter(|p| *p >= 0)
                    else {
                        return bad("Kafka partitions must be valid numbers");
                    };
                    let offset = match offset {
                        None => None,
                        Some(o) => {
                            let Some(v) = o.get("kafka_offset") else {
                                return bad("The offset for a sink connector should either be null or contain the key 'kafka_offset'");
                            };
                            let Some(v) = v
                                .as_i64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                                .filter(|v| *v >= 0)
                            else {
                                return bad("Kafka offsets must be valid numbers");
                            };
                            Some(v)
                        }
                    };
                    group.push((topic.to_string(), part, offset));
                    changes.push((
                        crate::sink::sink_partition_key(topic, part),
                        offset.map(|o| json!({ "kafka_offset": o })),
                    ));
                }
            }
        }
        if !group.is_empty() {
            crate::sink::write_group_offsets(&self.config, &cfg, &group)?;
        }
        for (partition, offset) in changes {
            self.store.put(name, &partition, offset);
        }
        self.store.flush()?;
        Ok(json!({"message": "The offsets for this connector have been altered successfully"}))
    }

    /// `PUT /connectors/{name}/pause` and `/resume` (resume also starts a STOPPED one).
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let mut conns = self.lock();
        let c = conns
            .get_mut(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        if c.target == State::Stopped {
            let cfg = c.cfg.clone();
            c.tasks = self.start_tasks(&cfg, &c.topics, paused)?;
        }
        c.target = if paused {
            State::Paused
        } else {
            State::Running
        };
        for t in &c.tasks {
            t.control.set_paused(paused);
        }
        Ok(())
    }

    /// `PUT /connectors/{name}/stop`: the tasks store their offsets and end.
    pub fn stop_connector(&self, name: &str) -> Result<()> {
        let tasks = {
            let mut conns = self.lock();
            let c = conns
                .get_mut(name)
                .ok_or_else(|| ConnectError::NotFound(name.into()))?;
            c.target = State::Stopped;
            std::mem::take(&mut c.tasks)
        };
        stop_all(tasks);
        Ok(())
    }

    /// `POST /connectors/{name}/restart`: new tasks from the same configuration.
    pub fn restart(&self, name: &str) -> Result<()> {
        let (tasks, cfg, target, topics) = {
            let mut conns = self.lock();
            let c = conns
                .get_mut(name)
                .ok_or_else(|| ConnectError::NotFound(name.into()))?;
            (
                std::mem::take(&mut c.tasks),
                c.cfg.clone(),
                c.target,
                c.topics.clone(),
            )
        };
        stop_all(tasks);
        if target != State::Stopped {
            let t = self.start_tasks(&cfg, &topics, target == State::Paused)?;
            if let Some(c) = self.lock().get_mut(name) {
                c.tasks = t;
            }
        }
        Ok(())
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`: a new task `id` in place of the old one.
    pub fn restart_task(&self, name: &str, id: u32) -> Result<()> {
        let mut conns = self.lock();
        let c = conns
            .get_mut(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        let Some(slot) = c.tasks.get_mut(id as usize) else {
            return Err(ConnectError::TaskNotFound(format!("{name}-{id}")));
        };
        // The old task ends (storing its positions) before the new one starts, so two
        // tasks never read the same partitions.
        slot.control.request_stop();
        if let Some(t) = slot.thread.take() {
            let _ = t.join();
        }
        *slot = self.start_task(&c.cfg, &c.topics, id, c.target == State::Paused)?;
        Ok(())
    }

    /// `DELETE /connectors/{name}`.
    pub fn delete(&self, name: &str) -> Result<()> {
        let c = self
            .lock()
            .remove(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        stop_all(c.tasks);
        tracing::info!("Deleted connector {name}");
        Ok(())
    }

    /// Whether any task has failed (with its trace), for start-up checks.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.lock()
            .values()
            .flat_map(|c| {
                c.tasks.iter().filter_map(|t| {
                    let (state, trace) = t.control.state();
                    (state == State::Failed)
                        .then(|| (c.cfg.name.clone(), trace.unwrap_or_default()))
                })
            })
            .collect()
    }

    /// Stops every task (each stores its offsets) and flushes the offset store.
    pub fn shutdown(&self) {
        let tasks: Vec<TaskHandle> = self
            .lock()
            .values_mut()
            .flat_map(|c| std::mem::take(&mut c.tasks))
            .collect();
        stop_all(tasks);
        if let Err(error) = self.store.flush() {
            tracing::error!(%error, "Cannot store offsets at shutdown.");
        }
    }
}

/// Asks every task to stop, then waits for each.
fn stop_all(tasks: Vec<TaskHandle>) {
    for t in &tasks {
        t.control.request_stop();
    }
    tasks.into_iter().for_each(TaskHandle::stop);
}

fn info_json(cfg: &ConnectorConfig) -> Value {
    let tasks: Vec<Value> = (0..task_count(cfg))
        .map(|id| json!({"connector": cfg.name, "task": id}))
        .collect();
    json!({
        "name": cfg.name,
        "config": cfg.raw,
        "tasks": tasks,
        "type": cfg.class.kind(),
    })
}

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
use crate::task::{State, TaskControl};

/// The version `GET /` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Connector {
    cfg: Arc<ConnectorConfig>,
    /// The connector's target state (RUNNING, PAUSED or STOPPED).
    target: State,
    task: Option<TaskHandle>,
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

    fn start_task(&self, cfg: &Arc<ConnectorConfig>, paused: bool) -> Result<TaskHandle> {
        let control = Arc::new(TaskControl::default());
        control.set_paused(paused);
        let thread_name = format!("connect-{}-0", cfg.name);
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
                );
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
        let task = match initial {
            State::Stopped => None,
            _ => Some(self.start_task(&cfg, initial == State::Paused)?),
        };
        tracing::info!("Created connector {}", cfg.name);
        let info = info_json(&cfg);
        conns.insert(
            cfg.name.clone(),
            Connector {
                cfg,
                target: initial,
                task,
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
        let Some(mut old) = old else {
            return Ok((true, self.create(props, State::Running)?));
        };
        if let Some(t) = old.task.take() {
            t.stop();
        }
        let task = match old.target {
            State::Stopped => None,
            target => Some(self.start_task(&cfg, target == State::Paused)?),
        };
        let info = info_json(&cfg);
        self.lock().insert(
            name.to_string(),
            Connector {
                cfg,
                target: old.target,
                task,
            },
        );
        Ok((false, info))
    }

    /// Connector names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// `GET /connectors/{name}`.
    pub fn info(&self, name: &str) -> Result<Value> {
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        Ok(info_json(&c.cfg))
    }

    /// `GET /connectors/{name}/config`.
    pub fn config_of(&self, name: &str) -> Result<Props> {
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        Ok(c.cfg.raw.clone())
    }

    /// `GET /connectors/{name}/status`.
    pub fn status(&self, name: &str) -> Result<Value> {
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        let tasks: Vec<Value> = c
            .task
            .iter()
            .map(|t| self.task_state_json(0, &t.control))
            .collect();
        Ok(json!({
            "name": c.cfg.name,
            "connector": {"state": c.target.as_str(), "worker_id": self.worker_id},
            "tasks": tasks,
            "type": c.cfg.class.kind(),
        }))
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
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        match (&c.task, id) {
            (Some(t), 0) => Ok(self.task_state_json(0, &t.control)),
            _ => Err(ConnectError::TaskNotFound(format!("{name}-{id}"))),
        }
    }

    /// `GET /connectors/{name}/tasks`.
    pub fn tasks(&self, name: &str) -> Result<Value> {
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        if c.target == State::Stopped {
            return Ok(json!([]));
        }
        let mut config = c.cfg.raw.clone();
        let task_class = match c.cfg.class {
            ConnectorClass::FileStreamSource => {
                "org.apache.kafka.connect.file.FileStreamSourceTask"
            }
            ConnectorClass::FileStreamSink => "org.apache.kafka.connect.file.FileStreamSinkTask",
        };
        config.insert("task.class".into(), task_class.into());
        Ok(json!([{"id": {"connector": name, "task": 0}, "config": config}]))
    }

    /// `GET /connectors/{name}/topics`.
    pub fn topics(&self, name: &str) -> Result<Value> {
        let conns = self.lock();
        let c = conns
            .get(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        let topics: Vec<String> = match c.cfg.class {
            ConnectorClass::FileStreamSource => vec![c.cfg.topic.clone()],
            ConnectorClass::FileStreamSink => c.cfg.topics.clone(),
        };
        Ok(json!({ name: {"topics": topics} }))
    }

    /// `GET /connectors/{name}/offsets`.
    pub fn offsets(&self, name: &str) -> Result<Value> {
        if !self.lock().contains_key(name) {
            return Err(ConnectError::NotFound(name.into()));
        }
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

    /// `DELETE /connectors/{name}/offsets` (connector must be STOPPED).
    pub fn reset_offsets(&self, name: &str) -> Result<Value> {
        {
            let conns = self.lock();
            let c = conns
                .get(name)
                .ok_or_else(|| ConnectError::NotFound(name.into()))?;
            if c.target != State::Stopped {
                return Err(ConnectError::NotStopped(name.into()));
            }
        }
        self.store.remove_connector(name);
        self.store.flush()?;
        Ok(json!({"message": "The offsets for this connector have been reset successfully"}))
    }

    /// `PUT /connectors/{name}/pause` and `/resume`.
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let mut conns = self.lock();
        let c = conns
            .get_mut(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        if !paused && c.target == State::Stopped {
            let cfg = c.cfg.clone();
            c.task = Some(self.start_task(&cfg, false)?);
        }
        c.target = if paused {
            State::Paused
        } else {
            State::Running
        };
        if let Some(t) = &c.task {
            t.control.set_paused(paused);
        }
        Ok(())
    }

    /// `PUT /connectors/{name}/stop`: the task stores its offsets and ends.
    pub fn stop_connector(&self, name: &str) -> Result<()> {
        let task = {
            let mut conns = self.lock();
            let c = conns
                .get_mut(name)
                .ok_or_else(|| ConnectError::NotFound(name.into()))?;
            c.target = State::Stopped;
            c.task.take()
        };
        if let Some(t) = task {
            t.stop();
        }
        Ok(())
    }

    /// `POST /connectors/{name}/restart` (and the task restart): a new task from the same
    /// configuration.
    pub fn restart(&self, name: &str) -> Result<()> {
        let (task, cfg, target) = {
            let mut conns = self.lock();
            let c = conns
                .get_mut(name)
                .ok_or_else(|| ConnectError::NotFound(name.into()))?;
            (c.task.take(), c.cfg.clone(), c.target)
        };
        if let Some(t) = task {
            t.stop();
        }
        if target != State::Stopped {
            let t = self.start_task(&cfg, target == State::Paused)?;
            if let Some(c) = self.lock().get_mut(name) {
                c.task = Some(t);
            }
        }
        Ok(())
    }

    /// `DELETE /connectors/{name}`.
    pub fn delete(&self, name: &str) -> Result<()> {
        let c = self
            .lock()
            .remove(name)
            .ok_or_else(|| ConnectError::NotFound(name.into()))?;
        if let Some(t) = c.task {
            t.stop();
        }
        tracing::info!("Deleted connector {name}");
        Ok(())
    }

    /// Whether any task has failed (with its trace), for start-up checks.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.lock()
            .values()
            .filter_map(|c| {
                let (state, trace) = c.task.as_ref()?.control.state();
                (state == State::Failed).then(|| (c.cfg.name.clone(), trace.unwrap_or_default()))
            })
            .collect()
    }

    /// Stops every task (each stores its offsets) and flushes the offset store.
    pub fn shutdown(&self) {
        let tasks: Vec<TaskHandle> = self
            .lock()
            .values_mut()
            .filter_map(|c| c.task.take())
            .collect();
        for t in &tasks {
            t.control.request_stop();
        }
        for t in tasks {
            t.stop();
        }
        if let Err(error) = self.store.flush() {
            tracing::error!(%error, "Cannot store offsets at shutdown.");
        }
    }
}

fn info_json(cfg: &ConnectorConfig) -> Value {
    json!({
        "name": cfg.name,
        "config": cfg.raw,
        "tasks": [{"connector": cfg.name, "task": 0}],
        "type": cfg.class.kind(),
    })
}

//! What a running task shares with the worker: stop/pause flags and its reported state.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A task or connector state, as the REST API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Unassigned,
    /// Working.
    Running,
    /// Paused by `PUT /connectors/{name}/pause`.
    Paused,
    /// Failed; see the trace.
    Failed,
    /// Being restarted.
    Restarting,
    /// Stopped by `PUT /connectors/{name}/stop` (connectors only).
    Stopped,
}

impl State {
    /// The REST name (`RUNNING`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
        }
    }
}

/// The topics a connector has used since it was created or since the last
/// `PUT /connectors/{name}/topics/reset` (Kafka's topic tracking, KIP-558).
#[derive(Debug, Default)]
pub struct ActiveTopics(Mutex<BTreeSet<String>>);

impl ActiveTopics {
    /// Records that `topic` was used (called once per batch of records, not per record).
    pub fn add(&self, topic: &str) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !s.contains(topic) {
            s.insert(topic.to_string());
        }
    }

    /// The topics, sorted.
    pub fn list(&self) -> Vec<String> {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.iter().cloned().collect()
    }

    /// Forgets every topic.
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Shared between a task thread and the worker.
#[derive(Debug)]
pub struct TaskControl {
    stop: AtomicBool,
    paused: AtomicBool,
    status: Mutex<(State, Option<String>)>,
    /// The connector's active topics (shared by its tasks, kept across restarts).
    pub topics: Arc<ActiveTopics>,
}

impl Default for TaskControl {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl TaskControl {
    /// A control for a new task of the connector whose active topics are `topics`.
    pub fn new(topics: Arc<ActiveTopics>) -> Self {
        Self {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            status: Mutex::new((State::Unassigned, None)),
            topics,
        }
    }

    /// Asks the task to stop (it stores its offsets first).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the task should stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Pauses or resumes the task.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(s.0, State::Running | State::Paused) {
            s.0 = if paused {
                State::Paused
            } else {
                State::Running
            };
        }
    }

    /// Whether the task is paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Sets the reported state.
    pub fn set_state(&self, state: State, trace: Option<String>) {
        let state = if state == State::Running && self.paused() {
            State::Paused
        } else {
            state
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = (state, trace);
    }

    /// The reported state and the failure trace, if any.
    pub fn state(&self) -> (State, Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sleeps up to `d` in short steps, returning early when asked to stop.
    pub fn sleep(&self, d: Duration) {
        let deadline = std::time::Instant::now() + d;
        while !self.stopping() {
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }
}

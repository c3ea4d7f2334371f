//! `FileStreamSource`: tails a file into a topic.
//!
//! Like Kafka's connector it starts at the beginning of the file or at its stored position,
//! waits for a file that does not exist yet (retrying every second), emits only complete
//! lines, and stores `{"position": <bytes>}` under `{"filename": "<file as configured>"}`.
//! Unlike Kafka's it counts positions in bytes (Kafka counts UTF-16 units but skips bytes on
//! resume), stores a position only once the broker acknowledged every record before it, and
//! follows rotation and truncation: when the path names a new file (another inode) the old
//! file is read to its end and the new one is read from its start; when the file shrinks
//! below the read position (truncation, copytruncate) reading restarts at 0. The stored
//! offset also carries the file's `inode`, so a restart after a rotation starts the new file
//! at 0 instead of skipping into it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use serde_json::{json, Value};

use crate::config::{ConnectorConfig, Props, WorkerConfig};
use crate::converter::Data;
use crate::error::{ConnectError, Result};
use crate::lines::LineSplitter;
use crate::offsets::OffsetStore;
use crate::task::{State, TaskControl};

/// How long an idle tail waits before looking at the file again.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Read size.
const CHUNK: usize = 256 * 1024;

/// The client settings for a source task's producer: Kafka Connect's producer settings
/// (`acks=all`, `max.in.flight.requests.per.connection=1` so retries keep the file's order;
/// Connect's endless delivery timeout is left at librdkafka's 300 s, after which the task
/// fails), `linger.ms=5` (the Java producer's default since
/// Kafka 4.0), no compression, delivery reports only for failures (the task stores a
/// position after flushing the producer, see [`FileSourceTask`]), then the worker's
/// `producer.*`, then the connector's `producer.override.*`.
pub fn producer_config(worker: &WorkerConfig, overrides: &Props) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &worker.bootstrap_servers)
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "5")
        .set("compression.type", "none")
        .set("delivery.report.only.error", "true")
        .set("client.id", "connect-worker-producer");
    for (k, v) in worker.producer.iter().chain(overrides.iter()) {
        c.set(k, v);
    }
    c
}

/// Records delivery failures (librdkafka reports only those: `delivery.report.only.error`).
#[derive(Default)]
struct AckContext {
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl AckContext {
    fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            if f.is_none() {
                *f = Some(format!("delivery to Kafka failed: {error}"));
            }
            self.failed.store(true, Ordering::Release);
        }
    }
}

/// The file source task.
pub struct FileSourceTask {
    cfg: Arc<ConnectorConfig>,
    worker: Arc<WorkerConfig>,
    store: Arc<OffsetStore>,
    control: Arc<TaskControl>,
}

/// The open file being tailed.
struct Tail {
    file: File,
    ino: u64,
    splitter: LineSplitter,
    /// File position of the next byte to read.
    read_pos: u64,
}

impl FileSourceTask {
    /// A task for `cfg`; it runs when [`run`](Self::run) is called on its own thread.
    pub fn new(
        cfg: Arc<ConnectorConfig>,
        worker: Arc<WorkerConfig>,
        store: Arc<OffsetStore>,
        control: Arc<TaskControl>,
    ) -> Self {
        Self {
            cfg,
            worker,
            store,
            control,
        }
    }

    /// Runs until stopped; a failure is reported as the task's FAILED state.
    pub fn run(self) {
        self.control.set_state(State::Running, None);
        if let Err(error) = self.run_inner() {
            tracing::error!(connector = %self.cfg.name, %error, "FileStreamSource task failed.");
            self.control
                .set_state(State::Failed, Some(error.to_string()));
        }
    }

    fn run_inner(&self) -> Result<()> {
        let producer: ThreadedProducer<AckContext> =
            producer_config(&self.worker, &self.cfg.producer_overrides)
                .create_with_context(AckContext::default())?;
        let Some(path) = self.cfg.file.clone() else {
            return self.run_stdin(&producer);
        };
        let partition = json!({"filename": self.cfg.raw.get("file").cloned().unwrap_or_default()});
        let mut tail: Option<Tail> = None;
        let mut warned_missing = false;
        let mut last_commit = Instant::now();
        let mut buf = vec![0u8; CHUNK];
        let mut payload = Vec::with_capacity(1024);
        let key = self.cfg.key_converter.from_connect(&Data::Null);
        while !self.control.stopping() {
            if let Some(f) = producer.context().failure() {
                return Err(ConnectError::Conversion(f));
            }
            if self.control.paused() {
                self.control.sleep(IDLE_POLL);
                continue;
            }
            let Some(t) = tail.as_mut() else {
                match self.open(&path, &partition)? {
                    Some(t) => {
                        tail = Some(t);
                        warned_missing = false;
                    }
                    None => {
                        if !warned_missing {
                            tracing::warn!(
                                "Couldn't find file {} for FileStreamSourceTask, sleeping to wait for it to be created",
                                path.display()
                            );
                            warned_missing = true;
                        }
                        self.control.sleep(Duration::from_secs(1));
                    }
                }
                continue;
            };
            let n = t.file.read(&mut buf).map_err(|source| ConnectError::Io {
                context: format!("reading {}", path.display()),
                source,
            })?;
            if n > 0 {
                t.read_pos += n as u64;
                t.splitter.push(&buf[..n]);
                let mut sent = false;
                while let Some((line, _)) = t.splitter.next_line() {
                    self.cfg.value_converter.encode_line(line, &mut payload);
                    self.send(&producer, &payload, key.as_deref())?;
                    sent = true;
                }
                if sent {
                    self.control.topics.add(&self.cfg.topic);
                }
                if last_commit.elapsed() >= self.worker.offset_flush_interval {
                    self.commit(&producer, &partition, t);
                    last_commit = Instant::now();
                }
                continue;
            }
            // At the end of the file: store progress, then look for rotation or truncation.
            if last_commit.elapsed() >= self.worker.offset_flush_interval {
                self.commit(&producer, &partition, t);
                last_commit = Instant::now();
            }
            match std::fs::metadata(&path) {
                Ok(m) if m.ino() != t.ino => {
                    tracing::info!(file = %path.display(), "File was rotated; reading the new file from its start.");
                    self.drain(&producer)?;
                    tail = None;
                    // The new file starts at 0: store that before opening it.
                    self.store.put(
                        &self.cfg.name,
                        &partition,
                        Some(json!({"position": 0, "inode": m.ino()})),
                    );
                    self.flush_store();
                    continue;
                }
                Ok(m) if m.len() < t.read_pos => {
                    tracing::info!(file = %path.display(), size = m.len(), position = t.read_pos, "File was truncated; reading again from its start.");
                    self.drain(&producer)?;
                    t.file
                        .seek(SeekFrom::Start(0))
                        .map_err(|source| ConnectError::Io {
                            context: format!("seeking {}", path.display()),
                            source,
                        })?;
                    t.read_pos = 0;
                    t.splitter = LineSplitter::new(0);
                    self.commit(&producer, &partition, t);
                    continue;
                }
                _ => {}
            }
            self.control.sleep(IDLE_POLL);
        }
        let _ = producer.flush(Duration::from_secs(30));
        if let Some(t) = &tail {
            self.commit(&producer, &partition, t);
        }
        Ok(())
    }

    /// Opens the file at its stored position (0 when none, when the stored inode differs or
    /// when the file is now shorter); `None` while it does not exist.
    fn open(&self, path: &PathBuf, partition: &Value) -> Result<Option<Tail>> {
        let io = |source| ConnectError::Io {
            context: format!("opening {}", path.display()),
            source,
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        let stored = self.store.get(&self.cfg.name, partition);
        let mut pos = stored
            .as_ref()
            .and_then(|v| v.get("position"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let stored_ino = stored
            .as_ref()
            .and_then(|v| v.get("inode"))
            .and_then(Value::as_u64);
        if stored_ino.is_some_and(|i| i != meta.ino()) || pos > meta.len() {
            tracing::info!(file = %path.display(), stored_position = pos, "The file is not the one the stored position belongs to; reading it from its start.");
            pos = 0;
        }
        file.seek(SeekFrom::Start(pos)).map_err(io)?;
        tracing::info!(file = %path.display(), position = pos, "Tailing file.");
        Ok(Some(Tail {
            file,
            ino: meta.ino(),
            splitter: LineSplitter::new(pos),
            read_pos: pos,
        }))
    }

    /// Hands one record to the producer (librdkafka copies the bytes), waiting while its
    /// queue is full.
    fn send(
        &self,
        producer: &ThreadedProducer<AckContext>,
        payload: &[u8],
        key: Option<&[u8]>,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8], ()> =
            BaseRecord::to(&self.cfg.topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Waits until every record sent is acknowledged.
    fn drain(&self, producer: &ThreadedProducer<AckContext>) -> Result<()> {
        producer.flush(Duration::from_secs(120))?;
        Ok(())
    }

    /// Stores the position after the last line sent, once the broker acknowledged every
    /// record (the producer is flushed first, for at most `offset.flush.timeout.ms`; this is
    /// how Kafka's `WorkerSourceTask` committed before KIP-618: wait for the outstanding
    /// records, then write the offsets). Nothing is stored after a delivery failure or
    /// when the flush times out (tried again at the next interval).
    fn commit(&self, producer: &ThreadedProducer<AckContext>, partition: &Value, t: &Tail) {
        if let Err(error) = producer.flush(self.worker.offset_flush_timeout) {
            tracing::warn!(connector = %self.cfg.name, %error, "Records not acknowledged within offset.flush.timeout.ms; the position is stored at the next commit.");
            return;
        }
        if producer.context().failure().is_some() {
            return;
        }
        self.store.put(
            &self.cfg.name,
            partition,
            Some(json!({"position": t.splitter.position(), "inode": t.ino})),
        );
        self.flush_store();
    }

    fn flush_store(&self) {
        if let Err(error) = self.store.flush() {
            tracing::error!(%error, "Cannot store source offsets.");
        }
    }

    /// stdin mode (no `file`): no offsets are tracked, as in Kafka.
    fn run_stdin(&self, producer: &ThreadedProducer<AckContext>) -> Result<()> {
        use std::io::BufRead;
        let stdin = std::io::stdin();
        let key = self.cfg.key_converter.from_connect(&Data::Null);
        let mut payload = Vec::new();
        let mut line = Vec::new();
        let mut input = stdin.lock();
        while !self.control.stopping() {
            line.clear();
            let n = input
                .read_until(b'\n', &mut line)
                .map_err(|source| ConnectError::Io {
                    context: "reading stdin".into(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            self.cfg.value_converter.encode_line(text, &mut payload);
            self.send(producer, &payload, key.as_deref())?;
            self.control.topics.add(&self.cfg.topic);
        }
        let _ = producer.flush(Duration::from_secs(30));
        Ok(())
    }
}

//! `FileStreamSink`: appends every record of its topics to a file, one line per record.
//!
//! The consumer belongs to group `connect-<name>` (Kafka's sink group id). Partitions are
//! assigned directly — with `tasks.max` tasks, each partition to one task ([`owner`]) — and
//! found again every few seconds, so topics created later (or matched later by
//! `topics.regex`) are picked up. A task starts each
//! partition at its position in the offset store, else at the group's committed offset
//! (when the cluster has a group coordinator), else at the beginning (Connect's
//! `auto.offset.reset=earliest`). Positions are stored — and committed to the group — only
//! after the file was flushed, so every record reaches the file at least once; the file is
//! also flushed whenever the consumer runs dry, so lines show up at once.
//!
//! Speed: a record costs no allocation (the converter writes the line straight into the
//! write buffer, JSON strings are unescaped without building a JSON tree, positions live in
//! a short list), the clock is read once per 1024 records, and whole-line buffers of 256 KiB
//! go to the file in one `write` each — which also keeps lines of several tasks appending to
//! one file from interleaving. The consumer keeps librdkafka's fetch defaults
//! (`fetch.min.bytes=1`, `max.partition.fetch.bytes=1 MiB`, `queued.min.messages=100000`),
//! which match the Java consumer's where both have the key; they were not the bottleneck.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::config::{ConnectorConfig, Props, WorkerConfig};
use crate::error::{ConnectError, Result};
use crate::offsets::OffsetStore;
use crate::task::{State, TaskControl};

/// The client settings for the consumer of sink task `task` (client id
/// `connector-consumer-<name>-<task>`, as Connect names it): Connect's defaults, then the
/// worker's `consumer.*`, then the connector's `consumer.override.*`.
pub fn consumer_config(
    worker: &WorkerConfig,
    name: &str,
    task: u32,
    overrides: &Props,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &worker.bootstrap_servers)
        .set("group.id", format!("connect-{name}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("client.id", format!("connector-consumer-{name}-{task}"))
        // librdkafka pauses a partition for `fetch.queue.backoff.ms` (1000 ms by default)
        // whenever a fetch leaves more than `queued.min.messages` records queued, so a sink
        // that writes faster idles for the rest of each second; the Java consumer has no
        // such pause. `consumer.fetch.queue.backoff.ms` still overrides it.
        .set("fetch.queue.backoff.ms", "10");
    for (k, v) in worker.consumer.iter().chain(overrides.iter()) {
        c.set(k, v);
    }
    c
}

/// Size of the sink's write buffer: lines are gathered and written in one `write` call.
const WRITE_BUFFER: usize = 256 * 1024;

/// Where records go: the file (or stdout when `file` is absent), through a buffer of whole
/// lines. Each buffer is written with one `write` call on a file opened in append mode, so
/// lines of several tasks appending to the same file never interleave mid-line.
pub struct SinkOutput {
    target: Target,
    buf: Vec<u8>,
}

enum Target {
    File(std::fs::File),
    Stdout(std::io::Stdout),
}

impl SinkOutput {
    /// Opens the sink's output (Kafka's error text when it cannot).
    pub fn open(cfg: &ConnectorConfig) -> Result<Self> {
        let target = match &cfg.file {
            None => Target::Stdout(std::io::stdout()),
            Some(path) => Target::File(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ConnectError::SinkFile {
                        path: path.clone(),
                        source,
                    })?,
            ),
        };
        Ok(Self {
            target,
            buf: Vec::with_capacity(WRITE_BUFFER + 4096),
        })
    }

    /// The buffer to append one whole line to (then call [`line_done`](Self::line_done)).
    fn line_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Ends the line just appended; writes the buffer out when it is full.
    fn line_done(&mut self) -> std::io::Result<()> {
        self.buf.push(b'\n');
        if self.buf.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out every buffered line.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut rest: &[u8] = &self.buf;
        while !rest.is_empty() {
            let n = match &mut self.target {
                Target::File(f) => f.write(rest),
                Target::Stdout(o) => {
                    let mut o = o.lock();
                    o.write_all(rest)
                        .and_then(|_| o.flush())
                        .map(|_| rest.len())
                }
            };
            match n {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        Ok(())
    }
}

/// The next offset to read of every assigned partition (`None`: from the beginning); a
/// short list searched linearly, so a record costs no allocation.
#[derive(Default)]
struct Positions(Vec<(String, i32, Option<i64>)>, Vec<bool>);

impl Positions {
    fn contains(&self, topic: &str, partition: i32) -> bool {
        self.0.iter().any(|(t, p, _)| t == topic && *p == partition)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records that `next` is the next offset to read of `topic`/`partition`.
    fn advance(&mut self, topic: &str, partition: i32, next: i64) {
        match self
            .0
            .iter()
            .position(|(t, p, _)| *p == partition && t == topic)
        {
            Some(i) => {
                self.0[i].2 = Some(next);
                self.1[i] = true;
            }
            None => {
                self.0.push((topic.to_string(), partition, Some(next)));
                self.1.push(true);
            }
        }
    }

    fn push(&mut self, topic: String, partition: i32, next: Option<i64>) {
        self.0.push((topic, partition, next));
        self.1.push(false);
    }

    /// The topics that received records since the last call.
    fn take_touched(&mut self, mut f: impl FnMut(&str)) {
        for (i, touched) in self.1.iter_mut().enumerate() {
            if std::mem::take(touched) {
                f(&self.0[i].0);
            }
        }
    }
}

/// The file sink task.
pub struct FileSinkTask {
    cfg: Arc<ConnectorConfig>,
    worker: Arc<WorkerConfig>,
    store: Arc<OffsetStore>,
    control: Arc<TaskControl>,
    output: SinkOutput,
    /// This task's id and the connector's task count: the task reads the partitions
    /// [`owner`] gives it.
    task: (u32, u32),
}

/// Which of `count` tasks reads `topic`/`partition`: partitions are dealt round-robin,
/// each topic starting at a place of its own (a stable hash of its name), so every task
/// gets a share even of several one-partition topics.
pub fn owner(topic: &str, partition: i32, count: u32) -> u32 {
    let h = topic.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    (h.wrapping_add(partition as u32)) % count.max(1)
}

fn partition_key(topic: &str, partition: i32) -> Value {
    json!({"kafka_partition": partition, "kafka_topic": topic})
}

impl FileSinkTask {
    /// A task for `cfg` writing to `output` (opened beforehand, so a bad path fails the
    /// connector's creation).
    pub fn new(
        cfg: Arc<ConnectorConfig>,
        worker: Arc<WorkerConfig>,
        store: Arc<OffsetStore>,
        control: Arc<TaskControl>,
        output: SinkOutput,
    ) -> Self {
        Self {
            cfg,
            worker,
            store,
            control,
            output,
            task: (0, 1),
        }
    }

    /// Makes this task number `id` of `count` (default: the only one).
    pub fn with_task_id(mut self, id: u32, count: u32) -> Self {
        self.task = (id, count);
        self
    }

    /// Runs until stopped; a failure is reported as the task's FAILED state.
    pub fn run(mut self) {
        self.control.set_state(State::Running, None);
        if let Err(error) = self.run_inner() {
            tracing::error!(connector = %self.cfg.name, %error, "FileStreamSink task failed.");
            self.control
                .set_state(State::Failed, Some(error.to_string()));
        }
    }

    fn run_inner(&mut self) -> Result<()> {
        let consumer: BaseConsumer = consumer_config(
            &self.worker,
            &self.cfg.name,
            self.task.0,
            &self.cfg.consumer_overrides,
        )
        .create()?;
        let groups = groups_supported(&consumer);
        if !groups {
            tracing::info!(connector = %self.cfg.name, "The cluster has no group coordinator; sink positions are kept in the offset file only.");
        }
        // (topic, partition) → next offset to read (None: start at the beginning).
        let mut positions = Positions::default();
        let mut next_discovery = Instant::now();
        let mut last_commit = Instant::now();
        let mut unflushed = false;
        let mut result = Ok(());
        'run: while !self.control.stopping() {
            if Instant::now() >= next_discovery {
                if let Err(error) = self.discover(&consumer, groups, &mut positions) {
                    tracing::warn!(%error, "Cannot read the topic metadata; retrying.");
                }
                let wait = if positions.is_empty() { 500 } else { 3000 };
                next_discovery = Instant::now() + Duration::from_millis(wait);
            }
            if self.control.paused() || positions.is_empty() {
                self.control.sleep(Duration::from_millis(100));
                continue;
            }
            // Up to 1024 records between two looks at the clock and the flags.
            for _ in 0..1024 {
                // A non-blocking poll first: librdkafka reads the clock less for it.
                let polled = match consumer.poll(Duration::ZERO) {
                    None => consumer.poll(Duration::from_millis(100)),
                    some => some,
                };
                match polled {
                    Some(Ok(m)) => {
                        let line = self.output.line_buffer();
                        let mark = line.len();
                        if let Err(e) = self.cfg.value_converter.write_sink_line(m.payload(), line)
                        {
                            line.truncate(mark);
                            result = Err(e);
                            break 'run;
                        }
                        if let Err(source) = self.output.line_done() {
                            result = Err(ConnectError::Io {
                                context: "writing the sink file".into(),
                                source,
                            });
                            break 'run;
                        }
                        unflushed = true;
                        positions.advance(m.topic(), m.partition(), m.offset() + 1);
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, "Consumer error.");
                    }
                    None => {
                        if unflushed {
                            self.flush_output()?;
                            unflushed = false;
                        }
                        break;
                    }
                }
            }
            let topics = &self.control.topics;
            positions.take_touched(|t| topics.add(t));
            if last_commit.elapsed() >= self.worker.offset_flush_interval {
                self.commit(&consumer, groups, &positions)?;
                unflushed = false;
                last_commit = Instant::now();
            }
        }
        // Store what reached the file, even after a failure.
        self.commit(&consumer, groups, &positions)?;
        result
    }

    fn flush_output(&mut self) -> Result<()> {
        self.output.flush().map_err(|source| ConnectError::Io {
            context: "flushing the sink file".into(),
            source,
        })
    }

    /// Flushes the file, then stores the positions (and commits them to the group).
    fn commit(
        &mut self,
        consumer: &BaseConsumer,
        groups: bool,
        positions: &Positions,
    ) -> Result<()> {
        self.flush_output()?;
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in &positions.0 {
            if let Some(next) = next {
                self.store.put(
                    &self.cfg.name,
                    &partition_key(topic, *partition),
                    Some(json!({"kafka_offset": next})),
                );
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
            }
        }
        if let Err(error) = self.store.flush() {
            tracing::error!(%error, "Cannot store sink offsets.");
        }
        if groups && tpl.count() > 0 {
            if let Err(error) = consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!(%error, "Group commit failed.");
            }
        }
        Ok(())
    }

    /// Finds the partitions of the sink's topics and assigns any new ones.
    fn discover(
        &self,
        consumer: &BaseConsumer,
        groups: bool,
        positions: &mut Positions,
    ) -> Result<()> {
        let md = consumer.fetch_metadata(None, Duration::from_secs(5))?;
        let mut new = Vec::new();
        for t in md.topics() {
            if !wanted_topic(&self.cfg, t.name()) || t.error().is_some() {
                continue;
            }
            for p in t.partitions() {
                if owner(t.name(), p.id(), self.task.1) != self.task.0 {
                    continue;
                }
                let key = (t.name().to_string(), p.id());
                if p.error().is_none() && !positions.contains(&key.0, key.1) {
                    new.push(key);
                }
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let mut committed: BTreeMap<(String, i32), i64> = BTreeMap::new();
        if groups {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in &new {
                tpl.add_partition(t, *p);
            }
            if let Ok(c) = consumer.committed_offsets(tpl, Duration::from_secs(5)) {
                for e in c.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        committed.insert((e.topic().to_string(), e.partition()), o);
                    }
                }
            }
        }
        for key in new {
            let stored = self
                .store
                .get(&self.cfg.name, &partition_key(&key.0, key.1))
                .and_then(|v| v.get("kafka_offset").and_then(Value::as_i64));
            let start = stored.or_else(|| committed.get(&key).copied());
            tracing::info!(connector = %self.cfg.name, topic = %key.0, partition = key.1, offset = ?start, "Assigned partition.");
            positions.push(key.0, key.1, start);
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, next) in &positions.0 {
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(t, *p, offset)?;
        }
        consumer.assign(&tpl)?;
        Ok(())
    }
}

/// Whether the cluster has a group coordinator (answers ListGroups).
fn groups_supported(consumer: &BaseConsumer) -> bool {
    match consumer.fetch_group_list(None, Duration::from_secs(5)) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::UnsupportedFeature)
        ),
    }
}

/// Writes a sink connector's positions to its consumer group `connect-<name>` (the
/// connector is stopped, so the group has no members): `Some(offset)` commits that offset,
/// `None` the partition's low watermark (where a consumer without a committed offset
/// starts, `auto.offset.reset=earliest`). Does nothing when the cluster has no group
/// coordinator. Blocking.
pub fn write_group_offsets(
    worker: &WorkerConfig,
    cfg: &ConnectorConfig,
    offsets: &[(String, i32, Option<i64>)],
) -> Result<()> {
    let consumer: BaseConsumer =
        consumer_config(worker, &cfg.name, 0, &cfg.consumer_overrides).create()?;
    if !groups_supported(&consumer) {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        let offset = match offset {
            Some(o) => *o,
            None => {
                consumer
                    .fetch_watermarks(topic, *partition, Duration::from_secs(10))?
                    .0
            }
        };
        tpl.add_partition_offset(topic, *partition, Offset::Offset(offset))?;
    }
    if tpl.count() > 0 {
        consumer.commit(&tpl, CommitMode::Sync)?;
    }
    Ok(())
}

/// Every partition of the sink's topics (`topics`, or those `topics.regex` matches). Blocking.
pub fn sink_partitions(worker: &WorkerConfig, cfg: &ConnectorConfig) -> Result<Vec<(String, i32)>> {
    let consumer: BaseConsumer =
        consumer_config(worker, &cfg.name, 0, &cfg.consumer_overrides).create()?;
    let md = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    let mut out = Vec::new();
    for t in md.topics() {
        if t.error().is_none() && wanted_topic(cfg, t.name()) {
            out.extend(
                t.partitions()
                    .iter()
                    .map(|p| (t.name().to_string(), p.id())),
            );
        }
    }
    Ok(out)
}

/// Whether the sink reads `topic`.
fn wanted_topic(cfg: &ConnectorConfig, topic: &str) -> bool {
    cfg.topics.iter().any(|n| n == topic)
        || cfg
            .topics_regex
            .as_ref()
            .is_some_and(|r| r.is_match(topic) && !topic.starts_with("__"))
}

/// The offset-store key of a sink partition.
pub fn sink_partition_key(topic: &str, partition: i32) -> Value {
    partition_key(topic, partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_has_its_own_client_id_and_overrides_win() {
        let mut raw = Props::new();
        raw.insert("offset.storage.file.filename".into(), "/tmp/offsets".into());
        raw.insert("consumer.fetch.min.bytes".into(), "7".into());
        let worker = WorkerConfig::from_props(raw).unwrap();
        let c = consumer_config(&worker, "local-file-sink", 2, &Props::new());
        assert_eq!(
            c.get("client.id"),
            Some("connector-consumer-local-file-sink-2")
        );
        assert_eq!(c.get("group.id"), Some("connect-local-file-sink"));
        assert_eq!(c.get("fetch.min.bytes"), Some("7"));
        let overrides = Props::from([("client.id".to_string(), "mine".to_string())]);
        let c = consumer_config(&worker, "local-file-sink", 0, &overrides);
        assert_eq!(c.get("client.id"), Some("mine"));
    }
}

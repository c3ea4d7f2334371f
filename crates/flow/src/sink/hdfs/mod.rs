//! `hdfs`: time-bucketed files in HDFS (native or WebHDFS), S3 or on the local disk (Flume's
//! `HDFSEventSink`); where files go: [`storage`].
//!
//! Each event is put in a bucket: its `hdfs.path` and `hdfs.filePrefix` with escapes resolved
//! ([`bucket_path`]). A bucket writes one file at a time, named
//! `<path>/<inUsePrefix><prefix>.<N><suffix><inUseSuffix>` while open and renamed to
//! `<path>/<prefix>.<N><suffix>` on close; N starts at the clock in ms when the bucket is
//! created, +1 before each open. Files roll by `rollCount`/`rollSize` (checked before each
//! event, so a file gets exactly `rollCount` events), `rollInterval` (from open) and
//! `idleTimeout`; at most `maxOpenFiles` buckets stay open (least recently used closed).
//!
//! ## One transaction
//!
//! Take up to `batchSize` events, encode each into its bucket's file ([`format`](mod@format)) in memory,
//! then write and flush (`hflush`) every touched file, each call bounded by `callTimeout`;
//! only then commit the take. Files rolled by count/size during the batch are closed after
//! the commit.
//!
//! ## Failures (better than Flume)
//!
//! * A failed write rolls the take back (nothing committed is lost) and marks every file the
//!   batch touched for repair: before anything else, the sink cuts each back to the length it
//!   had at the last commit and closes/renames it, so the retried batch is not duplicated.
//!   Repairs are retried (runner back-off) until the store answers again.
//! * A failed close/rename is retried every `retryInterval` seconds, `closeTries` times
//!   (0 = until it works).
//! * At start, in-use files left under the literal part of `hdfs.path` by a crash are closed
//!   (HDFS lease recovered) and renamed to their final names.
//! * An event without a usable `timestamp` header is logged once per 10 s with its headers;
//!   `hdfs.missingTimestampPolicy` picks Flume's endless retry, a dead-letter path, or the
//!   local clock.
//! * Roll settings that make tiny files are reported at start.

pub mod bucket_path;
pub mod config;
pub mod format;
pub mod storage;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{HdfsConfig, MissingTimestamp};

use self::bucket_path::{EscapeError, EscapePattern, EventTime};
use self::format::Encoder;
use self::storage::{OutputFile, Storage};
use super::{BoxFuture, Sink, Status};
use crate::channel::MemoryChannel;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::monitoring::{now_ms, CounterGroup, SINK_COUNTERS};

/// Most in-use files examined at start for crash leftovers.
const RECOVERY_SCAN_LIMIT: usize = 100_000;

impl HdfsConfig {
    /// Resolves the store and creates the sink (leftover in-use files are handled on the
    /// first `process()`, so a store that is down at start only delays the sink).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> Result<HdfsSink> {
        let loc = storage::locate(&self.path);
        let store = storage::open(&loc).map_err(|m| FlowError::Start {
            component: format!("sink {name}"),
            message: format!("hdfs.path {}", self.path),
            source: io::Error::other(m),
        })?;
        Ok(self.build_with_store(name, channel, store))
    }

    /// Creates the sink over a given store (tests use one that fails on demand).
    pub fn build_with_store(
        self,
        name: &str,
        channel: Arc<MemoryChannel>,
        store: Arc<dyn Storage>,
    ) -> HdfsSink {
        let loc = storage::locate(&self.path);
        let dead = storage::locate(&self.dead_letter_path);
        let parse = |p: &str| EscapePattern::parse(p).expect("validated in from_context");
        for w in &self.warnings {
            tracing::warn!(sink = name, "{w}");
        }
        tracing::info!(sink = name, store = %store.describe(), path = %loc.path, "HDFS sink configured.");
        HdfsSink {
            name: name.to_string(),
            channel,
            store,
            path: parse(&loc.path),
            prefix: parse(&self.file_prefix),
            dead_letter: if dead.scheme == loc.scheme {
                parse(&dead.path)
            } else {
                parse(&self.dead_letter_path)
            },
            root: {
                let lit = parse(&loc.path).literal_prefix().to_string();
                if parse(&loc.path).is_literal() {
                    lit
                } else {
                    match lit.rfind('/') {
                        Some(0) => "/".to_string(),
                        Some(i) => lit[..i].to_string(),
                        None => String::new(),
                    }
                }
            },
            config: self,
            buckets: HashMap::new(),
            use_clock: 0,
            last_counter: 0,
            repairs: Vec::new(),
            closes: Vec::new(),
            recovered: false,
            missing_ts: RateLimit::default(),
            last_key: None,
            counter: Arc::new(CounterGroup::new("SINK", name, SINK_COUNTERS)),
        }
    }
}

/// An open (or about to be created) file of a bucket.
struct OpenFile {
    tmp_path: String,
    final_path: String,
    file: Option<Box<dyn OutputFile>>,
    header: Vec<u8>,
    encoder: Encoder,
    events: u64,
    body_bytes: u64,
    opened: Instant,
    /// Bytes in the file at the last commit.
    committed_len: u64,
    committed_sync: u64,
    /// Has events of the current batch.
    dirty: bool,
}

/// One bucket: a directory + prefix, writing one file at a time.
struct BucketWriter {
    dir: String,
    prefix: String,
    counter: i64,
    file: Option<OpenFile>,
    last_write: Instant,
    last_used: u64,
}

/// A file whose last batch failed: cut back to `len`, then closed and renamed.
struct Repair {
    file: Option<Box<dyn OutputFile>>,
    tmp_path: String,
    final_path: String,
    len: u64,
}

/// A close/rename that failed and waits for its next try.
struct PendingClose {
    tmp_path: String,
    final_path: String,
    tries: u32,
    next: Instant,
}

#[derive(Default)]
struct RateLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// True when a message may be logged now; counts the ones that may not.
    fn allow(&mut self, every: Duration) -> Option<u64> {
        match self.last {
            Some(t) if t.elapsed() < every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(Instant::now());
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// A running `hdfs` sink.
pub struct HdfsSink {
    name: String,
    channel: Arc<MemoryChannel>,
    config: HdfsConfig,
    store: Arc<dyn Storage>,
    path: EscapePattern,
    prefix: EscapePattern,
    dead_letter: EscapePattern,
    /// The literal directory above every bucket (scanned for crash leftovers).
    root: String,
    buckets: HashMap<String, BucketWriter>,
    use_clock: u64,
    /// The highest file counter handed out, so a bucket opened again within the same
    /// millisecond (after a failed batch or an idle close) never reuses a file name.
    last_counter: i64,
    repairs: Vec<Repair>,
    closes: Vec<PendingClose>,
    recovered: bool,
    missing_ts: RateLimit,
    /// The last event time and the bucket key it gave (time-only patterns).
    last_key: Option<(i64, String, String)>,
    counter: Arc<CounterGroup>,
}

async fn timed<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    if limit.is_zero() {
        return f.await;
    }
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{what} took longer than hdfs.callTimeout ({} ms)",
                limit.as_millis()
            ),
        )),
    }
}

impl HdfsSink {
    fn io_error(&self, message: impl Into<String>, source: io::Error) -> FlowError {
        FlowError::Io {
            component: format!("sink {}", self.name),
            message: message.into(),
            source,
        }
    }

    /// Renames in-use files that a previous run left behind.
    async fn recover_leftovers(&mut self) -> Result<()> {
        let (pre, suf) = (&self.config.in_use_prefix, &self.config.in_use_suffix);
        if pre.is_empty() && suf.is_empty() {
            return Ok(());
        }
        let prefix_lit = self.prefix.literal_prefix().to_string();
        let mut roots = vec![self.root.clone()];
        if self.config.missing_timestamp == MissingTimestamp::DeadLetter {
            roots.push(self.dead_letter.literal_prefix().to_string());
        }
        for root in roots {
            if root.is_empty() {
                continue;
            }
            let files = timed(
                self.config.call_timeout,
                "listing",
                self.store.list_files(&root, RECOVERY_SCAN_LIMIT),
            )
            .await
            .map_err(|e| self.io_error(format!("listing {root} for leftover in-use files"), e))?;
            for f in files {
                let (dir, base) = match f.rfind('/') {
                    Some(i) => (&f[..=i], &f[i + 1..]),
                    None => ("", f.as_str()),
                };
                let Some(stem) = base
                    .strip_prefix(pre.as_str())
                    .and_then(|b| b.strip_suffix(suf.as_str()))
                else {
                    continue;
                };
                if !stem.starts_with(&prefix_lit) || stem.is_empty() {
                    continue;
                }
                let to = format!("{dir}{stem}");
                tracing::warn!(sink = %self.name, from = %f, to = %to, "Closing an in-use file left by a previous run.");
                let r = async {
                    // Recover the lease (HDFS) without cutting anything.
                    self.store.truncate(&f, u64::MAX).await?;
                    self.store.rename(&f, &to).await
                };
                timed(self.config.call_timeout, "recovery", r)
                    .await
                    .map_err(|e| self.io_error(format!("renaming leftover {f}"), e))?;
            }
        }
        Ok(())
    }

    /// Cuts failed files back to their committed length and closes them.
    async fn run_repairs(&mut self) -> Result<()> {
        while let Some(mut r) = self.repairs.pop() {
            if let Some(f) = r.file.take() {
                let _ = timed(self.config.call_timeout, "close", f.close()).await;
            }
            let store = self.store.clone();
            let res = timed(
                self.config.call_timeout.max(Duration::from_secs(60)),
                "repair",
                async {
                    match store.len(&r.tmp_path).await? {
                        None => Ok(()),
                        Some(_) if r.len == 0 => Ok(()),
                        Some(_) => {
                            store.truncate(&r.tmp_path, r.len).await?;
                            store.rename(&r.tmp_path, &r.final_path).await
                        }
                    }
                },
            )
            .await;
            if let Err(e) = res {
                let err =
                    self.io_error(format!("repairing {} after a failed write", r.tmp_path), e);
                self.repairs.push(r);
                return Err(err);
            }
            // A file that never got a committed byte is removed rather than kept empty.
            if r.len == 0 {
                let _ = self.store.truncate(&r.tmp_path, 0).await;
                if let Ok(Some(_)) = self.store.len(&r.tmp_path).await {
                    let _ = self.store.rename(&r.tmp_path, &r.final_path).await;
                }
            }
            tracing::info!(sink = %self.name, file = %r.final_path, len = r.len, "Closed a file after a failed write, at its committed length.");
        }
        Ok(())
    }

    /// Closes the file and renames it; a failure is queued for retries.
    async fn close_file(&mut self, mut f: OpenFile) {
        let Some(file) = f.file.take() else {
            return; // never created: nothing written
        };
        let store = self.store.clone();
        let r = timed(self.config.call_timeout, "close", async {
            file.close().await?;
            if f.tmp_path != f.final_path {
                store.rename(&f.tmp_path, &f.final_path).await?;
            }
            Ok(())
        })
        .await;
        self.counter.add("ConnectionClosedCount", 1);
        if let Err(error) = r {
            tracing::warn!(sink = %self.name, %error, file = %f.tmp_path, "Closing the file failed; will retry.");
            self.closes.push(PendingClose {
                tmp_path: f.tmp_path,
                final_path: f.final_path,
                tries: 1,
                next: Instant::now() + self.config.retry_interval,
            });
        }
    }

    async fn retry_closes(&mut self, force: bool) {
        let now = Instant::now();
        let mut keep = Vec::new();
        for mut c in std::mem::take(&mut self.closes) {
            if !force && c.next > now {
                keep.push(c);
                continue;
            }
            let store = self.store.clone();
            let r = timed(self.config.call_timeout, "rename", async {
                store.truncate(&c.tmp_path, u64::MAX).await?;
                store.rename(&c.tmp_path, &c.final_path).await
            })
            .await;
            match r {
                Ok(()) => {}
                Err(error) => {
                    c.tries += 1;
                    if self.config.close_tries != 0 && c.tries >= self.config.close_tries {
                        tracing::error!(sink = %self.name, %error, file = %c.tmp_path, tries = c.tries, "Giving up closing the file (hdfs.closeTries reached).");
                    } else {
                        c.next = now + self.config.retry_interval;
                        keep.push(c);
                    }
                }
            }
        }
        self.closes.extend(keep);
    }

    /// Closes buckets whose rollInterval or idleTimeout has passed (they are discarded:
    /// the next event starts a new bucket with a new counter, as in Flume).
    async fn close_expired(&mut self) {
        let (ri, it) = (self.config.roll_interval, self.config.idle_timeout);
        if ri.is_zero() && it.is_zero() {
            return;
        }
        let expired: Vec<String> = self
            .buckets
            .iter()
            .filter(|(_, b)| {
                let by_roll =
                    !ri.is_zero() && b.file.as_ref().is_some_and(|f| f.opened.elapsed() >= ri);
                let by_idle = !it.is_zero() && b.last_write.elapsed() >= it;
                by_roll || by_idle
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let Some(mut b) = self.buckets.remove(&k) {
                if let Some(f) = b.file.take() {
                    self.close_file(f).await;
                }
            }
        }
    }

    fn log_missing_timestamp(&mut self, e: &Event, err: &EscapeError) {
        if let Some(suppressed) = self.missing_ts.allow(Duration::from_secs(10)) {
            let headers = crate::event::headers_to_string(&e.headers);
            let policy = match self.config.missing_timestamp {
                MissingTimestamp::Retry => "the batch is rolled back and retried (hdfs.missingTimestampPolicy = retry); the sink cannot progress until the event gets a timestamp",
                MissingTimestamp::DeadLetter => "the event goes to hdfs.deadLetterPath",
                MissingTimestamp::LocalTime => "the event is bucketed by the local clock",
            };
            tracing::error!(sink = %self.name, %headers, suppressed, "{err}; {policy}.");
        }
    }

    /// The bucket key (`dir/prefix`) of an event, or what to do instead.
    fn bucket_of(
        &mut self,
        e: &Event,
        now: i64,
    ) -> std::result::Result<(String, String, i64), EscapeError> {
        let needs_time = self.path.needs_time() || self.prefix.needs_time();
        let ts_key = || -> i64 {
            e.headers
                .get("timestamp")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(now)
        };
        if !needs_time {
            let mut dir = String::new();
            self.path.format(&e.headers, None, &mut dir)?;
            let mut prefix = String::new();
            self.prefix.format(&e.headers, None, &mut prefix)?;
            return Ok((dir, prefix, ts_key()));
        }
        let time = match self.config.time.resolve(&e.headers, now) {
            Ok(t) => t,
            Err(err) => {
                self.log_missing_timestamp(e, &err);
                match self.config.missing_timestamp {
                    MissingTimestamp::Retry => return Err(err),
                    MissingTimestamp::LocalTime => EventTime {
                        raw: now.to_string(),
                        zoned: self.config.time.zoned(now),
                    },
                    MissingTimestamp::DeadLetter => {
                        let mut dir = String::new();
                        self.dead_letter.format(&e.headers, None, &mut dir)?;
                        let prefix = if self.prefix.needs_time() {
                            "FlumeData".to_string()
                        } else {
                            let mut p = String::new();
                            self.prefix.format(&e.headers, None, &mut p)?;
                            p
                        };
                        return Ok((dir, prefix, now));
                    }
                }
            }
        };
        let key_ms = if self.config.time.use_local_time {
            now
        } else {
            time.raw.trim().parse().unwrap_or(now)
        };
        let mut dir = String::new();
        self.path.format(&e.headers, Some(&time), &mut dir)?;
        let mut prefix = String::new();
        self.prefix.format(&e.headers, Some(&time), &mut prefix)?;
        Ok((dir, prefix, key_ms))
    }

    fn new_file(&mut self, b: &mut BucketWriter) -> OpenFile {
        b.counter = (b.counter + 1).max(self.last_counter + 1);
        self.last_counter = b.counter;
        let c = &self.config;
        let sep = if b.dir.ends_with('/') || b.dir.is_empty() {
            ""
        } else {
            "/"
        };
        let name = format!("{}.{}{}", b.prefix, b.counter, c.file_suffix);
        let final_path = format!("{}{sep}{name}", b.dir);
        let tmp_path = format!("{}{sep}{}{name}{}", b.dir, c.in_use_prefix, c.in_use_suffix);
        let mut encoder = Encoder::new(&c.format);
        let header = encoder.header();
        OpenFile {
            tmp_path,
            final_path,
            file: None,
            header,
            encoder,
            events: 0,
            body_bytes: 0,
            opened: Instant::now(),
            committed_len: 0,
            committed_sync: 0,
            dirty: false,
        }
    }

    fn should_rotate(&self, f: &OpenFile) -> bool {
        (self.config.roll_count > 0 && f.events >= self.config.roll_count)
            || (self.config.roll_size > 0 && f.body_bytes >= self.config.roll_size)
    }

    /// Encodes a run of consecutive events of one bucket; files rolled by count/size go to
    /// `rolled`.
    async fn append_run(
        &mut self,
        key: &(String, String),
        events: &[Event],
        keys: &[(usize, i64)],
        rolled: &mut Vec<OpenFile>,
        touched: &mut Vec<String>,
    ) {
        self.use_clock += 1;
        let k = format!("{}/{}", key.0, key.1);
        if !self.buckets.contains_key(&k) {
            if self.buckets.len() >= self.config.max_open_files {
                // Close the least recently used bucket that has nothing pending.
                let victim = self
                    .buckets
                    .iter()
                    .filter(|(_, b)| !b.file.as_ref().is_some_and(|f| f.dirty))
                    .min_by_key(|(_, b)| b.last_used)
                    .map(|(k, _)| k.clone());
                if let Some(v) = victim {
                    if let Some(mut b) = self.buckets.remove(&v) {
                        if let Some(f) = b.file.take() {
                            self.close_file(f).await;
                        }
                    }
                }
            }
            self.buckets.insert(
                k.clone(),
                BucketWriter {
                    dir: key.0.clone(),
                    prefix: key.1.clone(),
                    counter: now_ms(),
                    file: None,
                    last_write: Instant::now(),
                    last_used: 0,
                },
            );
        }
        let mut b = self.buckets.remove(&k).expect("inserted above");
        b.last_used = self.use_clock;
        for (e, (_, ts)) in events.iter().zip(keys) {
            if b.file.as_ref().is_some_and(|f| self.should_rotate(f)) {
                rolled.push(b.file.take().expect("checked"));
            }
            if b.file.is_none() {
                b.file = Some(self.new_file(&mut b));
            }
            let f = b.file.as_mut().expect("opened above");
            f.encoder.append(e, *ts);
            f.events += 1;
            f.body_bytes += e.body.len() as u64;
            if !f.dirty {
                f.dirty = true;
                if !touched.contains(&k) {
                    touched.push(k.clone());
                }
            }
        }
        self.buckets.insert(k, b);
    }

    /// Writes one file's batch bytes (creating the file first if needed).
    async fn flush_file(
        store: &Arc<dyn Storage>,
        limit: Duration,
        f: &mut OpenFile,
    ) -> io::Result<bool> {
        let data = f.encoder.finish_batch()?;
        let mut created = false;
        if f.file.is_none() {
            let file = timed(limit, "create", store.create(&f.tmp_path)).await?;
            f.file = Some(file);
            created = true;
        }
        let n = data.len();
        let bytes = if f.header.is_empty() {
            data
        } else {
            let mut b = std::mem::take(&mut f.header);
            b.extend_from_slice(&data);
            b
        };
        if !bytes.is_empty() {
            let file = f.file.as_mut().expect("created above");
            timed(limit, "write", file.write(bytes)).await?;
        }
        // The header was counted when it was made.
        f.encoder.committed(n);
        Ok(created)
    }

    /// After a failed batch: every touched file goes to repair at its committed length.
    fn fail_batch(&mut self, touched: &[String], rolled: Vec<OpenFile>) {
        let mut failed: Vec<OpenFile> = rolled;
        for k in touched {
            if let Some(mut b) = self.buckets.remove(k) {
                if let Some(f) = b.file.take() {
                    failed.push(f);
                }
            }
        }
        for f in failed {
            if f.file.is_none() && f.committed_len == 0 {
                continue; // never created
            }
            self.repairs.push(Repair {
                file: f.file,
                tmp_path: f.tmp_path,
                final_path: f.final_path,
                len: f.committed_len,
            });
        }
    }

    async fn do_process(&mut self) -> Result<Status> {
        if !self.repairs.is_empty() {
            self.run_repairs().await?;
        }
        if !self.recovered {
            self.recover_leftovers().await?;
            self.recovered = true;
        }
        if !self.closes.is_empty() {
            self.retry_closes(false).await;
        }
        self.close_expired().await;

        let channel = self.channel.clone();
        let mut tx = channel.transaction();
        let n = tx.take_batch(self.config.batch_size).await?;
        self.counter.add("EventDrainAttemptCount", n as i64);
        let mut rolled = Vec::new();
        let mut touched = Vec::new();
        let now = now_ms();
        // Resolve every bucket first: an event that cannot be placed fails the batch before
        // anything is written.
        let time_only = !self.path.needs_headers() && !self.prefix.needs_headers();
        let local = self.config.time.use_local_time;
        // Distinct buckets of this batch, and per event its bucket index and key timestamp.
        let mut uniq: Vec<(String, String)> = Vec::new();
        let mut keys: Vec<(usize, i64)> = Vec::with_capacity(n);
        for e in tx.taken() {
            // Fast path: consecutive events with the same time share their bucket.
            let t = if local {
                Some(now)
            } else {
                e.headers
                    .get("timestamp")
                    .and_then(|r| r.parse::<i64>().ok())
            };
            let hit = match (&self.last_key, t) {
                (Some((last, _, _)), Some(t)) => time_only && *last == t,
                _ => false,
            };
            let (dir, prefix, ts) = if hit {
                let (last, d, p) = self.last_key.as_ref().expect("hit");
                if let Some(&(i, _)) = keys.last() {
                    if uniq[i].0 == *d && uniq[i].1 == *p {
                        keys.push((i, *last));
                        continue;
                    }
                }
                (d.clone(), p.clone(), *last)
            } else {
                match self.bucket_of(e, now) {
                    Ok(x) => {
                        if time_only && t == Some(x.2) {
                            self.last_key = Some((x.2, x.0.clone(), x.1.clone()));
                        }
                        x
                    }
                    Err(err) => {
                        self.counter.add("EventWriteFail", 1);
                        return Err(FlowError::Delivery {
                            sink: self.name.clone(),
                            message: err.to_string(),
                        }); // tx rolls back
                    }
                }
            };
            let idx = match keys.last() {
                Some(&(i, _)) if uniq[i].0 == dir && uniq[i].1 == prefix => i,
                _ => {
                    uniq.push((dir, prefix));
                    uniq.len() - 1
                }
            };
            keys.push((idx, ts));
        }
        let events = tx.taken();
        let mut i = 0;
        while i < events.len() {
            let idx = keys[i].0;
            let mut j = i + 1;
            while j < events.len() && keys[j].0 == idx {
                j += 1;
            }
            self.append_run(
                &uniq[idx],
                &events[i..j],
                &keys[i..j],
                &mut rolled,
                &mut touched,
            )
            .await;
            i = j;
        }
        // Write and flush every touched file, the rolled ones first.
        let limit = self.config.call_timeout;
        let store = self.store.clone();
        let mut result: io::Result<()> = Ok(());
        let mut created = 0;
        for f in rolled.iter_mut() {
            if f.dirty {
                match Self::flush_file(&store, limit, f).await {
                    Ok(c) => created += c as i64,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if result.is_ok() {
            for k in &touched {
                let b = self.buckets.get_mut(k).expect("touched bucket");
                let f = b.file.as_mut().expect("touched file");
                match Self::flush_file(&store, limit, f).await {
                    Ok(c) => created += c as i64,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                b.last_write = Instant::now();
            }
        }
        self.counter.add("ConnectionCreatedCount", created);
        if let Err(e) = result {
            self.counter.add("ConnectionFailedCount", 1);
            self.counter.add("EventWriteFail", 1);
            self.fail_batch(&touched, rolled);
            return Err(self.io_error("writing a batch failed; it will be retried", e));
            // tx rolls back
        }
        tx.commit().await?;
        // The batch is committed: record what the files now hold.
        for k in &touched {
            if let Some(f) = self.buckets.get_mut(k).and_then(|b| b.file.as_mut()) {
                f.committed_len = f.encoder_pos();
                f.committed_sync = f.encoder.last_sync();
                f.dirty = false;
            }
        }
        for f in rolled {
            self.close_file(f).await;
        }
        let batch = self.config.batch_size;
        match n {
            0 => self.counter.add("BatchEmptyCount", 1),
            n if n < batch => self.counter.add("BatchUnderflowCount", 1),
            _ => self.counter.add("BatchCompleteCount", 1),
        }
        self.counter.add("EventDrainSuccessCount", n as i64);
        Ok(if n == 0 {
            Status::Backoff
        } else {
            Status::Ready
        })
    }
}

impl OpenFile {
    fn encoder_pos(&self) -> u64 {
        self.encoder.position()
    }
}

impl Sink for HdfsSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(self.do_process())
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(error) = self.run_repairs().await {
                tracing::error!(sink = %self.name, %error, "Could not repair files at stop.");
            }
            let buckets: Vec<BucketWriter> = self.buckets.drain().map(|(_, b)| b).collect();
            for mut b in buckets {
                if let Some(f) = b.file.take() {
                    self.close_file(f).await;
                }
            }
            if !self.closes.is_empty() {
                self.retry_closes(true).await;
            }
            for c in &self.closes {
                tracing::error!(sink = %self.name, file = %c.tmp_path, "File left in use at stop; it is renamed at the next start.");
            }
        })
    }
}

#[cfg(test)]
mod tests;

//! The memory channel and its transactions (Flume's `MemoryChannel`).
//!
//! A transaction collects puts and takes; nothing is visible to others until commit.
//! Puts are added to the queue at commit, under one lock, after waiting (up to
//! `keep-alive`) for room. Takes leave the queue at once but keep occupying capacity until
//! the taker commits; a rollback returns them to the head of the queue, in order. Dropping
//! an uncommitted transaction rolls it back. Every operation works on whole batches under
//! one short lock; no lock is held across an `.await`.
//!
//! The same queue and transactions back the durable channels: the `file` channel journals
//! commits in a write-ahead log ([`crate::file_channel`]), the Kafka channel produces puts
//! to a topic and fills the queue from it ([`crate::kafka_channel`]); see [`Backend`].
//!
//! Capacity counts events (`capacity`) and, unlike Flume (bodies only, in 100-byte slots),
//! real bytes: body plus header keys and values (`byteCapacity` minus
//! `byteCapacityBufferPercentage`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::file_channel::{FileChannelConfig, FileLog, Pointer};
use crate::kafka_channel::{KafkaChannelConfig, KafkaLog};
use crate::monitoring::{CounterGroup, Monitored, CHANNEL_COUNTERS};

/// Settings of the `memory` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryChannelConfig {
    /// `capacity`: the most events the channel holds. Flume's default: 100 (invalid or ≤ 0
    /// falls back to it).
    pub capacity: usize,
    /// `transactionCapacity`: the most puts or takes in one transaction. Flume's default:
    /// 100; must be ≤ capacity.
    pub transaction_capacity: usize,
    /// `keep-alive`: seconds a commit waits for room and a take waits for an event.
    /// Flume's default: 3.
    pub keep_alive: Duration,
    /// `byteCapacity`: the most bytes of events held (0 = no limit). Flume's default is
    /// 80 % of the JVM heap; Flumen has no heap, so the default is no byte limit.
    pub byte_capacity: u64,
    /// `byteCapacityBufferPercentage`: share of byteCapacity kept free. Flume's default: 20.
    pub byte_capacity_buffer_percentage: u64,
    /// For a `file` channel: its log settings (the queue then lives in the write-ahead
    /// log too, see [`crate::file_channel`]). None for a memory channel.
    pub file: Option<FileChannelConfig>,
    /// For a Kafka channel: its Kafka settings (see [`crate::kafka_channel`]). None
    /// otherwise.
    pub kafka: Option<KafkaChannelConfig>,
}

impl Default for MemoryChannelConfig {
    fn default() -> Self {
        MemoryChannelConfig {
            capacity: 100,
            transaction_capacity: 100,
            keep_alive: Duration::from_secs(3),
            byte_capacity: 0,
            byte_capacity_buffer_percentage: 20,
            file: None,
            kafka: None,
        }
    }
}

impl MemoryChannelConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let d = Self::default();
        // Flume's MemoryChannel catches unparseable or non-positive numbers and falls back to
        // its defaults; Flumen does the same, with a warning naming the key and line.
        let lenient = |key: &str, default: i64| -> i64 {
            match ctx.number::<i64>(key, default) {
                Ok(v) if v > 0 => v,
                Ok(_) => {
                    tracing::warn!(
                        "{}",
                        ctx.error(
                            key,
                            format!("must be positive; using Flume's default {default}")
                        )
                    );
                    default
                }
                Err(e) => {
                    tracing::warn!("{e}; using Flume's default {default}");
                    default
                }
            }
        };
        let capacity = lenient("capacity", d.capacity as i64) as usize;
        let transaction_capacity =
            lenient("transactionCapacity", d.transaction_capacity as i64) as usize;
        if transaction_capacity > capacity {
            return Err(ctx.error(
                "transactionCapacity",
                format!("Transaction Capacity of Memory Channel cannot be higher than the capacity ({transaction_capacity} > {capacity})"),
            ));
        }
        let keep_alive = match ctx.number::<u64>("keep-alive", 3) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("{e}; using Flume's default 3");
                3
            }
        };
        let byte_capacity = ctx.number::<u64>("byteCapacity", 0)?;
        let pct = ctx.number::<u64>("byteCapacityBufferPercentage", 20)?;
        if pct > 100 {
            return Err(ctx.error("byteCapacityBufferPercentage", "must be between 0 and 100"));
        }
        Ok(MemoryChannelConfig {
            capacity,
            transaction_capacity,
            keep_alive: Duration::from_secs(keep_alive),
            byte_capacity,
            byte_capacity_buffer_percentage: pct,
            file: None,
            kafka: None,
        })
    }

    /// Creates the channel.
    pub fn build(self, name: &str) -> Arc<MemoryChannel> {
        Arc::new(MemoryChannel::new(name, self))
    }

    fn usable_bytes(&self) -> u64 {
        if self.byte_capacity == 0 {
            u64::MAX
        } else {
            self.byte_capacity * (100 - self.byte_capacity_buffer_percentage) / 100
        }
    }
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Event>,
    /// File and Kafka channels: the backend's pointer of each queued event (same order as
    /// `queue`): the file channel's log pointer, the Kafka channel's fetch sequence number.
    ptrs: VecDeque<Pointer>,
    /// Events taken by open transactions: they still hold capacity.
    in_flight: usize,
    /// Bytes of queued and in-flight events.
    bytes: u64,
    config: MemoryChannelConfig,
}

/// What keeps a channel's events besides its in-memory queue.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Nothing: the memory channel.
    Memory,
    /// The file channel's write-ahead log: commits are journalled before they apply.
    File(Arc<FileLog>),
    /// The Kafka channel's topic: puts are produced to it, the queue is filled from it and
    /// take commits commit the group's offsets.
    Kafka(Arc<KafkaLog>),
}

/// Opens the channel `name` that `config` describes: a memory channel, a file channel
/// (replaying its log) or a Kafka channel (creating its clients).
pub async fn open(name: &str, config: MemoryChannelConfig) -> Result<Arc<MemoryChannel>> {
    if config.kafka.is_some() {
        return crate::kafka_channel::open(name, config).await;
    }
    crate::file_channel::open(name, config).await
}

/// Closes the channels at agent shutdown: a last checkpoint of the file channels, the
/// Kafka channels' consumers leave their groups.
pub async fn close_all(channels: &[Arc<MemoryChannel>]) {
    crate::file_channel::close_all(channels).await;
    crate::kafka_channel::close_all(channels).await;
}

/// A bounded in-memory channel.
#[derive(Debug)]
pub struct MemoryChannel {
    name: String,
    state: Mutex<State>,
    not_empty: Notify,
    not_full: Notify,
    draining: AtomicBool,
    backend: Backend,
    /// Flume's ChannelCounter.
    pub counter: CounterGroup,
}

impl MemoryChannel {
    /// A new empty channel.
    pub fn new(name: &str, config: MemoryChannelConfig) -> Self {
        let counter = CounterGroup::new("CHANNEL", name, CHANNEL_COUNTERS);
        counter.start();
        MemoryChannel {
            name: name.to_string(),
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(config.capacity.min(1 << 16)),
                in_flight: 0,
                bytes: 0,
                config,
                ptrs: VecDeque::new(),
            }),
            not_empty: Notify::new(),
            not_full: Notify::new(),
            draining: AtomicBool::new(false),
            backend: Backend::Memory,
            counter,
        }
    }

    /// A file channel: `log` with the events replay recovered, in order, and room held
    /// for `loading` more that replay still reads ([`MemoryChannel::append_recovered`]).
    pub(crate) fn with_log(
        name: &str,
        config: MemoryChannelConfig,
        log: Arc<FileLog>,
        recovered: Vec<(Pointer, Event)>,
        loading: usize,
    ) -> Self {
        let mut ch = Self::new(name, config);
        let st = ch.state.get_mut().unwrap_or_else(|e| e.into_inner());
        st.in_flight = loading;
        for (p, e) in recovered {
            st.bytes += e.byte_size() as u64;
            st.queue.push_back(e);
            st.ptrs.push_back(p);
        }
        ch.backend = Backend::File(log);
        ch
    }

    /// File channel replay: queues events read after the channel opened (behind the
    /// queued ones; puts wait until replay is done) and releases the room held for them.
    pub(crate) fn append_recovered(&self, events: Vec<(Pointer, Event)>) {
        let mut st = self.lock();
        st.in_flight -= events.len().min(st.in_flight);
        drop(st);
        self.push_fetched(events);
    }

    /// File channel replay: releases room held for `n` events that will not be read.
    pub(crate) fn release_recovered(&self, n: usize) {
        let mut st = self.lock();
        st.in_flight -= n.min(st.in_flight);
        drop(st);
        self.not_full.notify_waiters();
    }

    /// A Kafka channel reading and writing through `log`.
    pub(crate) fn with_kafka(name: &str, config: MemoryChannelConfig, log: Arc<KafkaLog>) -> Self {
        let mut ch = Self::new(name, config);
        ch.backend = Backend::Kafka(log);
        ch
    }

    /// Kafka channel: room left for events read ahead from the topic (0 while draining).
    pub(crate) fn read_ahead_room(&self) -> usize {
        if self.draining.load(Ordering::SeqCst) {
            return 0;
        }
        let st = self.lock();
        st.config
            .capacity
            .saturating_sub(st.queue.len() + st.in_flight)
    }

    /// Queues events (fetched from a Kafka channel's topic, or read by a file channel's
    /// replay), with their pointers.
    pub(crate) fn push_fetched(&self, events: Vec<(Pointer, Event)>) {
        let mut st = self.lock();
        for (p, e) in events {
            st.bytes += e.byte_size() as u64;
            st.queue.push_back(e);
            st.ptrs.push_back(p);
        }
        drop(st);
        self.not_empty.notify_waiters();
    }

    /// Kafka channel: removes the queued (not taken) events whose pointer `drop` selects;
    /// returns how many.
    pub(crate) fn drop_queued(&self, drop: impl Fn(Pointer) -> bool) -> usize {
        let mut st = self.lock();
        let st = &mut *st;
        let (mut queue, mut ptrs) = (VecDeque::new(), VecDeque::new());
        let mut dropped = 0;
        for (e, p) in st.queue.drain(..).zip(st.ptrs.drain(..)) {
            if drop(p) {
                st.bytes -= e.byte_size() as u64;
                dropped += 1;
            } else {
                queue.push_back(e);
                ptrs.push_back(p);
            }
        }
        (st.queue, st.ptrs) = (queue, ptrs);
        dropped
    }

    /// Logs a file channel transaction, then applies it to the queue (blocking; the
    /// puts' room is already reserved). Takes are logged first: a transaction holds one
    /// kind in practice, as in Flume.
    fn commit_logged(
        &self,
        log: &FileLog,
        puts: Vec<Event>,
        put_bytes: u64,
        takes: &mut Vec<Event>,
        take_ptrs: &mut Vec<Pointer>,
        take_bytes: u64,
    ) -> Result<()> {
        let mut result = Ok(());
        if !takes.is_empty() {
            match log.commit_takes(take_ptrs) {
                Ok(()) => {
                    let mut st = self.lock();
                    st.in_flight -= takes.len();
                    st.bytes -= take_bytes;
                    drop(st);
                    self.counter
                        .add("EventTakeSuccessCount", takes.len() as i64);
                    takes.clear();
                    self.not_full.notify_waiters();
                }
                Err(e) => {
                    self.rollback_takes(takes, take_ptrs);
                    result = Err(e);
                }
            }
        }
        if !puts.is_empty() {
            let r = log.commit_puts(&puts);
            let mut st = self.lock();
            st.in_flight -= puts.len();
            match r {
                Ok(ptrs) => {
                    let n = puts.len();
                    st.queue.extend(puts);
                    st.ptrs.extend(ptrs);
                    drop(st);
                    self.counter.add("EventPutSuccessCount", n as i64);
                    self.not_empty.notify_waiters();
                }
                Err(e) => {
                    st.bytes -= put_bytes;
                    drop(st);
                    self.not_full.notify_waiters();
                    result = result.and(Err(e));
                }
            }
        }
        result
    }

    /// The write-ahead log of a file channel.
    pub fn file_log(&self) -> Option<&Arc<FileLog>> {
        match &self.backend {
            Backend::File(log) => Some(log),
            _ => None,
        }
    }

    /// The Kafka side of a Kafka channel.
    pub fn kafka_log(&self) -> Option<&Arc<KafkaLog>> {
        match &self.backend {
            Backend::Kafka(log) => Some(log),
            _ => None,
        }
    }

    /// What backs the channel.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its current settings.
    pub fn config(&self) -> MemoryChannelConfig {
        self.lock().config.clone()
    }

    /// Applies new settings (a reload keeps the channel and its events).
    pub fn reconfigure(&self, config: MemoryChannelConfig) {
        self.lock().config = config;
        self.not_full.notify_waiters();
    }

    /// Committed events waiting to be taken.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// True when no committed event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// After this, takes on an empty channel return at once (shutdown drain).
    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::SeqCst);
        self.not_empty.notify_waiters();
    }

    /// Opens a transaction.
    pub fn transaction(self: &Arc<Self>) -> Transaction {
        Transaction {
            channel: self.clone(),
            puts: Vec::new(),
            takes: Vec::new(),
            take_ptrs: Vec::new(),
            done: false,
        }
    }

    fn rollback_takes(&self, takes: &mut Vec<Event>, ptrs: &mut Vec<Pointer>) {
        if takes.is_empty() {
            return;
        }
        let mut st = self.lock();
        st.in_flight -= takes.len();
        for e in takes.drain(..).rev() {
            st.queue.push_front(e);
        }
        for p in ptrs.drain(..).rev() {
            st.ptrs.push_front(p);
        }
        drop(st);
        self.not_empty.notify_waiters();
    }
}

impl Monitored for MemoryChannel {
    fn kind(&self) -> &'static str {
        "CHANNEL"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn attributes(&self) -> Vec<(String, String)> {
        let (size, cap) = {
            let st = self.lock();
            (st.queue.len() + st.in_flight, st.config.capacity)
        };
        let mut out = self.counter.attributes();
        let fill = if cap == 0 {
            f64::MAX
        } else {
            size as f64 * 100.0 / cap as f64
        };
        out.push(("ChannelSize".into(), size.to_string()));
        out.push(("ChannelCapacity".into(), cap.to_string()));
        out.push(("ChannelFillPercentage".into(), java_double(fill)));
        match &self.backend {
            Backend::Memory => {}
            Backend::File(log) => out.extend(crate::file_channel::attributes(log)),
            Backend::Kafka(log) => out.extend(crate::kafka_channel::attributes(log)),
        }
        out
    }
}

/// Java's `Double.toString` for the values a fill percentage takes.
fn java_double(v: f64) -> String {
    if v == f64::MAX {
        return "1.7976931348623157E308".into();
    }
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A channel transaction: puts and takes, then commit or rollback (dropping = rollback).
#[derive(Debug)]
pub struct Transaction {
    channel: Arc<MemoryChannel>,
    puts: Vec<Event>,
    takes: Vec<Event>,
    take_ptrs: Vec<Pointer>,
    done: bool,
}

impl Transaction {
    /// Adds events to put at commit.
    pub fn put_all(&mut self, events: impl IntoIterator<Item = Event>) -> Result<()> {
        let before = self.puts.len();
        self.puts.extend(events);
        self.check_put_room(before)
    }

    /// Adds a batch of events to put at commit, taking over the vector when the
    /// transaction has no puts yet (no copy).
    pub fn put_vec(&mut self, events: Vec<Event>) -> Result<()> {
        let before = self.puts.len();
        if before == 0 {
            self.puts = events;
        } else {
            self.puts.extend(events);
        }
        self.check_put_room(before)
    }

    /// Counts the puts added since `before` and undoes them past transactionCapacity.
    fn check_put_room(&mut self, before: usize) -> Result<()> {
        let n = (self.puts.len() - before) as i64;
        let ch = &self.channel;
        ch.counter.add("EventPutAttemptCount", n);
        let cap = ch.lock().config.transaction_capacity;
        if self.puts.len() > cap {
            self.puts.truncate(before);
            return Err(FlowError::TransactionFull {
                what: "Put queue",
                channel: ch.name.clone(),
                capacity: cap,
            });
        }
        Ok(())
    }

    /// Adds one event to put at commit.
    pub fn put(&mut self, event: Event) -> Result<()> {
        self.put_all(std::iter::once(event))
    }

    /// Takes up to `max` events (bounded by transactionCapacity). Waits up to `keep-alive`
    /// for the first one when the channel is empty; returns how many were taken (0 = empty).
    pub async fn take_batch(&mut self, max: usize) -> Result<usize> {
        let ch = self.channel.clone();
        if let Some(log) = ch.kafka_log() {
            log.start_consumer(&ch);
        }
        let keep_alive = ch.lock().config.keep_alive;
        let deadline = tokio::time::Instant::now() + keep_alive;
        loop {
            let notified = ch.not_empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = ch.lock();
                let room = st
                    .config
                    .transaction_capacity
                    .saturating_sub(self.takes.len());
                if room == 0 && max > 0 {
                    return Err(FlowError::TransactionFull {
                        what: "Take list",
                        channel: ch.name.clone(),
                        capacity: st.config.transaction_capacity,
                    });
                }
                let n = max.min(room).min(st.queue.len());
                if n > 0 || max == 0 {
                    self.takes.extend(st.queue.drain(..n));
                    if !matches!(ch.backend, Backend::Memory) {
                        self.take_ptrs.extend(st.ptrs.drain(..n));
                    }
                    st.in_flight += n;
                    drop(st);
                    ch.counter.add("EventTakeAttemptCount", n.max(1) as i64);
                    return Ok(n);
                }
            }
            if ch.draining.load(Ordering::SeqCst)
                || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                ch.counter.add("EventTakeAttemptCount", 1);
                return Ok(0);
            }
        }
    }

    /// The events taken so far.
    pub fn taken(&self) -> &[Event] {
        &self.takes
    }

    /// Makes puts visible and releases takes. Waits up to `keep-alive` for room; on
    /// timeout the transaction is rolled back and `ChannelFull` returned.
    pub async fn commit(mut self) -> Result<()> {
        let ch = self.channel.clone();
        if let Some(log) = ch.kafka_log().cloned() {
            return self.commit_kafka(log).await;
        }
        let put_bytes: u64 = self.puts.iter().map(|e| e.byte_size() as u64).sum();
        let take_bytes: u64 = self.takes.iter().map(|e| e.byte_size() as u64).sum();
        let keep_alive = ch.lock().config.keep_alive;
        let deadline = tokio::time::Instant::now() + keep_alive;
        loop {
            let notified = ch.not_full.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut logged = None;
            {
                let mut st = ch.lock();
                let used = st.queue.len() + st.in_flight - self.takes.len();
                let bytes_after = st.bytes - take_bytes + put_bytes;
                let fits_count = used + self.puts.len() <= st.config.capacity;
                let fits_bytes = bytes_after <= st.config.usable_bytes();
                if self.puts.is_empty() || (fits_count && fits_bytes) {
                    let logs = !self.puts.is_empty() || !self.takes.is_empty();
                    if let Some(log) = ch.file_log().cloned().filter(|_| logs) {
                        // Reserve room for the puts; the log write happens off the lock.
                        st.in_flight += self.puts.len();
                        st.bytes += put_bytes;
                        logged = Some(log);
                    }
                }
                if logged.is_none() && (self.puts.is_empty() || (fits_count && fits_bytes)) {
                    st.in_flight -= self.takes.len();
                    st.bytes = bytes_after;
                    let (np, nt) = (self.puts.len(), self.takes.len());
                    st.queue.extend(self.puts.drain(..));
                    drop(st);
                    self.takes.clear();
                    self.done = true;
                    if np > 0 {
                        ch.counter.add("EventPutSuccessCount", np as i64);
                        ch.not_empty.notify_waiters();
                    }
                    if nt > 0 {
                        ch.counter.add("EventTakeSuccessCount", nt as i64);
                        ch.not_full.notify_waiters();
                    }
                    return Ok(());
                }
                if !fits_bytes && fits_count && put_bytes > st.config.usable_bytes() {
                    // Can never fit: fail at once.
                    let cap = st.config.usable_bytes();
                    drop(st);
                    return Err(FlowError::ChannelBytesFull {
                        channel: ch.name.clone(),
                        byte_capacity: cap,
                        bytes: put_bytes,
                    });
                }
            }
            if let Some(log) = logged {
                return self.commit_durable(log, put_bytes, take_bytes).await;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let st = ch.lock();
                let bytes_full = st.bytes - take_bytes + put_bytes > st.config.usable_bytes();
                let cap = st.config.usable_bytes();
                drop(st);
                return Err(if bytes_full {
                    FlowError::ChannelBytesFull {
                        channel: ch.name.clone(),
                        byte_capacity: cap,
                        bytes: put_bytes,
                    }
                } else {
                    FlowError::ChannelFull {
                        channel: ch.name.clone(),
                    }
                });
                // Drop rolls back.
            }
        }
    }

    /// File channel commit: writes the log (group commit) on a blocking thread,
    /// which then also updates the queue, so a cancelled commit leaves no reservation.
    async fn commit_durable(
        &mut self,
        log: Arc<FileLog>,
        put_bytes: u64,
        take_bytes: u64,
    ) -> Result<()> {
        let ch = self.channel.clone();
        let puts = std::mem::take(&mut self.puts);
        let mut takes = std::mem::take(&mut self.takes);
        let mut take_ptrs = std::mem::take(&mut self.take_ptrs);
        self.done = true;
        let name = ch.name.clone();
        let task = tokio::task::spawn_blocking(move || {
            ch.commit_logged(
                &log,
                puts,
                put_bytes,
                &mut takes,
                &mut take_ptrs,
                take_bytes,
            )
        });
        task.await.map_err(|e| FlowError::Io {
            component: format!("channel {name}"),
            message: "commit task failed".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Kafka channel commit: produces the puts and waits for their acknowledgement, then
    /// commits the offsets the takes release (on a blocking thread). Puts never enter the
    /// queue (the consumer brings them back from the topic).
    async fn commit_kafka(&mut self, log: Arc<KafkaLog>) -> Result<()> {
        let ch = self.channel.clone();
        if !self.puts.is_empty() {
            if let Err(e) = log.produce(&self.puts).await {
                self.do_rollback();
                return Err(e);
            }
            ch.counter
                .add("EventPutSuccessCount", self.puts.len() as i64);
            self.puts.clear();
        }
        if self.takes.is_empty() {
            self.done = true;
            return Ok(());
        }
        // The pointers stay in the transaction: dropped while waiting, it rolls back whole.
        let ptrs = self.take_ptrs.clone();
        let r = tokio::task::spawn_blocking(move || log.commit_takes(&ptrs))
            .await
            .unwrap_or_else(|e| {
                Err(FlowError::Io {
                    component: format!("channel {}", ch.name),
                    message: "offset commit task failed".into(),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        if let Err(e) = r {
            self.do_rollback();
            return Err(e);
        }
        let take_bytes: u64 = self.takes.iter().map(|e| e.byte_size() as u64).sum();
        let n = self.takes.len();
        {
            let mut st = ch.lock();
            st.in_flight -= n;
            st.bytes -= take_bytes;
        }
        self.takes.clear();
        self.take_ptrs.clear();
        self.done = true;
        ch.counter.add("EventTakeSuccessCount", n as i64);
        ch.not_full.notify_waiters();
        Ok(())
    }

    /// Discards puts and returns takes to the head of the queue.
    pub fn rollback(mut self) {
        self.do_rollback();
    }

    fn do_rollback(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(log) = self.channel.kafka_log() {
            if !self.puts.is_empty() || !self.takes.is_empty() {
                log.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.puts.clear();
        let mut takes = std::mem::take(&mut self.takes);
        let mut ptrs = std::mem::take(&mut self.take_ptrs);
        self.channel.rollback_takes(&mut takes, &mut ptrs);
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.do_rollback();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(capacity: usize, tx: usize) -> Arc<MemoryChannel> {
        MemoryChannelConfig {
            capacity,
            transaction_capacity: tx,
            keep_alive: Duration::from_millis(50),
            ..Default::default()
        }
        .build("c1")
    }

    #[tokio::test]
    async fn put_take_commit_rollback_keeps_order() {
        let ch = channel(10, 5);
        let mut tx = ch.transaction();
        tx.put_all((0..5).map(|i| Event::new(format!("{i}"))))
            .unwrap();
        assert_eq!(ch.len(), 0, "puts are invisible before commit");
        tx.commit().await.unwrap();
        assert_eq!(ch.len(), 5);
        let mut tx = ch.transaction();
        assert_eq!(tx.take_batch(2).await.unwrap(), 2);
        tx.rollback();
        let mut tx = ch.transaction();
        assert_eq!(tx.take_batch(10).await.unwrap(), 5);
        let bodies: Vec<_> = tx.taken().iter().map(|e| e.body.clone()).collect();
        assert_eq!(bodies, vec!["0", "1", "2", "3", "4"]);
        drop(tx); // rollback
        assert_eq!(ch.len(), 5);
    }

    #[tokio::test]
    async fn full_channel_refuses_after_keep_alive() {
        let ch = channel(3, 3);
        let mut tx = ch.transaction();
        tx.put_all((0..3).map(|_| Event::new("x"))).unwrap();
        tx.commit().await.unwrap();
        let mut tx = ch.transaction();
        tx.put(Event::new("y")).unwrap();
        let err = tx.commit().await.unwrap_err();
        assert!(err.is_channel_full(), "{err}");
        // Takes not yet committed still hold capacity.
        let mut take = ch.transaction();
        take.take_batch(1).await.unwrap();
        let mut tx = ch.transaction();
        tx.put(Event::new("y")).unwrap();
        assert!(tx.commit().await.is_err());
        take.commit().await.unwrap();
        let mut tx = ch.transaction();
        tx.put(Event::new("y")).unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn transaction_capacity_and_bytes() {
        let ch = channel(10, 2);
        let mut tx = ch.transaction();
        assert!(tx.put_all((0..3).map(|_| Event::new("x"))).is_err());
        let ch = MemoryChannelConfig {
            capacity: 100,
            transaction_capacity: 100,
            keep_alive: Duration::from_millis(20),
            byte_capacity: 100,
            byte_capacity_buffer_percentage: 20,
            file: None,
            kafka: None,
        }
        .build("c2");
        let mut tx = ch.transaction();
        tx.put(Event::new(vec![0u8; 60])).unwrap();
        tx.commit().await.unwrap();
        let mut tx = ch.transaction();
        tx.put(Event::new(vec![0u8; 30])).unwrap();
        let err = tx.commit().await.unwrap_err();
        assert!(matches!(err, FlowError::ChannelBytesFull { .. }), "{err}");
    }

    #[tokio::test]
    async fn take_waits_for_a_put() {
        // keep-alive far above any scheduling delay: the taker must still be waiting when
        // the put lands, however late this task runs again.
        let ch = MemoryChannelConfig {
            capacity: 10,
            transaction_capacity: 10,
            keep_alive: Duration::from_secs(60),
            ..Default::default()
        }
        .build("c1");
        let ch2 = ch.clone();
        let taker = tokio::spawn(async move {
            let mut tx = ch2.transaction();
            let n = tx.take_batch(10).await.unwrap();
            tx.commit().await.unwrap();
            n
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut tx = ch.transaction();
        tx.put(Event::new("x")).unwrap();
        tx.commit().await.unwrap();
        assert_eq!(taker.await.unwrap(), 1);
    }

    #[test]
    fn config_checks() {
        let ctx = Context::from_pairs(
            "channel c1",
            &[("capacity", "10"), ("transactionCapacity", "20")],
        );
        assert!(MemoryChannelConfig::from_context(&ctx)
            .unwrap_err()
            .to_string()
            .contains("transactionCapacity"));
        let ctx = Context::from_pairs("channel c1", &[("capacity", "-1")]);
        assert_eq!(
            MemoryChannelConfig::from_context(&ctx).unwrap().capacity,
            100
        );
    }
}

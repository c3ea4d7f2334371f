//! The group coordinator (Kafka's classic group protocol) and the committed offsets.
//!
//! - [`state`]: one group's state machine (Empty, PreparingRebalance, CompletingRebalance,
//!   Stable; Dead when deleted), pure and unit-tested.
//! - [`offsets`]: the durable offsets log (append-only, checksummed, compacted).
//! - [`GroupCoordinator`]: the groups of this node behind one std mutex (never held across an
//!   `.await`: delayed JoinGroup/SyncGroup answers travel through oneshot channels), the
//!   run loop that fires session, join-phase and initial-delay deadlines, and offset
//!   retention (`offsets.retention.minutes`, counted from when a group became Empty).
//!
//! This node coordinates every group, so FindCoordinator always answers with itself, and the
//! offsets are loaded synchronously at start-up: COORDINATOR_LOAD_IN_PROGRESS never occurs.

pub mod offsets;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::{BrokerError, Result};
use offsets::{OffsetEntry, OffsetRecord, OffsetStore};
pub use state::{
    CommittedOffset, Group, GroupState, JoinParams, JoinResult, Limits, Pending, SyncResult,
};

/// Broker config keys read by [`GroupConfig::from_lookup`].
pub const KEYS: &[&str] = &[
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "offset.metadata.max.bytes",
];

/// The coordinator's broker configuration.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an Empty group
    /// waits for more members. Default 3000 (Kafka's).
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`: the smallest session timeout accepted. Default 6000
    /// (Kafka's).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: the largest session timeout accepted. Default 1800000
    /// (Kafka's).
    pub max_session_timeout_ms: i32,
    /// `group.max.size`: members per group. Default 2147483647 (Kafka's).
    pub max_size: i32,
    /// `offsets.retention.minutes`: how long offsets of an Empty group are kept. Default
    /// 10080, 7 days (Kafka's).
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed. Default
    /// 600000 (Kafka's).
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`: the longest commit metadata string. Default 4096 (Kafka's).
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX,
            offsets_retention_minutes: 10080,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> BrokerError {
    BrokerError::InvalidConfig {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn num<T: std::str::FromStr + PartialOrd>(key: &str, value: &str, min: T) -> Result<T> {
    let n: T = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a valid number"))?;
    if n < min {
        return Err(invalid(key, value, "too small"));
    }
    Ok(n)
}

impl GroupConfig {
    /// Reads the [`KEYS`] through `get`.
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<GroupConfig> {
        let mut c = GroupConfig::default();
        if let Some(v) = get("group.initial.rebalance.delay.ms") {
            c.initial_rebalance_delay_ms = num("group.initial.rebalance.delay.ms", v, 0)?;
        }
        if let Some(v) = get("group.min.session.timeout.ms") {
            c.min_session_timeout_ms = num("group.min.session.timeout.ms", v, 0)?;
        }
        if let Some(v) = get("group.max.session.timeout.ms") {
            c.max_session_timeout_ms = num("group.max.session.timeout.ms", v, 1)?;
        }
        if c.max_session_timeout_ms < c.min_session_timeout_ms {
            return Err(invalid(
                "group.max.session.timeout.ms",
                &c.max_session_timeout_ms.to_string(),
                "must not be below group.min.session.timeout.ms",
            ));
        }
        if let Some(v) = get("group.max.size") {
            c.max_size = num("group.max.size", v, 1)?;
        }
        if let Some(v) = get("offsets.retention.minutes") {
            c.offsets_retention_minutes = num("offsets.retention.minutes", v, 1)?;
        }
        if let Some(v) = get("offsets.retention.check.interval.ms") {
            c.offsets_retention_check_interval_ms =
                num("offsets.retention.check.interval.ms", v, 1)?;
        }
        if let Some(v) = get("offset.metadata.max.bytes") {
            c.offset_metadata_max_bytes = num("offset.metadata.max.bytes", v, 0)?;
        }
        Ok(c)
    }

    fn limits(&self) -> Limits {
        Limits {
            initial_rebalance_delay: Duration::from_millis(self.initial_rebalance_delay_ms),
            min_session_timeout_ms: self.min_session_timeout_ms,
            max_session_timeout_ms: self.max_session_timeout_ms,
            max_size: self.max_size as usize,
        }
    }
}

/// A committed offset to write.
#[derive(Clone, Debug)]
pub struct OffsetCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset, epoch and metadata.
    pub committed: CommittedOffset,
}

/// How often the offsets log is checked for compaction.
const COMPACTION_CHECK: Duration = Duration::from_secs(30);

/// The group coordinator of this node.
#[derive(Debug)]
pub struct GroupCoordinator {
    /// Configuration.
    pub config: GroupConfig,
    limits: Limits,
    groups: Mutex<HashMap<String, Group>>,
    store: OffsetStore,
    wake: Notify,
}

impl GroupCoordinator {
    /// Opens the offsets log in `dir` and loads the committed offsets (blocking).
    pub fn open(dir: &Path, config: GroupConfig) -> Result<GroupCoordinator> {
        let (store, loaded) = OffsetStore::open(dir)?;
        let mut groups = HashMap::new();
        for (id, offsets) in loaded {
            let mut g = Group::new(&id);
            g.offsets = offsets;
            groups.insert(id, g);
        }
        tracing::info!(groups = groups.len(), "Committed offsets loaded.");
        Ok(GroupCoordinator {
            limits: config.limits(),
            config,
            groups: Mutex::new(groups),
            store,
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// JoinGroup.
    pub fn join(&self, group_id: &str, params: JoinParams) -> Pending<JoinResult> {
        let new_id = format!("{}-{}", params.client_id, uuid::Uuid::new_v4());
        let out = {
            let mut groups = self.lock();
            let g = groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            let out = g.join(params, new_id, Instant::now(), &self.limits);
            // A refused first join leaves nothing behind.
            if g.state == GroupState::Empty
                && g.members.is_empty()
                && g.pending.is_empty()
                && g.offsets.is_empty()
            {
                groups.remove(group_id);
            }
            out
        };
        self.wake.notify_one();
        out
    }

    /// SyncGroup.
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> Pending<SyncResult> {
        let out = {
            let mut groups = self.lock();
            match groups.get_mut(group_id) {
                Some(g) => g.sync(
                    member_id,
                    instance_id,
                    generation,
                    protocol,
                    assignments,
                    Instant::now(),
                ),
                None => Pending::Ready(SyncResult {
                    error: ResponseError::UnknownMemberId.code(),
                    ..Default::default()
                }),
            }
        };
        self.wake.notify_one();
        out
    }

    /// Heartbeat; returns the error code.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        match self.lock().get_mut(group_id) {
            Some(g) => g.heartbeat(member_id, instance_id, generation, Instant::now()),
            None => ResponseError::UnknownMemberId.code(),
        }
    }

    /// LeaveGroup for each (member id, instance id); returns one error code per member.
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<i16> {
        let out = {
            let mut groups = self.lock();
            match groups.get_mut(group_id) {
                Some(g) => {
                    let now = Instant::now();
                    members
                        .iter()
                        .map(|(m, i)| g.leave(m, i.as_deref(), now))
                        .collect()
                }
                None => vec![ResponseError::UnknownMemberId.code(); members.len()],
            }
        };
        self.wake.notify_one();
        out
    }

    /// Validates an OffsetCommit's member and generation; a simple commit (generation < 0)
    /// to an unknown group creates it.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        let mut groups = self.lock();
        match groups.get_mut(group_id) {
            Some(g) => g.check_commit(member_id, instance_id, generation, Instant::now()),
            None if generation < 0 => {
                groups.insert(group_id.to_string(), Group::new(group_id));
                0
            }
            None => ResponseError::IllegalGeneration.code(),
        }
    }

    /// Writes committed offsets to the log, then to memory (blocking).
    pub fn commit(&self, group_id: &str, commits: Vec<OffsetCommit>) -> Result<()> {
        let entries: Vec<OffsetEntry> = commits
            .into_iter()
            .map(|c| OffsetEntry {
                topic: c.topic,
                partition: c.partition,
                committed: c.committed,
            })
            .collect();
        let record = OffsetRecord::Commit {
            group: group_id.to_string(),
            entries: entries.clone(),
        };
        self.store.append(&[record], || {
            let mut groups = self.lock();
            let g = groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            for e in entries {
                g.offsets.insert((e.topic, e.partition), e.committed);
            }
        })
    }

    /// Runs `f` on a group (or `None`), under the lock: `f` must not block.
    pub fn inspect<T>(&self, group_id: &str, f: impl FnOnce(Option<&Group>) -> T) -> T {
        f(self.lock().get(group_id))
    }

    /// Runs `f` on every group, under the lock: `f` must not block.
    pub fn inspect_all<T>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &Group>) -> T) -> T {
        let groups = self.lock();
        let mut it = groups.values();
        f(&mut it)
    }

    /// DeleteGroups for one group (blocking); returns the error code.
    pub fn delete_group(&self, group_id: &str) -> Result<i16> {
        {
            let groups = self.lock();
            match groups.get(group_id) {
                None => return Ok(ResponseError::GroupIdNotFound.code()),
                Some(g) if !g.members.is_empty() || g.state != GroupState::Empty => {
                    return Ok(ResponseError::NonEmptyGroup.code())
                }
                Some(_) => {}
            }
        }
        self.store.append(
            &[OffsetRecord::DeleteGroup {
                group: group_id.to_string(),
            }],
            || {
                let mut groups = self.lock();
                match groups.get(group_id) {
                    Some(g) if g.members.is_empty() && g.state == GroupState::Empty => {
                        groups.remove(group_id);
                        tracing::info!(group = group_id, "Group deleted.");
                        0
                    }
                    Some(_) => ResponseError::NonEmptyGroup.code(),
                    None => ResponseError::GroupIdNotFound.code(),
                }
            },
        )
    }

    /// OffsetDelete (blocking): removes the offsets of these partitions. Returns the
    /// group-level error and one code per partition (GROUP_SUBSCRIBED_TO_TOPIC where active
    /// members subscribe to the topic).
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(i16, Vec<i16>)> {
        let (codes, to_delete) = {
            let groups = self.lock();
            let Some(g) = groups.get(group_id) else {
                return Ok((ResponseError::GroupIdNotFound.code(), Vec::new()));
            };
            if !g.members.is_empty() && g.protocol_type.as_deref().is_some_and(|t| t != "consumer")
            {
                return Ok((ResponseError::NonEmptyGroup.code(), Vec::new()));
            }
            let subscribed = if g.members.is_empty() {
                None
            } else {
                g.subscribed_topics()
            };
            let mut codes = Vec::with_capacity(partitions.len());
            let mut to_delete = Vec::new();
            for (topic, partition) in partitions {
                if subscribed.as_ref().is_some_and(|s| s.contains(topic)) {
                    codes.push(ResponseError::GroupSubscribedToTopic.code());
                } else {
                    codes.push(0);
                    to_delete.push((topic.clone(), *partition));
                }
            }
            (codes, to_delete)
        };
        if !to_delete.is_empty() {
            let record = OffsetRecord::Delete {
                group: group_id.to_string(),
                partitions: to_delete.clone(),
            };
            self.store.append(&[record], || {
                if let Some(g) = self.lock().get_mut(group_id) {
                    for tp in &to_delete {
                        g.offsets.remove(tp);
                    }
                }
            })?;
        }
        Ok((0, codes))
    }

    /// Fires due deadlines of every group; returns the next one.
    fn tick(&self, now: Instant) -> Option<Instant> {
        let mut groups = self.lock();
        let mut next: Option<Instant> = None;
        for g in groups.values_mut() {
            let expired = g.tick(now);
            for member in expired {
                tracing::info!(group = %g.id, member, "Member session expired.");
            }
            if let Some(d) = g.next_deadline() {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        next
    }

    /// Removes offsets of Empty groups older than `offsets.retention.minutes`, and groups
    /// left with nothing (blocking).
    pub fn expire_offsets(&self, now_ms: i64) -> Result<()> {
        let retention_ms = self.config.offsets_retention_minutes.saturating_mul(60_000);
        let mut records = Vec::new();
        {
            let groups = self.lock();
            for g in groups.values() {
                if !g.members.is_empty() || g.state != GroupState::Empty {
                    continue;
                }
                let since = g.empty_since_ms.unwrap_or(0);
                let old: Vec<(String, i32)> = g
                    .offsets
                    .iter()
                    .filter(|(_, c)| now_ms - c.commit_ms.max(since) >= retention_ms)
                    .map(|(tp, _)| tp.clone())
                    .collect();
                if !old.is_empty() {
                    records.push(OffsetRecord::Delete {
                        group: g.id.clone(),
                        partitions: old,
                    });
                }
            }
        }
        let mut removed = 0usize;
        self.store.append(&records, || {
            let mut groups = self.lock();
            for r in &records {
                if let OffsetRecord::Delete { group, partitions } = r {
                    if let Some(g) = groups.get_mut(group) {
                        for tp in partitions {
                            removed += usize::from(g.offsets.remove(tp).is_some());
                        }
                    }
                }
            }
            groups.retain(|_, g| {
                !(g.members.is_empty()
                    && g.pending.is_empty()
                    && g.state == GroupState::Empty
                    && g.offsets.is_empty())
            });
        })?;
        if removed > 0 {
            tracing::info!(offsets = removed, "Expired committed offsets removed.");
        }
        Ok(())
    }

    /// Compacts the offsets log if it has grown enough (blocking).
    pub fn maybe_compact(&self) -> Result<()> {
        if !self.store.wants_compaction() {
            return Ok(());
        }
        self.store.compact(|| {
            let groups = self.lock();
            groups
                .values()
                .filter(|g| !g.offsets.is_empty())
                .map(|g| (g.id.clone(), g.offsets.clone()))
                .collect::<HashMap<String, BTreeMap<(String, i32), CommittedOffset>>>()
        })
    }

    /// Fsyncs the offsets log (blocking; clean shutdown).
    pub fn close(&self) {
        if let Err(error) = self.store.sync() {
            tracing::error!(%error, "Syncing the offsets log failed.");
        }
    }

    /// The coordinator's timer loop: session and join-phase deadlines, offset retention and
    /// log compaction. On shutdown every waiting JoinGroup/SyncGroup is answered with
    /// NOT_COORDINATOR so connections can finish.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        let mut retention = tokio::time::interval(Duration::from_millis(
            self.config.offsets_retention_check_interval_ms,
        ));
        let mut compaction = tokio::time::interval(COMPACTION_CHECK);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        compaction.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        retention.tick().await;
        compaction.tick().await;
        loop {
            let now = Instant::now();
            let idle = now + Duration::from_secs(1);
            let next = self.tick(now).map_or(idle, |d| d.min(idle));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = retention.tick() => {
                    let me = self.clone();
                    let now_ms = state::wall_ms();
                    match tokio::task::spawn_blocking(move || me.expire_offsets(now_ms)).await {
                        Ok(Err(error)) => tracing::warn!(%error, "Offset expiry failed."),
                        Err(error) => tracing::warn!(%error, "Offset expiry task failed."),
                        Ok(Ok(())) => {}
                    }
                }
                _ = compaction.tick() => {
                    let me = self.clone();
                    match tokio::task::spawn_blocking(move || me.maybe_compact()).await {
                        Ok(Err(error)) => tracing::warn!(%error, "Offsets log compaction failed."),
                        Err(error) => tracing::warn!(%error, "Offsets log compaction task failed."),
                        Ok(Ok(())) => {}
                    }
                }
            }
        }
        for g in self.lock().values_mut() {
            g.fail_waiters(ResponseError::NotCoordinator);
        }
    }
}

#[cfg(test)]
mod tests;

/// Waits for a delayed answer; a dropped sender (member removed) yields `gone`.
pub async fn resolve<T>(pending: Pending<T>, gone: T) -> T {
    match pending {
        Pending::Ready(v) => v,
        Pending::Wait(rx) => rx.await.unwrap_or(gone),
    }
}
